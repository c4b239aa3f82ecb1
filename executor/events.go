package executor

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"
)

// handle serves one event. It never blocks for long: tasks run in their
// own goroutines. An error ends the stream.
func (e *Executor) handle(ctx context.Context, ev *executor.Event) error {
	switch ev.GetType() {
	case executor.Event_SUBSCRIBED:
		s := ev.GetSubscribed()
		if s == nil {
			// The agent always sets it (Slave::subscribe); without it there
			// is no framework or executor to run tasks for. Ending the
			// stream subscribes again (FuzzEventStream).
			return fmt.Errorf("SUBSCRIBED event without its message")
		}
		env := &LaunchEnv{
			Config:      e.cfg,
			Executor:    s.GetExecutorInfo(),
			Framework:   s.GetFrameworkInfo(),
			Agent:       s.GetAgentInfo(),
			ContainerID: s.ContainerID,
		}
		e.mu.Lock()
		e.env = env
		e.mu.Unlock()
		agent, info := s.GetAgentInfo(), s.GetExecutorInfo()
		e.log.Info("subscribed", zap.String("agent_id", agent.GetID().GetValue()),
			zap.String("agent_host", agent.GetHostname()),
			zap.Int("network_infos", len(info.GetContainer().GetNetworkInfos())))
		e.setSubscribed(true)
	case executor.Event_LAUNCH:
		e.launch(ctx, ev.GetLaunch().GetTask())
	case executor.Event_LAUNCH_GROUP:
		group := ev.GetLaunchGroup().GetTaskGroup()
		for _, t := range group.GetTasks() {
			e.refuse(t, "task groups are not supported by dewar: launch each task with its own executor, as Aurora does",
				mesos.REASON_TASK_GROUP_INVALID)
		}
	case executor.Event_KILL:
		// A KILL or ACKNOWLEDGED without its message is malformed (the
		// agent always sets it: src/slave/slave.cpp, Slave::killTask and
		// ::statusUpdateAcknowledgement); log it rather than dereference
		// nil (a seed of FuzzEventStream).
		k := ev.GetKill()
		if k == nil {
			e.log.Warn("ignoring KILL without a task id")
			break
		}
		e.kill(k.TaskID.Value, k.KillPolicy)
	case executor.Event_ACKNOWLEDGED:
		a := ev.GetAcknowledged()
		if a == nil {
			e.log.Warn("ignoring ACKNOWLEDGED without a task id and uuid")
			break
		}
		e.acknowledged(a.TaskID.Value, a.GetUUID())
	case executor.Event_MESSAGE:
		e.log.Info("framework message", zap.Int("bytes", len(ev.GetMessage().GetData())))
	case executor.Event_ERROR:
		e.log.Error("agent reported an error", zap.String("message", ev.GetError().GetMessage()))
		return errResubscribe
	case executor.Event_SHUTDOWN:
		e.Shutdown("the agent asked the executor to shut down")
	case executor.Event_HEARTBEAT:
		e.log.Debug("heartbeat")
	default:
		// Newer agents may send events this build does not know; Mesos
		// promises executors may ignore them.
		e.log.Warn("ignoring unknown event", zap.Stringer("type", ev.GetType()))
	}
	if e.allDone() {
		e.finish("every task ended and every update was acknowledged")
	}
	return nil
}

