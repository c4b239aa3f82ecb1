package sandbox

import (
	"strings"
	"testing"
	"time"
)

// TestKilledBySignalIsLost: a run that a signal ends is lost, as Thermos'
// planner has it (TaskPlanner.lost): it does not count against
// max_failures, and the process runs again after min_duration.
func TestKilledBySignalIsLost(t *testing.T) {
	t.Parallel()
	const minDur = 300 * time.Millisecond
	tr := startTask(t, Task{Name: "lost", MaxFailures: 1, Processes: []Process{{
		Name: "flaky", MaxFailures: 1, MinDuration: minDur,
		// The first run is SIGKILLed (bash itself), the second succeeds.
		Cmdline: `if [ -e ran ]; then exit 0; fi; touch ran; kill -KILL $$`,
	}}})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v, want SUCCESS: a signal is not a failure", res)
	}
	if lost, started := tr.count("flaky", EventLost), tr.count("flaky", EventStarted); lost != 1 || started != 2 {
		t.Fatalf("%d lost runs of %d, want 1 of 2", lost, started)
	}
	var lostAt time.Time
	for _, e := range tr.snapshot() {
		switch {
		case e.Process == "flaky" && e.Kind == EventLost:
			lostAt = e.Time
		case e.Process == "flaky" && e.Kind == EventStarted && e.Run == 1:
			if gap := e.Time.Sub(lostAt); gap < minDur {
				t.Errorf("rerun %s after the loss, want >= min_duration %s", gap, minDur)
			}
		}
	}
}

// TestRunLimit: a process is failed after 100 runs whatever their outcome
// (thermos_runner.py, CappedTaskPlanner.TOTAL_RUN_LIMIT), so one that a
// signal keeps killing does not run forever.
func TestRunLimit(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "capped", MaxFailures: 1, Processes: []Process{{
		Name: "doomed", MaxFailures: 1, Cmdline: `kill -KILL $$`,
	}}})
	res := tr.wait(60 * time.Second)
	if res.State != StateFailed || !strings.Contains(res.Message, "run limit reached (after 100 runs)") {
		t.Fatalf("result %+v, want FAILED at the limit of 100 runs", res)
	}
	if n := tr.count("doomed", EventStarted); n != totalRunLimit {
		t.Errorf("%d runs, want %d", n, totalRunLimit)
	}
}
