package executore2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/benchtab"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// footprintSettle is how long the executors run their task before the
// window starts: past start-up, the first health checks, the ZooKeeper
// session's first pings and the first usage sample (every 30 s).
const footprintSettle = 30 * time.Second

// footprintWindow is how long the executor's CPU time is measured after
// settling, and how much longer it runs before its memory is read: six
// intervals of the checkpoint sampler, 18 health checks, and several
// collections of the Go runtime even at GOGC=100. Memory read at the end of
// settling alone would miss the garbage that piles up until the next
// collection (13.8 MiB after 30 s, 16.8 MiB after 3.5 min at GOGC=100).
const footprintWindow = 180 * time.Second

// BenchmarkExecutorFootprint measures what one real dewar-executor costs an
// agent at steady state: it runs an announced Aurora service task (one
// long-running process, a shell health check every 10 s, a ZooKeeper
// member, the checkpoint and its usage sampler at the default 30 s) under
// the fake agent, waits footprintSettle and footprintWindow, and reads
//
//   - VmRSS and VmHWM (/proc/<pid>/status: the peak over the executor's
//     whole life), and VmRSS split into RssAnon (Go heap, goroutine and
//     thread stacks, runtime metadata: this executor's own), RssFile (the
//     executable's pages: page cache, shared with every process that maps
//     the same file) and RssShmem;
//   - Pss, private and shared pages (/proc/<pid>/smaps_rollup) while two
//     executors of the one binary run: what one more executor costs an
//     agent that runs the executor from one path;
//   - where the executable's resident pages are (text, rodata, pclntab,
//     data: /proc/<pid>/pagemap against its ELF sections) and how many of
//     its touched 64 KiB windows are whole (the kernel's fault-around
//     maps the 16 pages around each fault that are in the page cache),
//     with the live heap and the stacks of
//     the Go runtime's last collection (GODEBUG=gctrace=1 in the
//     executor's stderr);
//   - the executor's own CPU time (utime+stime) over footprintWindow, as a
//     share of one core: the sampler, the health checks' forks, the
//     ZooKeeper pings;
//
// for the executor as built (`make build`: static, roles through getent),
// a second executor of the same binary, at Go's default GOGC=100 (the
// executor sets 25 itself), and a cgo build (the old default), beside the
// floor: an idle Go program doing nothing. DEWAR_FOOTPRINT_ENV="NAME=VALUE
// ..." adds one more executor for each NAME=VALUE, with that in its
// environment (to try a setting such as GOMEMLIMIT without editing this
// file). The table (DEWAR_BENCH_TABLE, `make bench`) has every figure: Go
// cuts a benchmark's log short.
func BenchmarkExecutorFootprint(b *testing.B) {
	bin := build(b)
	zk := zktest.Start(b)
	work := filepath.Join(b.TempDir(), "work")
	a := e2etest.StartLocalAgent(b, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor, "--log-level", "warn")
	cgo := buildVariant(b, "cgo", "CGO_ENABLED=1")
	unstripped := buildVariant(b, "unstripped", "CGO_ENABLED=0")
	type variant struct {
		name, bin, env string
		ownCopy        bool // bin is this executor's alone: its page cache is read
	}
	variants := []variant{
		{"dewar-executor (make build: static, -ldflags=-s)", bin.executor, "", false},
		{"dewar-executor (make build: static, -ldflags=-s), a second one", bin.executor, "", false},
		{"dewar-executor (make build: static, -ldflags=-s), its own fresh copy (as Aurora fetches it into each sandbox)", freshCopy(b, bin.executor), "", true},
		{"dewar-executor (static, with the symbol table and DWARF: no -ldflags=-s), its own fresh copy", freshCopy(b, unstripped), "", true},
		{"dewar-executor (make build: static, -ldflags=-s), GOGC=100 (Go's default)", bin.executor, "GOGC=100", false},
		{"dewar-executor, cgo build", cgo, "", false},
	}
	for _, env := range strings.Fields(os.Getenv("DEWAR_FOOTPRINT_ENV")) {
		variants = append(variants, variant{"dewar-executor (make build: static, -ldflags=-s), " + env, bin.executor, env, false})
	}
	idle := buildIdle(b)
	for i := 0; i < b.N; i++ {
		type running struct {
			pid     int
			sandbox string
			marker  string
			l       *launched
		}
		var runs []running
		for _, v := range variants {
			marker := uniqueSleep()
			killMarkedAtCleanup(b, marker)
			id := newID("footprint")
			l := launch(b, a.URL, auroraServiceTask(b, id, v.bin, zk.Addr(), marker, v.env))
			l.await(b, mesos.TASK_STARTING)
			l.await(b, mesos.TASK_RUNNING)
			ex := a.Executor(b, fakeagent.CLIFrameworkID, "thermos-"+id)
			killExecutorAtCleanup(b, ex.PID)
			runs = append(runs, running{ex.PID, ex.Sandbox, marker, l})
		}
		floor := exec.Command(idle)
		if err := floor.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = floor.Process.Kill(); _ = floor.Wait() })

		time.Sleep(footprintSettle)
		cpu0 := make([]float64, len(runs))
		early := make([]mem, len(runs))
		for j, r := range runs {
			cpu0[j] = cpuSeconds(b, r.pid)
			early[j] = breakdown(b, r.pid, variants[j].bin)
		}
		time.Sleep(footprintWindow)
		floorRSS := breakdown(b, floor.Process.Pid, idle)
		for j, r := range runs {
			used := cpuSeconds(b, r.pid) - cpu0[j]
			// Before breakdown, which reads the file's ELF headers.
			cache := pageCacheMiB(b, variants[j].bin)
			m := breakdown(b, r.pid, variants[j].bin)
			gc := lastGC(filepath.Join(r.sandbox, "stderr"))
			b.Logf("%s: after %v %s; after %v %s; %s", variants[j].name, footprintSettle, early[j], footprintSettle+footprintWindow, m, gc)
			n := strconv.Itoa(j)
			b.ReportMetric(m.rss, "MiB-VmRSS-"+n)
			b.ReportMetric(m.rssAnon, "MiB-RssAnon-"+n)
			b.ReportMetric(m.rssFile, "MiB-RssFile-"+n)
			b.ReportMetric(m.pss, "MiB-Pss-"+n)
			b.ReportMetric(m.private, "MiB-private-"+n)
			benchtab.Add(b, benchtab.Row{Figure: "memory at steady state, " + variants[j].name, N: 1,
				P50: fmt.Sprintf("VmRSS %.1f MiB (HWM %.1f) after %v: RssAnon %.1f, RssFile %.1f, RssShmem %.1f; Pss %.1f, private %.1f, shared %.1f",
					m.rss, m.hwm, footprintSettle+footprintWindow, m.rssAnon, m.rssFile, m.rssShmem, m.pss, m.private, m.shared),
				P99: fmt.Sprintf("executable %.1f (text %.1f, rodata %.1f, pclntab %.1f, data %.1f; %d of %d touched 64 KiB windows whole), libs %.1f MiB; %s; %d threads; after %v VmRSS %.1f MiB",
					m.exe, m.text, m.rodata, m.pclntab, m.data, m.wholeWindows, m.windows, m.libs, gc, m.threads, footprintSettle, early[j].rss),
				Floor: "idle Go program", FloorP50: fmt.Sprintf("VmRSS %.1f MiB", floorRSS.rss),
				FloorP99: fmt.Sprintf("RssAnon %.1f, RssFile %.1f MiB", floorRSS.rssAnon, floorRSS.rssFile),
				Ratio:    fmt.Sprintf("%.1f×", m.rss/floorRSS.rss)})
			if variants[j].ownCopy {
				// Only this executor runs this file: the page cache it
				// holds is what this executor read in (its RssFile and
				// whatever read-ahead brought beside it), charged to its
				// container's memory cgroup with its RssAnon.
				c := cache
				b.ReportMetric(c, "MiB-pagecache-"+n)
				benchtab.Add(b, benchtab.Row{Figure: "the page cache of its own executable, " + variants[j].name, N: 1,
					P50: fmt.Sprintf("%.1f MiB of the file in the page cache", c),
					P99: fmt.Sprintf("with RssAnon: %.1f MiB held for this executor", c+m.rssAnon)})
			}
			share := 100 * used / footprintWindow.Seconds()
			b.ReportMetric(share, "pct-core-"+n)
			benchtab.Add(b, benchtab.Row{Figure: "CPU at steady state (sampler, health checks, ZooKeeper), " + variants[j].name, N: 1,
				P50: fmt.Sprintf("%.3f%% of a core", share), P99: fmt.Sprintf("%.2f s over %v; %d minor faults since start", used, footprintWindow, m.minflt)})
		}
		// SIGTERM: the executor kills its task and exits, as on an agent's
		// SHUTDOWN.
		for _, r := range runs {
			_ = syscall.Kill(r.pid, syscall.SIGTERM)
		}
		for _, r := range runs {
			testenv.WaitUntil(b, 30*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(r.pid) })
			testenv.WaitUntil(b, 30*time.Second, "the task's process to end", func() bool { return len(processesWith(r.marker)) == 0 })
		}
	}
	b.ReportMetric(0, "ns/op")
}

