package taskrun

import (
	"context"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

const (
	// DefaultStopTimeout bounds a kill from the scheduler, as Thermos'
	// --stop_timeout_in_secs (120) bounds AuroraExecutor._shutdown's
	// runner.stop (aurora/executor/aurora_executor.py).
	DefaultStopTimeout = 120 * time.Second
	// DefaultPreemptionWait is the time from SIGTERM to SIGKILL when the
	// scheduler gives no kill policy: Thermos' runner kills with
	// preemption_wait = THERMOS_PREEMPTION_WAIT, one minute
	// (aurora/executor/thermos_task_runner.py; thermos/core/runner.py,
	// TaskRunner.kill).
	DefaultPreemptionWait = time.Minute
	// withdrawWait bounds the withdrawal from the serversets, so that an
	// unreachable ensemble cannot hold up the kill.
	withdrawWait = 2 * time.Second
)

// kill is Thermos' kill sequence (AuroraExecutor._shutdown: the status
// checkers, the announcer among them, stop first; then runner.stop, which
// HttpLifecycleManager wraps): withdraw from the serversets, so no client
// is sent to a dying instance; POST the graceful shutdown endpoint and wait
// up to graceful_shutdown_wait_secs for the processes to exit, then the
// shutdown endpoint and shutdown_wait_secs (http_lifecycle.py,
// _terminate_http); then SIGTERM to every process, and SIGKILL to what is
// left once the preemption wait has passed. The final processes run after
// the SIGTERMed ones are gone, within the same deadline: Thermos' runner
// uses the preemption deadline instead of finalization_wait once killed
// (thermos/core/runner.py, _finalization_remaining).
//
// Nothing here is bounded by the agent's shutdown grace period: the agent
// puts no limit on a KILL. The whole sequence ends by StopTimeout at the
// latest (SIGKILL then); a kill policy's grace period replaces the
// preemption wait, as Mesos defines it (time from SIGTERM to SIGKILL).
//
// A Shutdown, before or during the sequence, skips what is left of the
// lifecycle endpoints and SIGKILLs by its deadline: the agent destroys the
// container when its grace period runs out.
func (t *task) kill(ctx context.Context, p *taskSpec, runner processes, annc *announcing, policy *mesos.KillPolicy) {
	stopBy := time.Now().Add(t.opt.StopTimeout)
	if t.shuttingDown() {
		// Shutdown only: withdraw, TERM, KILL, all within the grace period.
		grace := max(time.Until(t.shutdownBy), 0)
		select {
		case <-annc.leave(min(grace/4, withdrawWait)):
		case <-ctx.Done():
		}
		runner.Kill(ctx, time.Until(t.shutdownBy))
		return
	}
	// A Shutdown in the middle of the sequence ends it within its grace.
	go func() {
		select {
		case <-t.shutdownc:
			t.log.Info("shutdown during the kill: ending it within the shutdown grace period",
				zap.Time("deadline", t.shutdownBy))
			runner.Kill(ctx, time.Until(t.shutdownBy))
		case <-runner.Done():
		}
	}()
	select {
	case <-annc.leave(withdrawWait):
	case <-t.shutdownc:
	case <-runner.Done():
	}
	lctx, cancel := context.WithDeadline(ctx, stopBy)
	defer cancel()
	go func() {
		select {
		case <-t.shutdownc:
			cancel()
		case <-lctx.Done():
		}
	}()
	t.lifecycleShutdown(lctx, p, runner)
	wait := min(preemptionWait(policy, t.info.KillPolicy, t.opt.PreemptionWait), max(time.Until(stopBy), 0))
	t.log.Info("sending SIGTERM", zap.Duration("sigkill_after", wait))
	runner.Kill(ctx, wait)
}

func (t *task) shuttingDown() bool {
	select {
	case <-t.shutdownc:
		return true
	default:
		return false
	}
}
