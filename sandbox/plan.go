package sandbox

import (
	"fmt"
	"time"
)

// runState is a process's place in Thermos' planner.
type runState int

const (
	waiting  runState = iota // runnable once its predecessors finished and min_duration passed
	running                  // a run is in flight
	finished                 // succeeded (or an ephemeral past its failure limit)
	failed                   // exhausted max_failures
)

// proc is the runner's bookkeeping for one Process. Only the runner's loop
// goroutine touches it.
type proc struct {
	spec     Process
	deps     []*proc
	state    runState
	runs     int       // runs started so far; the next run's number
	failures int       // failed runs
	lastExit time.Time // end of the previous run; zero before the first
	// notBefore holds the next run back after a run could not even start
	// (a missing work directory, a bad user): retrying those at once, with
	// min_duration 0, would spin the runner.
	notBefore time.Time
	cur       *child // the run in flight
	status    string // how the last failed run ended, e.g. "exit status 3"
}

func (p *proc) depsDone() bool {
	for _, d := range p.deps {
		if d.state != finished {
			return false
		}
	}
	return true
}

// readyAt is when min_duration allows the next run.
func (p *proc) readyAt() time.Time {
	if p.lastExit.IsZero() {
		return p.notBefore
	}
	return later(p.lastExit.Add(p.spec.MinDuration), p.notBefore)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// totalRunLimit fails a process after this many runs, whatever their
// outcome: thermos_runner.py, CappedTaskPlanner.TOTAL_RUN_LIMIT.
const totalRunLimit = 100

// runLimited fails p when it has run totalRunLimit times
// (TaskPlanner.has_reached_run_limit, checked on every transition).
func (p *proc) runLimited() bool {
	if p.runs < totalRunLimit {
		return false
	}
	p.state = failed
	if p.status == "" {
		p.status = "run limit reached"
	} else {
		p.status += "; run limit reached"
	}
	return true
}

// lost applies a run that a signal ended, as TaskPlanner.lost: not a
// failure; the process runs again after min_duration.
func (p *proc) lost(at time.Time) {
	p.lastExit = at
	if !p.runLimited() {
		p.state = waiting
	}
}

// ended applies a run's outcome as Thermos' TaskPlanner does: daemons go
// back to waiting after a success; a failure is retried until max_failures
// (0 = forever); an ephemeral process past its limit counts as finished.
func (p *proc) ended(at time.Time, ok bool) {
	p.lastExit = at
	if !ok {
		p.failures++
	}
	if p.runLimited() {
		return
	}
	if ok {
		if p.spec.Daemon {
			p.state = waiting
		} else {
			p.state = finished
		}
		return
	}
	switch {
	case p.spec.MaxFailures == 0 || p.failures < p.spec.MaxFailures:
		p.state = waiting
	case p.spec.Ephemeral:
		p.state = finished
	default:
		p.state = failed
	}
}

func (p *proc) failureMessage() string {
	s := "s"
	if p.runs == 1 {
		s = ""
	}
	return fmt.Sprintf("process %q failed: %s (after %d run%s)", p.spec.Name, p.status, p.runs, s)
}

// plan is the regular or the finalizing set of processes, in task order.
type plan []*proc

func (pl plan) runnable(now time.Time) []*proc {
	var out []*proc
	for _, p := range pl {
		if p.state == waiting && p.depsDone() && !now.Before(p.readyAt()) {
			out = append(out, p)
		}
	}
	return out
}

// nextReady is the earliest time a waiting process becomes runnable through
// min_duration alone; zero when none is waiting for time.
func (pl plan) nextReady(now time.Time) time.Time {
	var next time.Time
	for _, p := range pl {
		if p.state == waiting && p.depsDone() && now.Before(p.readyAt()) {
			if next.IsZero() || p.readyAt().Before(next) {
				next = p.readyAt()
			}
		}
	}
	return next
}

func (pl plan) count(s runState) int {
	n := 0
	for _, p := range pl {
		if p.state == s {
			n++
		}
	}
	return n
}

// complete: every process finished or failed; ephemeral processes are not
// waited for.
func (pl plan) complete() bool {
	for _, p := range pl {
		if p.state != finished && p.state != failed && !p.spec.Ephemeral {
			return false
		}
	}
	return true
}

// deadlocked: nothing runs or can ever run, yet the plan is not complete
// (a process is ordered after one that failed).
func (pl plan) deadlocked() bool {
	if pl.complete() {
		return false
	}
	for _, p := range pl {
		if p.state == running || (p.state == waiting && p.depsDone()) {
			return false
		}
	}
	return true
}

// blocked lists the non-ephemeral processes that can never run.
func (pl plan) blocked() []string {
	var out []string
	for _, p := range pl {
		if p.state == waiting && !p.depsDone() && !p.spec.Ephemeral {
			out = append(out, p.spec.Name)
		}
	}
	return out
}