// auroraServiceTask is an Aurora service task as the scheduler sends it
// (AssignedTask in TaskInfo.data) under an ExecutorInfo that runs
// executorBin announcing into zkAddr. Its one process sleeps (marker makes
// it findable); a shell health check runs every 10 s.
func auroraServiceTask(tb testing.TB, id, executorBin, zkAddr, marker, env string) mesos.TaskInfo {
	tb.Helper()
	job := map[string]any{
		"name": "footprint", "role": "root", "environment": "prod", "cluster": "bench", "instances": 1, "service": true,
		"max_task_failures": 1, "cron_collision_policy": "KILL_EXISTING",
		"announce": map[string]any{"primary_port": "http", "portmap": map[string]any{"aurora": "http"}},
		"health_check_config": map[string]any{
			"health_checker":           map[string]any{"shell": map[string]any{"shell_command": "true"}},
			"initial_interval_secs":    1.0,
			"interval_secs":            10.0,
			"max_consecutive_failures": 3, "min_consecutive_successes": 1, "timeout_secs": 5.0,
		},
		"task": map[string]any{
			"name": "footprint",
			"processes": []any{map[string]any{"name": "server", "cmdline": "sleep " + shellWord(marker),
				"max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5, "final": false}},
			"constraints": []any{}, "resources": map[string]any{"cpu": 0.1, "ram": 16 << 20, "disk": 16 << 20},
			"max_failures": 1, "max_concurrency": 0, "finalization_wait": 5,
		},
	}
	raw, err := json.Marshal(job)
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := aurora.ParseJob(raw)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := aurora.BuildAssignedTask(parsed, raw, id, 0, map[string]int32{"http": 31000})
	if err != nil {
		tb.Fatal(err)
	}
	noShell := false
	vars := []mesos.Environment_Variable{{Name: "GODEBUG", Value: ptrTo("gctrace=1")}}
	if k, v, ok := strings.Cut(env, "="); ok {
		vars = append(vars, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return mesos.TaskInfo{Name: "footprint", TaskID: mesos.TaskID{Value: id}, Data: data,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "thermos-" + id},
			Name:       ptrTo(aurora.ExecutorName),
			Command: &mesos.CommandInfo{Value: &executorBin, Shell: &noShell,
				Arguments:   []string{executorBin, "--announcer-ensemble", zkAddr},
				Environment: &mesos.Environment{Variables: vars}},
		}}
}

func ptrTo[T any](v T) *T { return &v }

// buildVariant builds dewar-executor with extra environment (e.g.
// CGO_ENABLED=1) into a temp dir.
func buildVariant(b *testing.B, name string, env ...string) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "dewar-executor-"+name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/dewar-executor")
	cmd.Dir = testenv.RepoRoot(b)
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s go build ./cmd/dewar-executor: %v\n%s", strings.Join(env, " "), err, msg)
	}
	return out
}

