package fakeagent

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// RunTask is `dewar-agent run`: it launches task as a command task of
// CLIFramework on a (started) agent, waits for its terminal update and then
// for its executor to exit and be cleaned up, and returns the terminal
// update. Every update is printed to Config.Out by the agent as usual.
//
// An executor still running well after the terminal update, or a ctx
// cancelled (Ctrl-C) before the end, gets SHUTDOWN (and SIGKILL after its
// grace period): a one-shot run leaves nothing behind.
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
	done := a.ExecutorDone(CLIFrameworkID, exID)
	var last mesos.TaskStatus
	for last.State == nil || !isTerminal(last.GetState()) {
		select {
		case last = <-updates:
		case err := <-a.fatalCh:
			a.shutdownAndWait(done)
			return last, fmt.Errorf("task %s: %w", task.TaskID.Value, err)
		case <-ctx.Done():
			a.shutdownAndWait(done)
			return last, fmt.Errorf("task %s: %w", task.TaskID.Value, ctx.Err())
		}
	}
	// The executor exits once its updates are acknowledged; give it a
	// grace period's worth of time and more before insisting.
	linger := time.NewTimer(2*a.cfg.ShutdownGracePeriod + 5*time.Second)
	defer linger.Stop()
	select {
	case <-done:
	case <-linger.C:
		a.log.Warn("executor still running after its task ended; shutting it down")
		a.shutdownAndWait(done)
	case <-ctx.Done():
		a.shutdownAndWait(done)
		return last, fmt.Errorf("waiting for executor %s to exit: %w", exID, ctx.Err())
	}
	return last, nil
}

// shutdownAndWait shuts the CLI framework's executors down and waits for
// done (bounded: the agent kills after the grace period).
func (a *Agent) shutdownAndWait(done <-chan struct{}) {
	_ = a.ShutdownFramework(context.Background(), CLIFrameworkID)
	select {
	case <-done:
	case <-time.After(2*a.cfg.ShutdownGracePeriod + 5*time.Second):
	}
}
