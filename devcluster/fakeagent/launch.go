package fakeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"
)

// Errors the master can test for with errors.Is.
var (
	ErrUnknownTask      = errors.New("unknown task")
	ErrUnknownFramework = errors.New("unknown framework")
	ErrInvalidLaunch    = errors.New("invalid launch")
	ErrClosed           = errors.New("fakeagent: agent is closed")
)

// Launch starts task under exec (nil, and TaskInfo.executor unset: a command
// task, run under Config.ExecutorPath as Mesos runs its command executor).
// It returns an error only for a launch it refuses outright; once accepted,
// every outcome (including a container that fails to start) arrives as a
// status update.
func (a *Agent) Launch(ctx context.Context, fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, task mesos.TaskInfo) error {
	fwID := fw.GetID().GetValue()
	if exec == nil {
		exec = task.Executor
	}
	if exec == nil {
		if task.Command == nil {
			return fmt.Errorf("%w: task %q has neither an executor nor a command", ErrInvalidLaunch, task.TaskID.Value)
		}
		ci, err := a.commandExecutor(task)
		if err != nil {
			return err
		}
		exec = ci
	} else {
		e := *exec
		exec = &e
	}
	for what, id := range map[string]string{"framework id": fwID, "task id": task.TaskID.Value, "executor id": exec.ExecutorID.Value} {
		if err := checkID(id); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidLaunch, what, err)
		}
	}
	exec.FrameworkID = &mesos.FrameworkID{Value: fwID}
	task.AgentID = *a.info.ID
	if err := a.awaitRecovery(ctx); err != nil {
		return fmt.Errorf("launch %q: %w", task.TaskID.Value, err)
	}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	f := a.frameworks[fwID]
	if f == nil {
		f = &framework{executors: map[string]*executorState{}}
		a.frameworks[fwID] = f
	}
	f.info = fw
	if err := writeProto(filepath.Join(a.store.frameworkDir(fwID), "framework.info"), &f.info); err != nil {
		a.mu.Unlock()
		return err
	}
	ex := f.executors[exec.ExecutorID.Value]
	if ex != nil {
		if _, dup := ex.tasks[task.TaskID.Value]; dup {
			a.mu.Unlock()
			return fmt.Errorf("%w: task %q already exists on executor %q", ErrInvalidLaunch, task.TaskID.Value, ex.id())
		}
	}
	if ex != nil && !ex.ended {
		_, err := a.addTaskLocked(ex, task)
		a.mu.Unlock()
		return err
	}
	ex, err := a.newRunLocked(f, *exec, ex)
	if err == nil {
		_, err = a.addTaskLocked(ex, task)
	}
	a.mu.Unlock()
	if err != nil {
		return err
	}
	err = a.startRun(ctx, ex)
	if err != nil {
		ex.log.Error("container launch failed", zap.Error(err))
		a.mu.Lock()
		a.failLaunchLocked(ex, err)
		a.mu.Unlock()
	}
	return nil
}

// commandExecutor wraps a command task into the ExecutorInfo that runs it,
// as Mesos does for its command executor (src/slave/slave.cpp,
// Slave::getExecutorInfo): executor id = task id, the task's container (and
// so its networks) moved to the executor.
func (a *Agent) commandExecutor(task mesos.TaskInfo) (*mesos.ExecutorInfo, error) {
	if a.cfg.ExecutorPath == "" {
		return nil, fmt.Errorf("%w: task %q is a command task but the agent has no default executor; start dewar-agent with --executor", ErrInvalidLaunch, task.TaskID.Value)
	}
	shell := false
	return &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: task.TaskID.Value},
		Name:       proto(fmt.Sprintf("Command Executor (Task: %s) (Command: %s)", task.TaskID.Value, task.Command.GetValue())),
		Command:    &mesos.CommandInfo{Value: proto(a.cfg.ExecutorPath), Shell: &shell, Arguments: []string{a.cfg.ExecutorPath}},
		Container:  task.Container,
		Resources:  nil,
	}, nil
}

func proto(s string) *string { return &s }

// checkID keeps ids usable as directory names.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%q cannot be used as a directory name", id)
	}
	return nil
}

