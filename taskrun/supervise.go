package taskrun

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
)

// supervisor drives a started task to its end: RUNNING when a process
// started (and the task is healthy, and announced), address changes,
// health failures and kills. Its fields belong to the supervise loop's
// goroutine; nothing else touches them.
type supervisor struct {
	t      *task
	ctx    context.Context
	p      *taskSpec
	facts  *Facts
	runner processes
	annc   *announcing
	hc     *healthWatch

	running    bool
	killing    bool
	withdrawn  bool
	failReason string                  // set when the executor kills because of a failure
	failCode   mesos.TaskStatus_Reason // Mesos' reason for that failure
	killReason string                  // set when the kill came through Kill
	killDone   chan struct{}           // closed when the kill sequence is over
	left       <-chan error            // the withdrawal of a task ending on its own
	joined     <-chan error            // the announcement in flight
	runningMsg string
}

func (t *task) supervise(ctx context.Context, p *taskSpec, facts *Facts, runner processes, annc *announcing, hc *healthWatch) {
	s := &supervisor{t: t, ctx: ctx, p: p, facts: facts, runner: runner, annc: annc, hc: hc, killDone: make(chan struct{})}
	var watch <-chan []netdiscover.NetworkAddrs
	if len(facts.Networks) > 0 {
		w, err := t.deps.addrs.Watch(ctx, t.networks(), netdiscover.Options{TentativeWait: t.opt.DiscoveryTimeout, Log: t.log})
		if err != nil {
			t.log.Warn("cannot watch addresses; changes will not be reported", zap.Error(err))
		} else {
			defer w.Close()
			watch = w.Updates()
		}
	}
	events, healthy, killed := runner.Events(), hc.healthy(), t.killed
	disk := t.watchDisk(ctx, p)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			s.onProcessEvent(ev)
		case err := <-s.joined:
			s.joined = nil
			s.onJoined(err)
		case <-healthy:
			healthy = nil // closed: take it once
			s.becomeRunning("healthy")
		case why := <-hc.failed():
			if !s.killing { // a task being killed may well stop answering
				s.failReason, s.failCode = why, mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
				s.startKill(nil, why)
			}
		case ex, ok := <-disk:
			disk = nil
			if ok && !s.killing {
				// resource_manager.py: a failed status check kills the
				// task (the usual kill sequence) and reports TASK_FAILED.
				s.failReason, s.failCode = ex.Message(), mesos.REASON_CONTAINER_LIMITATION_DISK
				s.startKill(nil, s.failReason)
			}
		case nets, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			s.onAddresses(nets)
		case <-killed:
			killed = nil
			if !s.killing {
				s.killReason = t.killReason
			}
			s.startKill(t.killPolicy, t.killReason)
		case <-runner.Done():
			// A process that ran briefly may have its start still queued
			// when the runner finishes: take it first, so that TASK_RUNNING
			// precedes the terminal state as the process's life did.
			s.drain(events)
			if s.killing {
				<-s.killDone // the kill withdrew first
			} else {
				s.awaitWithdrawal()
			}
			t.report(t.terminalStatus(runner.Result(), s.killReason, s.failReason, s.failCode, facts))
			return
		}
	}
}

// drain handles the process events already queued, without waiting.
func (s *supervisor) drain(events <-chan sandbox.Event) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			s.onProcessEvent(ev)
		default:
			return
		}
	}
}

func (s *supervisor) status(state mesos.TaskState, msg string) executor.Status {
	st := executor.Status{State: state, Message: msg, Networks: NetworkInfos(s.facts.Networks)}
	if s.hc != nil && state == mesos.TASK_RUNNING {
		h := true
		st.Healthy = &h
	}
	return st
}

func (s *supervisor) onProcessEvent(ev sandbox.Event) {
	s.t.recordEvent(ev)
	if ev.Kind == sandbox.EventStarted && s.hc == nil {
		s.becomeRunning(fmt.Sprintf("process %s started", ev.Process))
	}
	// The task is ending on its own: stop sending clients to it before its
	// remaining processes are signalled.
	if ev.Kind == sandbox.EventState && ev.TaskState != sandbox.StateActive {
		s.withdraw()
	}
}

// withdraw starts the withdrawal of a task ending on its own (a kill
// withdraws in its own sequence).
func (s *supervisor) withdraw() {
	if s.withdrawn || s.killing {
		return
	}
	s.withdrawn = true
	s.left = s.annc.leave(withdrawWait)
}

// awaitWithdrawal holds the terminal update of a task that ended on its
// own until its members are gone from the serversets, at most
// withdrawWait (an unreachable ensemble must not hold the update up; the
// members then go with the session). Thermos orders it so:
// AuroraExecutor._shutdown stops the status checkers, the announcer among
// them, before it sends the terminal update (aurora_executor.py) — but
// AnnouncerChecker.stop only defers Announcer.stop to a thread of its own
// (executor/common/announcer.py), so there the update races the delete.
// Waiting means a scheduler that hears TASK_FINISHED and starts a
// replacement never finds the old instance still announced.
func (s *supervisor) awaitWithdrawal() {
	s.withdraw() // the runner may end without a state event
	if s.left == nil {
		return
	}
	t := time.NewTimer(withdrawWait)
	defer t.Stop()
	select {
	case <-s.left:
	case <-t.C:
		s.t.log.Warn("the withdrawal from the serversets did not finish in time; reporting the end of the task anyway",
			zap.Duration("waited", withdrawWait))
	case <-s.t.shutdownc:
	}
}

// becomeRunning reports TASK_RUNNING, announcing first when the task has
// an announcement: a task is RUNNING once clients can find it.
func (s *supervisor) becomeRunning(msg string) {
	if s.running || s.killing || s.joined != nil {
		return
	}
	if s.annc == nil {
		s.running = true
		s.t.report(s.status(mesos.TASK_RUNNING, msg))
		return
	}
	s.runningMsg = msg
	s.joined = s.annc.join(*s.facts, s.t.joinTimeout())
}

func (s *supervisor) onJoined(err error) {
	if s.killing || s.withdrawn {
		return
	}
	if err != nil {
		s.failReason = fmt.Sprintf("announcing into ZooKeeper failed: %v", err)
		s.failCode = mesos.REASON_EXECUTOR_TERMINATED
		s.startKill(nil, s.failReason)
		return
	}
	s.running = true
	s.annc.update(*s.facts) // in case the addresses changed while joining
	s.t.report(s.status(mesos.TASK_RUNNING, s.runningMsg))
}

func (s *supervisor) onAddresses(nets []netdiscover.NetworkAddrs) {
	if describe(nets) == describe(s.facts.Networks) {
		return // the watcher's first value is the state we already know
	}
	s.facts.Networks = nets
	s.t.recordNetworks(s.facts)
	s.t.log.Info("addresses changed", zap.String("networks", describe(nets)))
	if s.running && !s.killing && !s.withdrawn {
		s.annc.update(*s.facts)
		s.t.report(s.status(mesos.TASK_RUNNING, "addresses changed: "+describe(nets)))
	}
}

func (s *supervisor) startKill(policy *mesos.KillPolicy, why string) {
	if s.killing {
		return
	}
	s.killing = true
	s.t.log.Info("killing", zap.String("why", why))
	go func() {
		defer close(s.killDone)
		s.t.kill(s.ctx, s.p, s.runner, s.annc, policy)
	}()
}
