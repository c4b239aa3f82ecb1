package sandbox

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartExit measures a whole task of one `true` process through
// the runner (validation, log files, bash, the state machine, the sweep)
// beside a bare fork+exec of /bin/true, both as medians of many samples so
// that `-benchtime 1x` still reports something stable.
func BenchmarkStartExit(b *testing.B) {
	const samples = 25
	task := Task{Name: "bench", MaxFailures: 1, Processes: []Process{{Name: "true", Cmdline: "true", MaxFailures: 1}}}
	opt := Options{Sandbox: b.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")}}
	var task_, started, bare []time.Duration
	for b.Loop() {
		for range samples {
			t0 := time.Now()
			r, err := Start(context.Background(), task, opt)
			if err != nil {
				b.Fatal(err)
			}
			for e := range r.Events() {
				if e.Kind == EventStarted {
					started = append(started, time.Since(t0))
				}
			}
			<-r.Done()
			task_ = append(task_, time.Since(t0))
			if r.Result().State != StateSuccess {
				b.Fatalf("result %+v", r.Result())
			}

			t1 := time.Now()
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, time.Since(t1))
		}
	}
	b.ReportMetric(median(task_), "task-ns/op")
	b.ReportMetric(median(started), "start-ns/op")
	b.ReportMetric(median(bare), "bare-fork-exec-ns/op")
}

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}