// newRunLocked creates the executor's state and checkpoint for a new run
// (container). Tasks of an earlier run of the same executor id are kept.
func (a *Agent) newRunLocked(f *framework, info mesos.ExecutorInfo, prev *executorState) (*executorState, error) {
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("executor token: %w", err)
	}
	cid := uuidString(newUUID())
	ex := &executorState{
		fw:     f,
		info:   info,
		dir:    a.store.executorDir(f.id(), info.ExecutorID.Value),
		tasks:  map[string]*taskState{},
		exited: make(chan struct{}),
		run: runInfo{
			ContainerID: cid,
			Token:       hex.EncodeToString(tok[:]),
			Sandbox:     a.runDir(f.id(), info.ExecutorID.Value, cid),
		},
	}
	if prev != nil {
		ex.tasks, ex.order = prev.tasks, prev.order
	}
	ex.log = a.log.With(zap.String("framework_id", f.id()), zap.String("executor_id", ex.id()), zap.String("container_id", cid))
	if err := writeProto(filepath.Join(ex.dir, "executor.info"), &ex.info); err != nil {
		return nil, err
	}
	// Written before the process starts, so that recovery after a crash
	// right here finds a run without a pid and fails its tasks.
	if err := writeRun(filepath.Join(ex.dir, "run.json"), ex.run); err != nil {
		return nil, err
	}
	f.executors[ex.id()] = ex
	return ex, nil
}

// addTaskLocked checkpoints the task. An executor that has subscribed gets
// its LAUNCH right away, lost if it is disconnected just then (the task
// stays STAGING and is dropped when the executor re-subscribes without
// it); an executor still REGISTERING gets it on SUBSCRIBE, as Mesos'
// queuedTasks (src/slave/slave.cpp, Slave::__run).
func (a *Agent) addTaskLocked(ex *executorState, info mesos.TaskInfo) (*taskState, error) {
	t := a.newTask(ex, info)
	if err := writeProto(filepath.Join(t.dir, "task.info"), &t.info); err != nil {
		return nil, err
	}
	ex.tasks[info.TaskID.Value] = t
	ex.order = append(ex.order, info.TaskID.Value)
	if ex.subscribed {
		a.launchLocked(ex, t)
	}
	return t, nil
}

// launchLocked sends LAUNCH and records that it did: from now on a task
// still STAGING that the executor does not list as unacknowledged on
// re-subscription was lost in flight.
func (a *Agent) launchLocked(ex *executorState, t *taskState) {
	if err := writeFileSync(filepath.Join(t.dir, "launched"), nil, 0o644); err != nil {
		ex.log.Error("checkpointing task launch failed", zap.Error(err))
		return
	}
	t.launched = true
	ex.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t.info}})
}

// startRun prepares the container (sandbox, CNI networks) and starts the
// executor process in it.
func (a *Agent) startRun(ctx context.Context, ex *executorState) error {
	a.mu.Lock()
	info, run := ex.info, ex.run
	a.mu.Unlock()
	if err := createRunDir(run.Sandbox); err != nil {
		return err
	}
	argv, err := executorArgv(info.Command)
	if err != nil {
		return err
	}
	env := a.executorEnv(ex.fw, info, run)
	if info.Container == nil && a.cfg.DefaultContainerInfo != nil {
		// Slave::_run puts --default_container_info into the copy of the
		// ExecutorInfo it launches; the checkpointed executor.info keeps
		// the framework's.
		info.Container = a.cfg.DefaultContainerInfo
	}
	var nets []mesos.NetworkInfo
	if c := info.Container; c != nil && c.GetType() == mesos.ContainerInfo_MESOS {
		nets = c.NetworkInfos
	}
	var netInfos [][]byte
	var netns string
	var agentNets []mesos.NetworkInfo
	if len(nets) > 0 {
		if a.cfg.Isolator == nil {
			return errors.New("the executor asks for CNI networks but the agent has no CNI configuration; start dewar-agent with --network-cni-config-dir and --network-cni-plugins-dir")
		}
		c, err := a.cfg.Isolator.Prepare(ctx, run.ContainerID, nets)
		if err != nil {
			return err
		}
		argv = c.Wrap(argv)
		netns = c.NetNSPath
		for _, ni := range c.NetworkInfos {
			agentNets = append(agentNets, ni)
			b, _ := ni.Marshal()
			netInfos = append(netInfos, b)
		}
	}
	images, err := a.provisionImages(info, run.ContainerID, run.Sandbox)
	if err == nil {
		argv = wrapImages(images, argv)
		var pid int
		var start uint64
		pid, start, err = startProcess(argv, env, run.Sandbox, len(images) > 0)
		run.PID, run.StartTime = pid, start
	}
	if err != nil {
		err = errors.Join(err, a.removeImages(run.ContainerID))
		if len(nets) > 0 {
			err = errors.Join(err, a.cfg.Isolator.Cleanup(context.Background(), run.ContainerID))
		}
		return err
	}
	pid, start := run.PID, run.StartTime
	a.mu.Lock()
	ex.run.PID, ex.run.StartTime, ex.run.Networks, ex.run.NetNSPath = pid, start, netInfos, netns
	ex.networks = agentNets
	err = writeRun(filepath.Join(ex.dir, "run.json"), ex.run)
	closed := a.closed
	if !closed {
		a.wg.Add(1) // under mu: Close sets closed before it waits
	}
	a.mu.Unlock()
	if err != nil {
		ex.log.Error("checkpointing executor pid failed", zap.Error(err))
	}
	ex.log.Info("executor started", zap.Int("pid", pid), zap.String("sandbox", run.Sandbox), zap.Int("networks", len(agentNets)))
	if !closed {
		// Closed meanwhile: the next agent on this work dir recovers it.
		go a.monitor(ex)
	}
	return nil
}