func (e *Executor) launch(ctx context.Context, info mesos.TaskInfo) {
	id := info.TaskID.Value
	e.mu.Lock()
	if _, dup := e.tasks[id]; dup {
		e.mu.Unlock()
		e.log.Warn("ignoring duplicate LAUNCH", zap.String("task_id", id))
		return
	}
	var other string
	for _, oid := range e.order {
		if t := e.tasks[oid]; t.task != nil && !t.terminal {
			other = oid
		}
	}
	shutdown, env := e.shutdown, e.env
	e.mu.Unlock()
	switch {
	case shutdown:
		e.refuse(info, "executor is shutting down", mesos.REASON_EXECUTOR_TERMINATED)
		return
	case other != "":
		e.refuse(info, fmt.Sprintf("dewar runs one task per executor, as Aurora launches them; task %s is still running here", other),
			mesos.REASON_TASK_INVALID)
		return
	case env == nil:
		// The agent sends LAUNCH only after SUBSCRIBED; guard anyway.
		e.refuse(info, "LAUNCH before SUBSCRIBED", mesos.REASON_TASK_INVALID)
		return
	}
	entry := &taskEntry{info: info}
	e.mu.Lock()
	e.tasks[id] = entry
	e.order = append(e.order, id)
	e.mu.Unlock()
	e.log.Info("launching task", zap.String("task_id", id), zap.String("name", info.GetName()))
	entry.task = e.launcher.Launch(ctx, *env, info, func(s Status) { e.report(id, s) })
}

// refuse answers a task this executor will not run with TASK_FAILED.
func (e *Executor) refuse(info mesos.TaskInfo, msg string, reason mesos.TaskStatus_Reason) {
	id := info.TaskID.Value
	e.mu.Lock()
	if _, ok := e.tasks[id]; !ok {
		e.tasks[id] = &taskEntry{info: info}
		e.order = append(e.order, id)
	}
	e.mu.Unlock()
	e.log.Warn("refusing task", zap.String("task_id", id), zap.String("why", msg))
	e.report(id, Status{State: mesos.TASK_FAILED, Message: msg, Reason: reason.Enum()})
}

func (e *Executor) kill(id string, policy *mesos.KillPolicy) {
	e.mu.Lock()
	t := e.tasks[id]
	e.mu.Unlock()
	switch {
	case t == nil:
		e.log.Warn("KILL for a task this executor does not know", zap.String("task_id", id))
	case t.terminal || t.task == nil:
		e.log.Info("KILL for a task that already ended", zap.String("task_id", id))
	default:
		e.log.Info("killing task", zap.String("task_id", id))
		t.task.Kill(policy, "killed by the scheduler")
	}
}

// killGrace is the grace period a task gets when the executor itself has
// to stop within the shutdown grace period: less, so that the task's
// terminal update still reaches the agent (as Mesos' command executor
// keeps a margin for reaping and sending).
func (e *Executor) killGrace() time.Duration {
	g := e.cfg.ShutdownGracePeriod
	return g - min(g/2, time.Second)
}

// killAll kills every running task within killGrace.
func (e *Executor) killAll(why string) {
	e.mu.Lock()
	var running []Task
	for _, id := range e.order {
		if t := e.tasks[id]; t.task != nil && !t.terminal {
			running = append(running, t.task)
		}
	}
	e.mu.Unlock()
	if len(running) > 0 {
		e.log.Warn("killing all tasks", zap.String("why", why), zap.Int("tasks", len(running)))
	}
	grace := e.killGrace()
	for _, t := range running {
		t.Shutdown(grace, why)
	}
}

// Shutdown kills every task and makes Run return once every update is
// acknowledged or the shutdown grace period has run out. The agent's
// SHUTDOWN event calls it, and so does a SIGTERM to the executor.
func (e *Executor) Shutdown(why string) {
	e.mu.Lock()
	already := e.shutdown
	e.shutdown = true
	e.mu.Unlock()
	if already {
		return
	}
	e.log.Info("shutting down", zap.String("why", why), zap.Duration("grace", e.cfg.ShutdownGracePeriod))
	e.killAll(why)
	go func() {
		switch {
		case e.waitFor(e.cfg.ShutdownGracePeriod, e.quietLocked, e.exit):
			e.finish("shut down")
		case !e.exited():
			e.finish("shutdown grace period ran out")
		}
	}()
}

