package executore2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/benchtab"
	"github.com/dewarhq/dewar/internal/e2etest"
)

// launches is how many tasks BenchmarkExecutor launches one after another
// (after launchWarmUp unrecorded ones).
const launches, launchWarmUp = 100, 5

// BenchmarkExecutor measures, in one run against the real binaries,
// LAUNCH→TASK_RUNNING over 100 sequential launches, from the launch
// request to the agent until TASK_RUNNING arrives back (agent sandbox
// set-up, executor start, SUBSCRIBE, LAUNCH, the task's fork+exec, the
// UPDATE and the agent's fsync'd checkpoint), and the executor's own part,
// TASK_STARTING→TASK_RUNNING from the executor's timestamps; beside them,
// one sample after each launch, a bare fork+exec+wait of /bin/true, the
// floor any launch pays. (The executor's memory and CPU at steady state:
// BenchmarkExecutorFootprint.)
func BenchmarkExecutor(b *testing.B) {
	bin := build(b)
	work := filepath.Join(b.TempDir(), "work")
	a := e2etest.StartLocalAgent(b, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--log-level", "warn")
	for b.Loop() {
		launchRunning, startingRunning, forkExec := launchLatencies(b, a)
		benchtab.Report(b, "executor: launch request → TASK_RUNNING (fake agent, command task)", "launch-running", launchRunning,
			"fork+exec+wait of /bin/true", forkExec)
		benchtab.Report(b, "executor: TASK_STARTING → TASK_RUNNING (executor's timestamps)", "starting-running", startingRunning,
			"fork+exec+wait of /bin/true", forkExec)
	}
	b.ReportMetric(0, "ns/op") // wall time per op says nothing here
}

// launchLatencies launches short tasks one after another and measures
// launch request → TASK_RUNNING, and TASK_STARTING → TASK_RUNNING by the
// executor's own timestamps.
func launchLatencies(b *testing.B, a *e2etest.LocalAgent) (launchRunning, startingRunning, forkExec benchtab.Samples) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < launchWarmUp+launches; i++ {
		task := commandTask(newID("latency"), "sleep 0.02")
		var running time.Time
		var starting, runningTS float64
		start := time.Now()
		last, err := fakeagent.LaunchRemote(ctx, a.URL, task, func(st mesos.TaskStatus) {
			switch st.GetState() {
			case mesos.TASK_STARTING:
				starting = st.GetTimestamp()
			case mesos.TASK_RUNNING:
				running = time.Now()
				runningTS = st.GetTimestamp()
			}
		})
		if err != nil {
			b.Fatalf("launch %d: %v", i, err)
		}
		if last.GetState() != mesos.TASK_FINISHED || running.IsZero() {
			b.Fatalf("launch %d: ended %s (%s), TASK_RUNNING seen: %t", i, last.GetState(), last.GetMessage(), !running.IsZero())
		}
		floor, err := benchtab.ForkExec()
		if err != nil {
			b.Fatalf("/bin/true: %v", err)
		}
		if i < launchWarmUp {
			continue
		}
		launchRunning = append(launchRunning, running.Sub(start))
		startingRunning = append(startingRunning, time.Duration((runningTS-starting)*float64(time.Second)))
		forkExec = append(forkExec, floor)
	}
	return launchRunning, startingRunning, forkExec
}
