package fakeagent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/taskstate"
)

type framework struct {
	info      mesos.FrameworkInfo
	executors map[string]*executorState
}

func (f *framework) id() string { return f.info.GetID().GetValue() }

func (f *framework) checkpoints() bool { return f.info.GetCheckpoint() }

// executorState is one executor of a framework and its current run.
type executorState struct {
	fw       *framework
	info     mesos.ExecutorInfo
	dir      string // checkpoint dir
	run      runInfo
	networks []mesos.NetworkInfo // the agent's view (CNI results)
	log      *zap.Logger

	// subscribed: the executor has subscribed to this agent, so it may
	// make calls other than SUBSCRIBE (Mesos' Executor::RUNNING; before,
	// REGISTERING). A recovered executor is REGISTERING until it
	// re-subscribes (src/slave/slave.cpp, Executor::Executor and
	// Http::executor: "Executor is not subscribed").
	subscribed bool
	conn       *subscriber // nil while no SUBSCRIBE stream is open
	tasks      map[string]*taskState
	order      []string      // task ids in launch order
	exited     chan struct{} // closed once the run has ended and been cleaned up
	ended      bool
	// termination, when set, is how the executor's remaining tasks end
	// (Executor::pendingTermination).
	termination *termination
}

func (e *executorState) id() string { return e.info.ExecutorID.Value }

// send queues ev on the open stream. Without one the event is lost, as in
// Mesos (src/slave/slave.hpp, Executor::send: "Unable to send event to
// executor"): nothing is kept for a later SUBSCRIBE.
func (e *executorState) send(ev *executor.Event) {
	if e.conn != nil && e.conn.Send(ev) {
		return
	}
	e.log.Warn("event lost: the executor is not connected", zap.Stringer("event", ev.Type))
}

type taskState struct {
	info          mesos.TaskInfo
	dir           string // checkpoint dir (task.info, launched)
	updates       string // the task.updates stream, in the run it was launched in
	launched      bool   // LAUNCH sent to the executor (Mesos' launchedTasks)
	killRequested bool
	latest        *mesos.TaskStatus
	seen          map[string]bool // uuids already checkpointed
}

func (t *taskState) state() mesos.TaskState {
	if t.latest == nil {
		return mesos.TASK_STAGING
	}
	return t.latest.GetState()
}

func (t *taskState) terminal() bool { return isTerminal(t.state()) }

func isTerminal(s mesos.TaskState) bool { return taskstate.Terminal(s.String()) }

// recover rebuilds frameworks, executors and tasks from the checkpoints and
// starts watching every executor that is still alive.
func (a *Agent) recover() error {
	fws, err := listDirs(filepath.Join(a.store.root, "frameworks"))
	if err != nil {
		return err
	}
	var dead []*executorState
	for _, fwID := range fws {
		fw := &framework{executors: map[string]*executorState{}}
		if err := readProto(filepath.Join(a.store.frameworkDir(fwID), "framework.info"), &fw.info); err != nil {
			return err
		}
		a.frameworks[fwID] = fw
		exs, err := listDirs(filepath.Join(a.store.frameworkDir(fwID), "executors"))
		if err != nil {
			return err
		}
		for _, exID := range exs {
			ex, err := a.recoverExecutor(fw, exID)
			if err != nil {
				return err
			}
			fw.executors[exID] = ex
			switch {
			case ex.run.Terminated:
				ex.ended = true
				close(ex.exited)
			case processAlive(ex.run.PID, ex.run.StartTime):
				ex.log.Info("recovered running executor; waiting for it to re-subscribe")
				a.wg.Add(1)
				go a.monitor(ex)
			default:
				dead = append(dead, ex)
			}
		}
	}
	for _, ex := range dead {
		a.executorExited(ex, "executor exited while the agent was down")
	}
	a.cleanupOrphans()
	return nil
}

// cleanupOrphans removes networks of containers no live executor owns.
func (a *Agent) cleanupOrphans() {
	ol, ok := a.cfg.Isolator.(orphanLister)
	if !ok {
		return
	}
	ids, err := ol.Prepared()
	if err != nil {
		a.log.Warn("listing prepared containers failed; orphans stay", zap.Error(err))
		return
	}
	live := map[string]bool{}
	a.mu.Lock()
	for _, f := range a.frameworks {
		for _, ex := range f.executors {
			if !ex.ended {
				live[ex.run.ContainerID] = true
			}
		}
	}
	a.mu.Unlock()
	for _, id := range ids {
		if live[id] {
			continue
		}
		a.log.Info("cleaning up orphan container", zap.String("container_id", id))
		ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
		if err := a.cfg.Isolator.Cleanup(ctx, id); err != nil {
			a.log.Warn("cleaning up orphan container failed", zap.String("container_id", id), zap.Error(err))
		}
		cancel()
	}
}

func (a *Agent) recoverExecutor(fw *framework, exID string) (*executorState, error) {
	dir := a.store.executorDir(fw.id(), exID)
	ex := &executorState{fw: fw, dir: dir, tasks: map[string]*taskState{}, exited: make(chan struct{})}
	if err := readProto(filepath.Join(dir, "executor.info"), &ex.info); err != nil {
		return nil, err
	}
	run, err := readRun(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, err
	}
	ex.run = run
	for _, b := range run.Networks {
		var ni mesos.NetworkInfo
		if err := ni.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("fakeagent: checkpoint %s: network info: %w", dir, err)
		}
		ex.networks = append(ex.networks, ni)
	}
	ex.log = a.log.With(zap.String("framework_id", fw.id()), zap.String("executor_id", exID), zap.String("container_id", run.ContainerID))
	tasks, err := listDirs(filepath.Join(dir, "tasks"))
	if err != nil {
		return nil, err
	}
	for _, tID := range tasks {
		tdir := filepath.Join(dir, "tasks", tID)
		t := &taskState{dir: tdir, seen: map[string]bool{}, launched: exists(filepath.Join(tdir, "launched"))}
		if err := readProto(filepath.Join(tdir, "task.info"), &t.info); err != nil {
			return nil, err
		}
		t.updates, err = a.store.findTaskUpdates(a.info.ID.GetValue(), fw.id(), exID, tID, ex.log)
		if err != nil {
			return nil, err
		}
		if t.updates == "" { // no update yet: they will go to the current run
			t.updates = a.store.taskUpdatesPath(a.info.ID.GetValue(), fw.id(), exID, run.ContainerID, tID)
		}
		ups, err := readUpdates(t.updates)
		if err != nil {
			return nil, err
		}
		for i := range ups {
			t.seen[string(ups[i].UUID)] = true
			t.latest = &ups[i]
		}
		ex.tasks[tID] = t
		ex.order = append(ex.order, tID)
	}
	return ex, nil
}
