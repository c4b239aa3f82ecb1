package checkpoint

import "time"

// Helpers that change a Task the way the executor records events; they
// keep the document's invariants (runs in order, one entry per process).

// AddState appends a state, unless it repeats the current one with the
// same message (an address change re-reports TASK_RUNNING with a new
// message, which is history worth keeping).
func (t *Task) AddState(state, msg string, at time.Time) {
	if n := len(t.States); n > 0 && t.States[n-1].State == state && t.States[n-1].Message == msg {
		return
	}
	t.States = append(t.States, Transition{State: state, Time: at, Message: msg})
}

// AddRunnerState appends a runner state unless it is the current one.
func (t *Task) AddRunnerState(state, msg string, at time.Time) {
	if n := len(t.RunnerStates); n > 0 && t.RunnerStates[n-1].State == state {
		if msg != "" {
			t.RunnerStates[n-1].Message = msg
		}
		return
	}
	t.RunnerStates = append(t.RunnerStates, Transition{State: state, Time: at, Message: msg})
}

// AddProcess declares a process before its first run, so that the observer
// lists processes that never started (Thermos' "waiting").
func (t *Task) AddProcess(name string) *Process {
	if p := t.Process(name); p != nil {
		return p
	}
	t.Processes = append(t.Processes, Process{Name: name, Runs: []Run{}})
	return &t.Processes[len(t.Processes)-1]
}

// run returns run n of process name, creating both as needed.
func (t *Task) run(name string, n int) *Run {
	p := t.AddProcess(name)
	for i := range p.Runs {
		if p.Runs[i].Run == n {
			return &p.Runs[i]
		}
	}
	p.Runs = append(p.Runs, Run{Run: n})
	return &p.Runs[len(p.Runs)-1]
}

// RunStarted records the start of run n of a process.
func (t *Task) RunStarted(name string, n, pid int, at time.Time) {
	r := t.run(name, n)
	r.PID, r.State, r.Start = pid, RunRunning, &at
}

// RunEnded records the end of run n: state is RunSuccess, RunFailed or
// RunKilled; code the exit status (-1: a signal, or it never started).
func (t *Task) RunEnded(name string, n int, state string, code int, msg string, at time.Time) {
	r := t.run(name, n)
	r.State, r.Stop, r.ExitCode, r.Message = state, &at, &code, msg
}

// SetUsage records a sample of run n of a process; false when the task
// has no such run, or the sample equals the recorded one (nothing to
// write).
func (t *Task) SetUsage(name string, n int, u Usage) bool {
	p := t.Process(name)
	if p == nil {
		return false
	}
	for i := range p.Runs {
		r := &p.Runs[i]
		if r.Run != n {
			continue
		}
		if r.Usage != nil && sameUsage(*r.Usage, u) {
			return false
		}
		r.Usage = &u
		return true
	}
	return false
}

// SetDisk records a disk sample; false when it equals the recorded one.
func (t *Task) SetDisk(d Disk) bool {
	if o := t.Disk; o != nil && o.Bytes == d.Bytes && o.Entries == d.Entries && o.Truncated == d.Truncated {
		return false
	}
	t.Disk = &d
	return true
}

// sameUsage ignores the time: an idle process's sample is not news.
func sameUsage(a, b Usage) bool {
	return a.CPUSeconds == b.CPUSeconds && a.RSSBytes == b.RSSBytes && a.Processes == b.Processes
}
