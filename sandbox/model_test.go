package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResults runs whole tasks and checks how they end, and with which
// message, as Thermos' planner and runner decide.
func TestResults(t *testing.T) {
	t.Parallel()
	slowFail := Process{Name: "slow", Cmdline: "sleep 0.5; exit 1", MaxFailures: 1}
	tests := []struct {
		name    string
		task    Task
		state   State
		message string         // exact, when set
		contain []string       // substrings of the message
		runs    map[string]int // started runs per process
	}{
		{
			name:    "one process succeeds",
			task:    Task{Processes: []Process{newProc("hello", "echo hello")}, MaxFailures: 1},
			state:   StateSuccess,
			message: "all processes finished",
			runs:    map[string]int{"hello": 1},
		},
		{
			name:    "failure exhausts max_failures",
			task:    Task{Processes: []Process{{Name: "web", Cmdline: "exit 3", MaxFailures: 2}}, MaxFailures: 1},
			state:   StateFailed,
			message: `process "web" failed: exit status 3 (after 2 runs)`,
			runs:    map[string]int{"web": 2},
		},
		{
			name: "retried until it succeeds",
			task: Task{Processes: []Process{{Name: "flaky", MaxFailures: 5,
				Cmdline: `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]`}}, MaxFailures: 1},
			state: StateSuccess,
			runs:  map[string]int{"flaky": 3},
		},
		{
			name: "ephemeral is not waited for",
			task: Task{Processes: []Process{newProc("main", "true"),
				{Name: "sidecar", Cmdline: "sleep 1000", MaxFailures: 1, Ephemeral: true}}, MaxFailures: 1},
			state: StateSuccess,
			runs:  map[string]int{"main": 1, "sidecar": 1},
		},
		{
			name: "daemon reruns after success until it fails",
			task: Task{Processes: []Process{{Name: "d", Daemon: true, MaxFailures: 1, MinDuration: 10 * time.Millisecond,
				Cmdline: `echo run >> runs; [ $(wc -l < runs) -lt 3 ]`}}, MaxFailures: 1},
			state:   StateFailed,
			message: `process "d" failed: exit status 1 (after 3 runs)`,
			runs:    map[string]int{"d": 3},
		},
		{
			name:    "task max_failures 1 stops at the first failed process",
			task:    Task{Processes: []Process{newProc("fast", "exit 1"), slowFail, newProc("ok", "true")}, MaxFailures: 1},
			state:   StateFailed,
			message: `process "fast" failed: exit status 1 (after 1 run)`,
		},
		{
			name:    "task max_failures 2 fails with both processes",
			task:    Task{Processes: []Process{newProc("fast", "exit 1"), slowFail, newProc("ok", "true")}, MaxFailures: 2},
			state:   StateFailed,
			message: `process "fast" failed: exit status 1 (after 1 run); process "slow" failed: exit status 1 (after 1 run)`,
		},
		{
			name:    "task max_failures 3 tolerates two failed processes",
			task:    Task{Processes: []Process{newProc("fast", "exit 1"), slowFail, newProc("ok", "true")}, MaxFailures: 3},
			state:   StateSuccess,
			message: "all processes finished",
		},
		{
			name: "a process ordered after a failed one never runs",
			task: Task{Processes: []Process{newProc("a", "exit 1"), newProc("b", "true")},
				Order: [][]string{{"a", "b"}}, MaxFailures: 0},
			state:   StateFailed,
			contain: []string{`process "a" failed: exit status 1`, `["b"] never ran`},
			runs:    map[string]int{"a": 1, "b": 0},
		},
		{
			name: "a failing final process does not fail the task",
			task: Task{Processes: []Process{newProc("main", "true"),
				{Name: "cleanup", Cmdline: "exit 1", MaxFailures: 1, Final: true}}, MaxFailures: 1},
			state: StateSuccess,
			runs:  map[string]int{"main": 1, "cleanup": 1},
		},
		{
			// Lost, not failed (Thermos' planner), until the run limit.
			name:    "process killed by a signal every time fails at the run limit",
			task:    Task{Processes: []Process{newProc("self", "kill -9 $$")}, MaxFailures: 1},
			state:   StateFailed,
			message: `process "self" failed: signal: killed; run limit reached (after 100 runs)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.task.Name = "t"
			tc.task.FinalizationWait = 10 * time.Second
			tr := startTask(t, tc.task)
			res := tr.wait(30 * time.Second)
			if res.State != tc.state {
				t.Fatalf("state %s (%q), want %s; events:\n%s", res.State, res.Message, tc.state, tr.dump())
			}
			if tc.message != "" && res.Message != tc.message {
				t.Errorf("message %q, want %q", res.Message, tc.message)
			}
			for _, s := range tc.contain {
				if !strings.Contains(res.Message, s) {
					t.Errorf("message %q lacks %q", res.Message, s)
				}
			}
			for p, n := range tc.runs {
				if got := tr.count(p, EventStarted); got != n {
					t.Errorf("process %s started %d times, want %d; events:\n%s", p, got, n, tr.dump())
				}
			}
			evs := tr.snapshot()
			if last := evs[len(evs)-1]; last.Kind != EventState || last.TaskState != tc.state {
				t.Errorf("last event %+v, want the terminal state %s", last, tc.state)
			}
			for _, s := range []State{StateActive, StateCleaning, StateFinalizing} {
				if tr.stateIndex(s) < 0 {
					t.Errorf("no %s event; events:\n%s", s, tr.dump())
				}
			}
		})
	}
}

// TestOrdering: a process starts only after every process before it in
// any chain has succeeded.
func TestOrdering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		procs  []string
		order  [][]string
		before [][2]string // [a, b]: a exits before b starts
	}{
		{"chain", []string{"c", "b", "a"}, [][]string{{"a", "b", "c"}}, [][2]string{{"a", "b"}, {"b", "c"}}},
		{"join", []string{"a", "b", "c", "d"}, [][]string{{"a", "b", "d"}, {"c", "d"}},
			[][2]string{{"a", "b"}, {"b", "d"}, {"c", "d"}}},
		{"fork", []string{"root", "x", "y"}, [][]string{{"root", "x"}, {"root", "y"}},
			[][2]string{{"root", "x"}, {"root", "y"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := Task{Name: "order", MaxFailures: 1, Order: tc.order, FinalizationWait: 10 * time.Second}
			for _, n := range tc.procs {
				task.Processes = append(task.Processes, newProc(n, "sleep 0.05; echo "+n+" >> trace"))
			}
			tr := startTask(t, task)
			if res := tr.wait(30 * time.Second); res.State != StateSuccess {
				t.Fatalf("result %+v; events:\n%s", res, tr.dump())
			}
			for _, pair := range tc.before {
				exited, started := tr.index(pair[0], EventExited), tr.index(pair[1], EventStarted)
				if exited < 0 || started < 0 || exited > started {
					t.Errorf("%s must exit (event %d) before %s starts (event %d); events:\n%s",
						pair[0], exited, pair[1], started, tr.dump())
				}
			}
			b, err := os.ReadFile(filepath.Join(tr.workDir, "trace"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(strings.Fields(string(b))); got != len(tc.procs) {
				t.Errorf("trace %q: want %d lines", b, len(tc.procs))
			}
		})
	}
}

// TestMinDuration: a failed run is retried no sooner than min_duration after
// the previous run ended (and so after it started).
func TestMinDuration(t *testing.T) {
	t.Parallel()
	const minDur = 300 * time.Millisecond
	tr := startTask(t, Task{Name: "md", MaxFailures: 1, Processes: []Process{{
		Name: "retry", MaxFailures: 3, MinDuration: minDur,
		Cmdline: "date +%s%N >> starts; exit 1",
	}}})
	if res := tr.wait(30 * time.Second); res.State != StateFailed {
		t.Fatalf("result %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(tr.workDir, "starts"))
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for _, f := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, time.Unix(0, ns))
	}
	if len(starts) != 3 {
		t.Fatalf("%d runs, want 3", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < minDur {
			t.Errorf("run %d started %s after run %d, want >= %s", i, gap, i-1, minDur)
		}
	}
	// Measured by the runner: from the end of a run to the next start.
	var lastEnd time.Time
	for _, e := range tr.snapshot() {
		switch e.Kind {
		case EventFailed:
			lastEnd = e.Time
		case EventStarted:
			if !lastEnd.IsZero() && e.Time.Sub(lastEnd) < minDur {
				t.Errorf("run %d started %s after the previous run ended, want >= %s", e.Run, e.Time.Sub(lastEnd), minDur)
			}
		}
	}
}

// TestMaxConcurrency: never more than N processes at once, and N are used.
func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 3} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			t.Parallel()
			task := Task{Name: "mc", MaxFailures: 1, MaxConcurrency: limit}
			for i := range 6 {
				n := "p" + strconv.Itoa(i)
				// Each run marks itself present, counts who is present, and
				// stays a while so overlaps happen.
				task.Processes = append(task.Processes, newProc(n,
					"mkdir -p present; touch present/"+n+"; ls present | wc -l >> counts; sleep 0.2; rm present/"+n))
			}
			tr := startTask(t, task)
			if res := tr.wait(30 * time.Second); res.State != StateSuccess {
				t.Fatalf("result %+v", res)
			}
			b, err := os.ReadFile(filepath.Join(tr.workDir, "counts"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range strings.Fields(string(b)) {
				if n, _ := strconv.Atoi(f); n > limit {
					t.Errorf("a run saw %d processes running, limit %d", n, limit)
				}
			}
			inFlight, peak := 0, 0
			for _, e := range tr.snapshot() {
				switch e.Kind {
				case EventStarted:
					inFlight++
					peak = max(peak, inFlight)
				case EventExited, EventFailed, EventLost:
					inFlight--
				}
			}
			if peak != limit {
				t.Errorf("at most %d ran at once, want exactly the limit %d", peak, limit)
			}
		})
	}
}

// TestFinalProcesses: final processes run in FINALIZING, in their order,
// after every regular process ended.
func TestFinalProcesses(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "fin", MaxFailures: 1, FinalizationWait: 10 * time.Second,
		Processes: []Process{
			{Name: "save", Cmdline: "cat main.out > saved", MaxFailures: 1, Final: true},
			newProc("main", "sleep 0.1; echo result > main.out"),
			{Name: "upload", Cmdline: "cat saved > uploaded", MaxFailures: 1, Final: true},
			newProc("other", "true"),
		},
		Order: [][]string{{"save", "upload"}},
	})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v; events:\n%s", res, tr.dump())
	}
	fin := tr.stateIndex(StateFinalizing)
	for _, p := range []string{"main", "other"} {
		if i := tr.index(p, EventExited); i < 0 || i > fin {
			t.Errorf("%s exited at event %d, FINALIZING at %d", p, i, fin)
		}
	}
	if s, u := tr.index("save", EventStarted), tr.index("upload", EventStarted); s < fin || u < tr.index("save", EventExited) {
		t.Errorf("save started at %d, upload at %d, FINALIZING at %d; events:\n%s", s, u, fin, tr.dump())
	}
	b, err := os.ReadFile(filepath.Join(tr.workDir, "uploaded"))
	if err != nil || strings.TrimSpace(string(b)) != "result" {
		t.Errorf("uploaded = %q, %v; want the main process's output", b, err)
	}
}

// TestRunningAndEvents: Running turns true with the first start; the event
// stream ends with the terminal state and is then closed.
func TestRunningAndEvents(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "ev", MaxFailures: 1, Processes: []Process{
		newProc("wait", "while [ ! -e go ]; do sleep 0.01; done")}})
	eventually(t, 10*time.Second, "Running", tr.r.Running)
	if err := os.WriteFile(filepath.Join(tr.workDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := tr.wait(30 * time.Second)
	if res.State != StateSuccess {
		t.Fatalf("result %+v", res)
	}
	want := []EventKind{EventState, EventStarted, EventExited, EventState, EventState, EventState}
	evs := tr.snapshot()
	if len(evs) != len(want) {
		t.Fatalf("events:\n%s", tr.dump())
	}
	for i, k := range want {
		if evs[i].Kind != k {
			t.Errorf("event %d is %s, want %s", i, evs[i].Kind, k)
		}
	}
	if _, ok := <-tr.r.Events(); ok {
		t.Error("events channel still open after the task ended")
	}
}

// TestEnvironment: processes get exactly Options.Env, never the executor's
// own environment, plus HOME (the work directory, as Thermos), and run in
// the work directory.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	for name, env := range map[string][]string{"given": {"FOO=bar"}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr := startTask(t, Task{Name: "env", MaxFailures: 1, Processes: []Process{
				newProc("show", `echo "foo=${FOO-unset} home=${HOME-unset} pwd=$PWD"`)}},
				func(o *Options) { o.Env = env })
			if res := tr.wait(30 * time.Second); res.State != StateSuccess {
				t.Fatalf("result %+v", res)
			}
			foo := "unset"
			if env != nil {
				foo = "bar"
			}
			want := "foo=" + foo + " home=" + tr.workDir + " pwd=" + tr.workDir + "\n"
			if b, err := os.ReadFile(tr.logFile("show", 0, "stdout")); err != nil || string(b) != want {
				t.Errorf("stdout %q, %v; want %q", b, err, want)
			}
		})
	}
}

// TestThermosProfile: a .thermos_profile in the work directory is sourced
// by every run, as Thermos does through BASH_ENV.
func TestThermosProfile(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "profile", MaxFailures: 1, Processes: []Process{
		newProc("write", `echo 'export GREETING=hi' > .thermos_profile`),
		newProc("read", `echo "greeting=${GREETING-unset}"`),
	}, Order: [][]string{{"write", "read"}}})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v", res)
	}
	if b, err := os.ReadFile(tr.logFile("read", 0, "stdout")); err != nil || string(b) != "greeting=hi\n" {
		t.Errorf("stdout %q, %v; want the profile's variable", b, err)
	}
}

// TestDaemonUntilTaskEnds: a daemon reruns after every success, waiting
// min_duration, until the task ends; as ephemeral it does not hold the task.
func TestDaemonUntilTaskEnds(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "daemon", MaxFailures: 1, FinalizationWait: 10 * time.Second, Processes: []Process{
		{Name: "beat", Cmdline: "echo beat >> beats", MaxFailures: 1, MinDuration: 20 * time.Millisecond, Daemon: true, Ephemeral: true},
		newProc("main", `until [ "$(wc -l < beats 2>/dev/null)" -ge 3 ]; do sleep 0.01; done`),
	}})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v; events:\n%s", res, tr.dump())
	}
	// The third run may be stopped by CLEANING right after it wrote.
	if n := tr.count("beat", EventExited); n < 2 || tr.count("beat", EventStarted) < 3 {
		t.Errorf("daemon succeeded %d times in %d runs, want at least 2 in 3", n, tr.count("beat", EventStarted))
	}
	if tr.count("beat", EventFailed) != 0 {
		t.Errorf("daemon failed; events:\n%s", tr.dump())
	}
	if started, ended := tr.count("beat", EventStarted), tr.count("beat", EventExited)+tr.count("beat", EventLost); started != ended {
		t.Errorf("daemon started %d runs and ended %d", started, ended)
	}
	if last := tr.stateIndex(StateCleaning); tr.index("main", EventExited) > last {
		t.Errorf("CLEANING before main ended; events:\n%s", tr.dump())
	}
}

// TestEventsDropOldest: with nobody reading, the runner never blocks and
// the newest events are kept.
func TestEventsDropOldest(t *testing.T) {
	t.Parallel()
	r := &Runner{events: make(chan Event, eventBuffer)}
	const n = eventBuffer + 10
	for i := range n {
		r.emit(Event{Run: i})
	}
	if r.dropped != 10 {
		t.Errorf("dropped %d, want 10", r.dropped)
	}
	if first := <-r.events; first.Run != 10 {
		t.Errorf("oldest kept event is run %d, want 10", first.Run)
	}
}

// TestStartFailure: a run that cannot start counts as a failed run, is
// retried no sooner than a second later, and names the cause.
func TestStartFailure(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "nostart", MaxFailures: 1, Processes: []Process{
		// A file where the sandbox was: neither the work directory nor
		// the log directory inside it can be made again.
		newProc("vandal", `rm -rf "$PWD" && touch "$PWD"`),
		{Name: "victim", Cmdline: "true", MaxFailures: 2},
	}, Order: [][]string{{"vandal", "victim"}}})
	res := tr.wait(30 * time.Second)
	if res.State != StateFailed || !strings.Contains(res.Message, `process "victim" failed: cannot start:`) ||
		!strings.HasSuffix(res.Message, "(after 2 runs)") {
		t.Fatalf("result %+v", res)
	}
	var fails []time.Time
	for _, e := range tr.snapshot() {
		if e.Process == "victim" && e.Kind == EventFailed {
			fails = append(fails, e.Time)
		}
	}
	if len(fails) != 2 || fails[1].Sub(fails[0]) < startRetryDelay {
		t.Errorf("start failures at %v, want two at least %s apart", fails, startRetryDelay)
	}
}