// ackDeadline ends the executor when every task has ended but the agent
// has not acknowledged every update within AckTimeout. The agent drops some
// updates without an ACK (the task is already among its completed tasks,
// the framework is being torn down, the executor was disconnected when the
// ACK went out: src/slave/slave.cpp, Slave::statusUpdate and
// ::_statusUpdateAcknowledgement); waiting forever would keep a finished
// container alive. Mesos' executors give up after 60 s the same way.
func (e *Executor) ackDeadline(ctx context.Context) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			e.finishWaiters()
		case <-stop:
		}
	}()
	ended := func() bool { return !ctxDone(ctx) && len(e.tasks) > 0 && e.tasksEndedLocked() }
	if !e.waitFor(forever, func() bool { return ctxDone(ctx) || ended() }, e.exit) || ctxDone(ctx) {
		return
	}
	if e.waitFor(e.cfg.AckTimeout, func() bool { return ctxDone(ctx) || e.quietLocked() }, e.exit) {
		return
	}
	e.mu.Lock()
	for _, u := range e.unacked {
		st := u.update.Status
		e.log.Warn("status update never acknowledged by the agent", zap.String("task_id", st.TaskID.Value),
			zap.Stringer("state", st.GetState()), zap.String("uuid", hex.EncodeToString(st.UUID)))
	}
	n := len(e.unacked)
	e.mu.Unlock()
	e.finish(fmt.Sprintf("every task ended; %d update(s) still unacknowledged after %s", n, e.cfg.AckTimeout))
}

// finishWaiters wakes every waitFor so that it re-evaluates its condition.
func (e *Executor) finishWaiters() {
	e.mu.Lock()
	e.changedLocked()
	e.mu.Unlock()
}

// forever, as waitFor's limit, means none.
const forever time.Duration = -1

func ctxDone(ctx context.Context) bool { return ctx.Err() != nil }

// waitFor waits until cond (evaluated with mu held) holds, for at most d
// (no limit when d is forever) or until stop is closed, and reports whether it
// held. It wakes whenever a task ends or an update is acknowledged, not on
// a timer tick.
func (e *Executor) waitFor(d time.Duration, cond func() bool, stop <-chan struct{}) bool {
	var timeout <-chan time.Time
	if d != forever {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	for {
		e.mu.Lock()
		ok, changed := cond(), e.changed
		e.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-timeout:
			return false
		case <-stop:
			return false
		}
	}
}

// changedLocked wakes every waitFor: a task ended or an update was
// acknowledged.
func (e *Executor) changedLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// teardownWait bounds the wait for the tasks' teardown when the executor
// ends on its own (every task ended, every update acknowledged).
const teardownWait = 10 * time.Second

func (e *Executor) shuttingDown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.shutdown
}

// waitTeardown waits until every task reported a terminal state and tore
// down (Task.Done), at most d in all; it logs the tasks that did not.
func (e *Executor) waitTeardown(d time.Duration) {
	deadline := time.Now().Add(d)
	e.waitTasks(d)
	e.mu.Lock()
	var tasks []*taskEntry
	for _, id := range e.order {
		if t := e.tasks[id]; t.task != nil {
			tasks = append(tasks, t)
		}
	}
	e.mu.Unlock()
	for _, t := range tasks {
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-t.task.Done():
		case <-timer.C:
			e.log.Warn("task did not finish its teardown in time; exiting anyway",
				zap.String("task_id", t.info.TaskID.Value), zap.Duration("waited", d))
		}
		timer.Stop()
	}
}

// waitTasks waits until every task reported a terminal state, at most d.
func (e *Executor) waitTasks(d time.Duration) {
	if !e.waitFor(d, e.tasksEndedLocked, nil) {
		e.log.Warn("tasks did not end within the grace period", zap.Duration("grace", d))
	}
}

func (e *Executor) tasksEndedLocked() bool {
	for _, t := range e.tasks {
		if !t.terminal {
			return false
		}
	}
	return true
}

// quietLocked: every task ended and the agent acknowledged every update.
func (e *Executor) quietLocked() bool {
	return len(e.unacked) == 0 && e.tasksEndedLocked()
}

// allDone: a task ran, it ended, and nothing is left unacknowledged.
func (e *Executor) allDone() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.tasks) > 0 && e.quietLocked()
}
