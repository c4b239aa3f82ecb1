package executore2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// launches is how many tasks BenchmarkExecutor launches one after another.
const launches = 100

// BenchmarkExecutor measures, in one run against the real binaries:
//
//   - the executor's memory while it runs one task: VmRSS and VmHWM (MiB)
//     from /proc/<pid>/status (goal: ≤ 12 MiB; Thermos peaks near 170 MB),
//     for the default build and for a static (CGO_ENABLED=0) one;
//   - LAUNCH→TASK_RUNNING over 100 sequential launches, from the launch
//     request to the agent until TASK_RUNNING arrives back (agent sandbox
//     set-up, executor start, SUBSCRIBE, LAUNCH, the task's fork+exec,
//     the UPDATE and the agent's fsync'd checkpoint): median and p99 in ms;
//     and the executor's own part, TASK_STARTING→TASK_RUNNING from the
//     executor's timestamps;
//   - beside them, a bare fork+exec+wait of /bin/true in the same run
//     (median, ms), the floor any launch pays.
//
// It reports and asserts nothing about the numbers.
func BenchmarkExecutor(b *testing.B) {
	bin := build(b)
	work := filepath.Join(b.TempDir(), "work")
	a := e2etest.StartLocalAgent(b, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--log-level", "warn")
	static := buildStatic(b)
	for i := 0; i < b.N; i++ {
		rss, hwm := executorMemory(b, a, "")
		staticRSS, staticHWM := executorMemory(b, a, static)
		launchRunning, startingRunning := launchLatencies(b, a)
		forkExec := forkExecTrue(b)
		b.ReportMetric(rss, "MiB-VmRSS")
		b.ReportMetric(hwm, "MiB-VmHWM")
		b.ReportMetric(staticRSS, "MiB-VmRSS-static")
		b.ReportMetric(staticHWM, "MiB-VmHWM-static")
		b.ReportMetric(ms(quantile(launchRunning, 0.5)), "ms-launch-running-p50")
		b.ReportMetric(ms(quantile(launchRunning, 0.99)), "ms-launch-running-p99")
		b.ReportMetric(ms(quantile(startingRunning, 0.5)), "ms-starting-running-p50")
		b.ReportMetric(ms(quantile(forkExec, 0.5)), "ms-fork-exec-true-p50")
	}
	b.ReportMetric(0, "ns/op") // wall time per op says nothing here
}

// buildStatic builds dewar-executor with CGO_ENABLED=0: a static binary
// maps no libc (about 1.3 MiB of VmRSS), which is what the "-static"
// metrics show beside the default build's.
func buildStatic(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "dewar-executor-static")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/dewar-executor")
	cmd.Dir = testenv.RepoRoot(b)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("CGO_ENABLED=0 go build ./cmd/dewar-executor: %v\n%s", err, msg)
	}
	return out
}

// executorMemory runs one task (a sleep) under executorBin (the agent's
// --executor if empty) and reads the executor's memory a second after
// TASK_RUNNING, once start-up garbage has been collected.
func executorMemory(b *testing.B, a *e2etest.LocalAgent, executorBin string) (rss, hwm float64) {
	b.Helper()
	marker := uniqueSleep()
	killMarkedAtCleanup(b, marker)
	id := newID("rss")
	task := commandTask(id, "sleep "+shellWord(marker))
	exID := id
	if executorBin != "" {
		exID = "static-" + id
		noShell := false
		task.Executor = &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: exID},
			Command:    &mesos.CommandInfo{Value: &executorBin, Shell: &noShell, Arguments: []string{executorBin}},
		}
	}
	l := launch(b, a.URL, task)
	l.await(b, mesos.TASK_STARTING)
	l.await(b, mesos.TASK_RUNNING)
	ex := a.Executor(b, fakeagent.CLIFrameworkID, exID)
	killExecutorAtCleanup(b, ex.PID)
	time.Sleep(time.Second) // let the task settle: this measures steady state
	rss, hwm, err := memory(ex.PID)
	if err != nil {
		b.Fatalf("memory of executor %d: %v", ex.PID, err)
	}
	b.Logf("executor %d while running one task: VmRSS %.1f MiB, VmHWM %.1f MiB (%s)", ex.PID, rss, hwm, rssDetail(ex.PID))
	// End the task (its sleep, outside the executor) so the executor
	// finishes it normally and exits.
	for _, pid := range processesWith(marker) {
		killPID(pid)
	}
	l.await(b, mesos.TASK_FAILED)
	testenv.WaitUntil(b, 20*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(ex.PID) })
	return rss, hwm
}

// launchLatencies launches short tasks one after another and measures
// launch request → TASK_RUNNING, and TASK_STARTING → TASK_RUNNING by the
// executor's own timestamps.
func launchLatencies(b *testing.B, a *e2etest.LocalAgent) (launchRunning, startingRunning []time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := 0; i < launches; i++ {
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
		launchRunning = append(launchRunning, running.Sub(start))
		startingRunning = append(startingRunning, time.Duration((runningTS-starting)*float64(time.Second)))
	}
	return launchRunning, startingRunning
}

// forkExecTrue times fork+exec+wait of /bin/true, as many times as there
// are launches.
func forkExecTrue(b *testing.B) []time.Duration {
	b.Helper()
	var out []time.Duration
	for i := 0; i < launches; i++ {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatalf("/bin/true: %v", err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// quantile is the nearest-rank q-quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
