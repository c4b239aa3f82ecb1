package fakeagent

import (
	"context"
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// RunTask is `dewar-agent run`: it launches task as a command task of
// CLIFramework on a (started) agent, waits for its terminal update and then
// for its executor to exit and be cleaned up, and returns the terminal
// update. Every update is printed to Config.Out by the agent as usual.
func (a *Agent) RunTask(ctx context.Context, task mesos.TaskInfo) (mesos.TaskStatus, error) {
	updates := make(chan mesos.TaskStatus, 256)
	stop := a.watch(func(fw string, st mesos.TaskStatus) {
		if fw == CLIFrameworkID && st.TaskID.Value == task.TaskID.Value {
			select {
			case updates <- st:
			default:
			}
		}
	})
	defer stop()
	if err := a.Launch(ctx, CLIFramework(), nil, task); err != nil {
		return mesos.TaskStatus{}, err
	}
	exID := task.TaskID.Value
	if task.Executor != nil {
		exID = task.Executor.ExecutorID.Value
	}
	var last mesos.TaskStatus
	for !isTerminal(last.GetState()) || last.State == nil {
		select {
		case st := <-updates:
			last = st
		case <-ctx.Done():
			return last, fmt.Errorf("task %s: %w", task.TaskID.Value, ctx.Err())
		}
	}
	if done := a.ExecutorDone(CLIFrameworkID, exID); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for executor %s to exit: %w", exID, ctx.Err())
		}
	}
	return last, nil
}
