package observer

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// BenchmarkObserver1000Tasks runs the real dewar-observer binary on 1,000
// synthetic tasks (5 processes, 2 networks each; a tenth finished) and
// measures, over real HTTP on loopback, p50 and p95 of the list page, a
// filtered list, a task page, a log tail and /metrics; then its peak RSS
// and its CPU use over 3 s without requests. Many samples per iteration,
// so `-benchtime 1x` (make bench) reports stable figures.
func BenchmarkObserver1000Tasks(b *testing.B) {
	root := b.TempDir()
	id := manyTasks(b, root, 1000)
	bin := testenv.Binary(b, "dewar-observer")
	cmd := exec.Command(bin, "--mesos-root", root, "--ip", "127.0.0.1", "--port", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := observerURL(b, stderr)

	get := func(path string) time.Duration {
		t0 := time.Now()
		resp, err := http.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		return time.Since(t0)
	}
	pages := []struct {
		name, path string
		samples    int
	}{
		{"list", "/main", 100},
		{"list-filtered", "/main?job=job7&state=active", 100},
		{"task", "/task/" + id, 100},
		{"log", "/logs/" + id + "/web/1/stdout", 100},
		{"metrics", "/metrics", 20},
	}
	got := map[string][]time.Duration{}
	first := get("/main") // the first scan reads every checkpoint
	resp, err := http.Get(base + "/j/task_id_count")
	if err != nil {
		b.Fatal(err)
	}
	count, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(count), `"all": 1000`) {
		b.Fatalf("the observer does not see the 1000 tasks: %s", count)
	}
	for b.Loop() {
		for _, p := range pages {
			for range p.samples {
				got[p.name] = append(got[p.name], get(p.path))
			}
		}
	}
	b.ReportMetric(ms(first), "first-list-ms")
	for _, p := range pages {
		b.ReportMetric(percentile(got[p.name], 50), p.name+"-p50-ms")
		b.ReportMetric(percentile(got[p.name], 95), p.name+"-p95-ms")
	}
	b.ReportMetric(float64(procStatusKB(b, cmd.Process.Pid, "VmHWM"))/1024, "peak-rss-MiB")
	// Idle: no request for 3 s (the index has no timer of its own).
	cpu0 := procCPUTicks(b, cmd.Process.Pid)
	time.Sleep(3 * time.Second)
	cpu1 := procCPUTicks(b, cmd.Process.Pid)
	b.ReportMetric(float64(cpu1-cpu0)/100/3*100, "idle-cpu-%") // USER_HZ is 100 on Linux
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return ms(s[min(len(s)*p/100, len(s)-1)])
}

// observerURL reads the binary's "observer: http://..." line.
func observerURL(tb testing.TB, stderr io.Reader) string {
	tb.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "observer: "); ok {
				found <- strings.TrimSuffix(u, "/")
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		tb.Fatal("dewar-observer printed no \"observer:\" line within 30 s")
		return ""
	}
}

func procStatusKB(tb testing.TB, pid int, key string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// procCPUTicks is utime+stime of pid, in clock ticks.
func procCPUTicks(tb testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which ends at the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}
