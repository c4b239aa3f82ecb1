package fakeagent

import (
	"fmt"
	"path/filepath"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// executorUpdateLocked checkpoints an update the executor sent. An update
// (by uuid) already checkpointed is not stored or reported twice; the caller
// acknowledges it again all the same.
func (a *Agent) executorUpdateLocked(ex *executorState, st mesos.TaskStatus) error {
	t := ex.tasks[st.TaskID.Value]
	if t == nil {
		// An update for a task the agent does not know (lost with a wiped
		// checkpoint): keep it, so that it still reaches the framework.
		t = a.newTask(ex, mesos.TaskInfo{Name: st.TaskID.Value, TaskID: st.TaskID, AgentID: *a.info.ID})
		t.launched = true
		if err := writeProto(filepath.Join(t.dir, "task.info"), &t.info); err != nil {
			return err
		}
		ex.tasks[st.TaskID.Value] = t
		ex.order = append(ex.order, st.TaskID.Value)
	}
	if t.seen[string(st.UUID)] {
		return nil
	}
	return a.checkpointLocked(ex, t, st)
}

// agentUpdateLocked checkpoints an update the agent itself generates
// (source SOURCE_AGENT), as Mesos does for executor termination, drops and
// kills before launch.
func (a *Agent) agentUpdateLocked(ex *executorState, t *taskState, state mesos.TaskState, reason mesos.TaskStatus_Reason, message string) error {
	src := mesos.SOURCE_AGENT
	st := mesos.TaskStatus{
		TaskID:  t.info.TaskID,
		State:   state.Enum(),
		Source:  &src,
		Reason:  reason.Enum(),
		Message: &message,
		UUID:    newUUID(),
	}
	return a.checkpointLocked(ex, t, st)
}

// newTask is the state of a task new to ex. Its updates go to the stream
// of ex's current run, where Mesos keeps them (the run the task was
// launched in), for the task's whole life.
func (a *Agent) newTask(ex *executorState, info mesos.TaskInfo) *taskState {
	return &taskState{
		info:    info,
		dir:     a.store.taskDir(ex.fw.id(), ex.id(), info.TaskID.Value),
		updates: a.store.taskUpdatesPath(a.info.ID.GetValue(), ex.fw.id(), ex.id(), ex.run.ContainerID, info.TaskID.Value),
		seen:    map[string]bool{},
	}
}

// checkpointLocked completes st with the agent's view, appends it to the
// task's update stream (fsync'd), records it as the task's latest status,
// prints it and queues it for the OnUpdate callbacks.
func (a *Agent) checkpointLocked(ex *executorState, t *taskState, st mesos.TaskStatus) error {
	if st.AgentID == nil {
		st.AgentID = a.info.ID
	}
	if st.ExecutorID == nil {
		id := ex.info.ExecutorID
		st.ExecutorID = &id
	}
	if st.Timestamp == nil {
		now := float64(time.Now().UnixNano()) / 1e9
		st.Timestamp = &now
	}
	a.mergeContainerStatus(ex, &st)
	if err := appendUpdate(t.updates, ex.fw.id(), ex.info.ExecutorID.Value, a.info.ID.GetValue(), st); err != nil {
		return err
	}
	t.seen[string(st.UUID)] = true
	if !t.terminal() {
		t.latest = &st
	}
	a.printUpdate(ex.fw.id(), st)
	a.notify.push(ex.fw.id(), st)
	return nil
}

// mergeContainerStatus does what the Mesos agent does with the
// containerizer's status (Slave::_statusUpdate, ContainerStatus::MergeFrom):
// container id and executor pid are set, and the agent's NetworkInfos (the
// CNI results) are appended after the ones the executor reported itself, so
// a scheduler sees both views (MESOS-6281).
func (a *Agent) mergeContainerStatus(ex *executorState, st *mesos.TaskStatus) {
	cs := mesos.ContainerStatus{}
	if st.ContainerStatus != nil {
		cs = *st.ContainerStatus
		cs.NetworkInfos = append([]mesos.NetworkInfo(nil), cs.NetworkInfos...)
	}
	cs.ContainerID = &mesos.ContainerID{Value: ex.run.ContainerID}
	if ex.run.PID > 0 {
		pid := uint32(ex.run.PID)
		cs.ExecutorPID = &pid
	}
	cs.NetworkInfos = append(cs.NetworkInfos, ex.networks...)
	st.ContainerStatus = &cs
}

// monitor waits for the executor's process to end. An executor this
// process started reports its exit on its reaped channel; one recovered
// after a restart (not our child) is watched through a pidfd (waitExit).
func (a *Agent) monitor(ex *executorState) {
	defer a.wg.Done()
	if reaped := reapedChan(ex.run.PID); reaped != nil {
		select {
		case <-a.ctx.Done():
			return
		case <-reaped:
		}
	} else if !waitExit(a.ctx, ex.run.PID, ex.run.StartTime, ex.log) {
		return
	}
	a.executorExited(ex, "executor process exited")
}

// executorExited ends the executor's run as Mesos' executorTerminated does:
// every task not yet terminal fails with REASON_EXECUTOR_TERMINATED (or is
// killed, when a kill or shutdown was asked for), then the container is
// destroyed: leftover processes of its session killed, CNI networks removed.
//
// src/slave/slave.cpp, Slave::executorTerminated and
// Slave::sendExecutorTerminatedStatusUpdate.
func (a *Agent) executorExited(ex *executorState, why string) {
	a.mu.Lock()
	if ex.ended {
		a.mu.Unlock()
		return
	}
	ex.ended = true
	ex.run.Terminated = true
	if err := writeRun(filepath.Join(ex.dir, "run.json"), ex.run); err != nil {
		ex.log.Error("checkpointing executor termination failed", zap.Error(err))
	}
	if ex.conn != nil {
		ex.conn.Close()
		ex.conn = nil
	}
	for _, id := range ex.order {
		t := ex.tasks[id]
		if t.terminal() {
			continue
		}
		state, reason, msg := mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Abnormal executor termination: "+why
		switch {
		case ex.termination != nil:
			state, reason, msg = ex.termination.state, ex.termination.reason, ex.termination.message
		case t.killRequested || ex.run.Shutdown:
			state, msg = mesos.TASK_KILLED, "Executor terminated after a kill or shutdown: "+why
		}
		if err := a.agentUpdateLocked(ex, t, state, reason, msg); err != nil {
			ex.log.Error("checkpointing terminal update failed", zap.String("task_id", id), zap.Error(err))
		}
	}
	run := ex.run
	a.mu.Unlock()
	ex.log.Info("executor terminated", zap.String("why", why))
	a.destroyContainer(ex, run)
	close(ex.exited)
}

// failLaunchLocked ends a run that never started (src/slave/slave.cpp,
// Slave::executorLaunched: a failed containerizer launch fails its tasks
// with REASON_CONTAINER_LAUNCH_FAILED).
func (a *Agent) failLaunchLocked(ex *executorState, err error) {
	ex.ended = true
	ex.run.Terminated = true
	if werr := writeRun(filepath.Join(ex.dir, "run.json"), ex.run); werr != nil {
		ex.log.Error("checkpointing failed launch", zap.Error(werr))
	}
	for _, id := range ex.order {
		t := ex.tasks[id]
		if t.terminal() {
			continue
		}
		if uerr := a.agentUpdateLocked(ex, t, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, fmt.Sprintf("Failed to launch container: %v", err)); uerr != nil {
			ex.log.Error("checkpointing failed launch update", zap.String("task_id", id), zap.Error(uerr))
		}
	}
	close(ex.exited)
}
