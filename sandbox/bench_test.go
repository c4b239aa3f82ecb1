package sandbox

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/benchtab"
)

// BenchmarkStartExit measures a whole task of one `true` process through
// the runner (validation, log files, bash, the state machine, the sweep),
// and the time until its process started, many times after a warm-up,
// beside the floor measured in the same run: fork+exec+wait of /bin/true.
func BenchmarkStartExit(b *testing.B) {
	const warm, samples = 5, 100
	task := Task{Name: "bench", MaxFailures: 1, Processes: []Process{{Name: "true", Cmdline: "true", MaxFailures: 1}}}
	opt := Options{Sandbox: b.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")}}
	for b.Loop() {
		var started benchtab.Samples
		whole, floor := benchtab.Pair(b, warm, samples, func() (time.Duration, error) {
			t0 := time.Now()
			r, err := Start(context.Background(), task, opt)
			if err != nil {
				return 0, err
			}
			var s time.Duration
			for e := range r.Events() {
				if e.Kind == EventStarted {
					s = time.Since(t0)
				}
			}
			<-r.Done()
			d := time.Since(t0)
			if r.Result().State != StateSuccess {
				return 0, fmt.Errorf("result %+v", r.Result())
			}
			started = append(started, s)
			return d, nil
		}, benchtab.ForkExec)
		started = started[warm:]
		benchtab.Report(b, "sandbox: a task of one `true` process, start to end", "task", whole, "fork+exec+wait of /bin/true", floor)
		benchtab.Report(b, "sandbox: a task of one `true` process, start until the process started", "started", started, "fork+exec+wait of /bin/true", floor)
	}
}