// buildIdle builds the floor: a Go program that only sleeps, built as
// `make build` builds the executor.
func buildIdle(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(time.Hour) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module idle\n\ngo 1.26\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "idle")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the idle Go program: %v\n%s", err, msg)
	}
	return out
}

// cpuSeconds is pid's own user+system time (fields 14 and 15 of
// /proc/<pid>/stat, in clock ticks of 1/100 s).
func cpuSeconds(tb testing.TB, pid int) float64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	utime, _ := strconv.ParseFloat(string(f[11]), 64)
	stime, _ := strconv.ParseFloat(string(f[12]), 64)
	return (utime + stime) / 100
}

// gcLine is one line of GODEBUG=gctrace=1: "... 4->4->1 MB, 4 MB goal, 0 MB
// stacks, 0 MB globals, 2 P".
var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks, (\d+) MB globals, (\d+) P`)

// lastGC summarises the last collection the Go runtime traced into path.
func lastGC(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no gctrace: " + err.Error()
	}
	all := gcLine.FindAllSubmatch(b, -1)
	if len(all) == 0 {
		return "no collection traced"
	}
	m := all[len(all)-1]
	return fmt.Sprintf("heap live %s MB after the last of %d GCs (goal %s MB), stacks %s MB, globals %s MB, %s Ps",
		m[3], len(all), m[4], m[5], m[6], m[7])
}