// Kill asks the task's executor to kill it, as Slave::killTask
// (src/slave/slave.cpp): a task not yet sent to its executor, or whose
// executor has not subscribed yet, is killed by the agent itself
// (TASK_KILLED, REASON_TASK_KILLED_DURING_LAUNCH); otherwise the executor
// gets KILL with the policy, which is lost if it is disconnected just
// then. A kill during recovery waits for its end (awaitRecovery).
func (a *Agent) Kill(ctx context.Context, frameworkID, taskID string, policy *mesos.KillPolicy) error {
	if err := a.awaitRecovery(ctx); err != nil {
		return fmt.Errorf("kill %q: %w", taskID, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.frameworks[frameworkID]
	if f == nil {
		return fmt.Errorf("kill %q: %w %q", taskID, ErrUnknownFramework, frameworkID)
	}
	for _, ex := range f.executors {
		t := ex.tasks[taskID]
		if t == nil || ex.ended {
			continue
		}
		if t.terminal() || ex.run.Shutdown {
			return nil // TERMINATING: "Ignoring kill task"
		}
		t.killRequested = true
		if !t.launched || !ex.subscribed {
			return a.agentUpdateLocked(ex, t, mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Killed before delivery to the executor")
		}
		ex.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: t.info.TaskID, KillPolicy: policy}})
		return nil
	}
	return fmt.Errorf("kill: %w %q of framework %q", ErrUnknownTask, taskID, frameworkID)
}

// ShutdownFramework sends SHUTDOWN to every executor of the framework and
// destroys those still running after their shutdown grace period.
func (a *Agent) ShutdownFramework(ctx context.Context, frameworkID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.frameworks[frameworkID]
	if f == nil {
		return fmt.Errorf("shutdown: %w %q", ErrUnknownFramework, frameworkID)
	}
	for _, ex := range f.executors {
		if !ex.ended {
			a.shutdownExecutorLocked(ex)
		}
	}
	return nil
}

// shutdownExecutorLocked is Slave::_shutdownExecutor: SHUTDOWN (lost if
// the executor is not connected; it gets another when it subscribes), and
// exactly one grace period later (Slave::shutdownExecutorTimeout) the
// whole container is destroyed, every process of it at once.
func (a *Agent) shutdownExecutorLocked(ex *executorState) {
	if ex.run.Shutdown {
		return
	}
	ex.run.Shutdown = true
	if err := writeRun(filepath.Join(ex.dir, "run.json"), ex.run); err != nil {
		ex.log.Error("checkpointing shutdown failed", zap.Error(err))
	}
	ex.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	grace := a.gracePeriod(ex.info)
	if a.closed {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-a.ctx.Done():
		case <-ex.exited:
		case <-t.C:
			ex.log.Info("executor still running after its shutdown grace period; destroying its container")
			a.executorExited(ex, "destroyed after the shutdown grace period")
		}
	}()
}

func (a *Agent) gracePeriod(info mesos.ExecutorInfo) time.Duration {
	if d := info.GetShutdownGracePeriod(); d != nil {
		return time.Duration(d.GetNanoseconds())
	}
	return a.cfg.ShutdownGracePeriod
}
