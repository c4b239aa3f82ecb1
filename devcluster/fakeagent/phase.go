package fakeagent

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/partitionaware"
)

// phase is the agent's recovery state as the executor API sees it.
type phase int

const (
	// phaseRecovering: the containerizer has not recovered yet
	// (recoveryInfo.reconnect is false); every executor call gets 503.
	phaseRecovering phase = iota
	// phaseReregistering: recovered executors may SUBSCRIBE (and
	// HEARTBEAT); other calls still get 503 until the re-registration
	// window ends (the agent is RECOVERING until reregisterExecutorTimeout).
	phaseReregistering
	// phaseRunning: recovery is complete.
	phaseRunning
)

// startRecoveryClock runs the recovery of src/slave/slave.cpp: the
// containerizer recovers (Config.RecoveryDelay), then Slave::_recover sets
// recoveryInfo.reconnect and, when it recovered any framework, waits
// --executor_reregistration_timeout for Slave::reregisterExecutorTimeout
// before the agent leaves RECOVERING (MESOS-7539: never earlier, even when
// every executor is back).
func (a *Agent) startRecoveryClock() {
	a.mu.Lock()
	recovered := len(a.frameworks) > 0
	if a.cfg.RecoveryDelay <= 0 {
		// Without a delay the phases that need no waiting are over before
		// anything can call: a fresh agent is running at once.
		a.phase = phaseReregistering
		if !recovered {
			a.phase = phaseRunning
		}
	}
	done := a.phase == phaseRunning
	a.mu.Unlock()
	if done {
		close(a.recovered)
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if !a.sleep(a.cfg.RecoveryDelay) {
			return
		}
		a.mu.Lock()
		a.phase = phaseReregistering
		a.mu.Unlock()
		if recovered {
			a.log.Info("waiting for recovered executors to re-subscribe", zap.Duration("executor_reregistration_timeout", a.cfg.ExecutorReregistrationTimeout))
			if !a.sleep(a.cfg.ExecutorReregistrationTimeout) {
				return
			}
			a.reregisterExecutorTimeout()
		}
		a.mu.Lock()
		a.phase = phaseRunning
		a.mu.Unlock()
		close(a.recovered)
		a.log.Info("finished recovery")
	}()
}

// awaitRecovery waits until the agent has finished recovering. A Mesos
// agent ignores tasks and kills while it is RECOVERING (src/slave/slave.cpp,
// Slave::run and Slave::killTask), but the master sends neither before the
// agent has re-registered, which it does only after recovery; the master
// retries kills then. The fake master has no such bookkeeping, so Launch
// and Kill wait here instead.
func (a *Agent) awaitRecovery(ctx context.Context) error {
	select {
	case <-a.recovered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the agent to finish recovery: %w", ctx.Err())
	case <-a.ctx.Done():
		return ErrClosed
	}
}

// sleep waits d or until the agent closes (false).
func (a *Agent) sleep(d time.Duration) bool {
	if d <= 0 {
		return a.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.ctx.Done():
		return false
	}
}

// reregisterExecutorTimeout follows Slave::reregisterExecutorTimeout
// (src/slave/slave.cpp): an executor still REGISTERING (recovered, never
// re-subscribed) is destroyed, and its tasks end TASK_GONE, or TASK_LOST
// for a framework that is not partition-aware, with
// REASON_EXECUTOR_REREGISTRATION_TIMEOUT.
func (a *Agent) reregisterExecutorTimeout() {
	a.mu.Lock()
	var late []*executorState
	for _, f := range a.frameworks {
		for _, ex := range f.executors {
			if !ex.ended && !ex.subscribed {
				late = append(late, ex)
			}
		}
	}
	for _, ex := range late {
		ex.termination = &termination{
			state:   partitionaware.State(ex.fw.info, mesos.TASK_GONE),
			reason:  mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
			message: "Executor did not reregister within " + mesosDuration(a.cfg.ExecutorReregistrationTimeout),
		}
		ex.log.Info("killing un-reregistered executor")
	}
	a.mu.Unlock()
	for _, ex := range late {
		a.executorExited(ex, "executor did not re-subscribe in time")
	}
}

// termination overrides how executorExited ends the executor's tasks, as
// Mesos' Executor::pendingTermination.
type termination struct {
	state   mesos.TaskState
	reason  mesos.TaskStatus_Reason
	message string
}

// failFatalLocked records a condition on which a real Mesos agent aborts (a
// CHECK or .get() that fails): the fake agent keeps running so that tests
// can see it, but logs it as an error and reports it through Fatal and
// /state.
func (a *Agent) failFatalLocked(err error) {
	a.log.Error("a real Mesos agent would abort here", zap.Error(err))
	a.fatal = append(a.fatal, err)
	select {
	case a.fatalCh <- err:
	default:
	}
}

// FatalChan delivers the first condition on which a real Mesos agent would
// have aborted.
func (a *Agent) FatalChan() <-chan error { return a.fatalCh }

// Fatal returns the conditions on which a real Mesos agent would have
// aborted (nil if none): tests check it, and dewar-agent exits on one.
func (a *Agent) Fatal() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.fatal...)
}

// destroyContainer kills every process of the executor's container, as
// the containerizer's destroy does with the container's cgroup: the
// executor's session, every process in its network namespace, and every
// process that carries the sandbox as MESOS_DIRECTORY (the executor passes
// it on to what it starts). Then the container's networks are removed.
func (a *Agent) destroyContainer(ex *executorState, run runInfo) {
	if run.PID > 0 {
		killSession(run.PID, run.StartTime)
	}
	// Task processes run in sessions of their own; in a CNI container they
	// all share its network namespace.
	killNetNS(run.NetNSPath)
	killByEnv("MESOS_DIRECTORY=" + run.Sandbox)
	if err := a.removeImages(run.ContainerID); err != nil {
		ex.log.Error("removing the container's images failed", zap.Error(err))
	}
	if (len(run.Networks) > 0 || run.NetNSPath != "") && a.cfg.Isolator != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.cfg.Isolator.Cleanup(ctx, run.ContainerID); err != nil {
			ex.log.Error("removing the container's networks failed", zap.Error(err))
		}
		cancel()
	}
}
