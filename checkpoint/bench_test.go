package checkpoint_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/internal/benchtab"
)

// BenchmarkWrite is the executor's cost of one change: Update plus the
// atomic replacement of a realistic record (5 processes with 20 runs
// each, 2 networks, 2 serversets). Nothing is written while nothing
// changes, so the steady-state cost is this times the rate of changes
// (a process crash-looping with Thermos' 5 s min_duration: 2 writes in 5 s).
// Many samples after a warm-up, beside the floor from the same run: the
// same bytes written to a temporary file and renamed over another, with no
// encoding.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	t := checkpoint.Task{TaskID: "www-prod-hello-0-0123456789abcdef", Role: "www", Environment: "prod", Job: "hello",
		Ports: map[string]int{"http": 31000, "health": 31001},
		Networks: []checkpoint.Network{
			{Name: "blue", Interface: "eth0", Addresses: []string{"198.18.0.2/24", "2001:db8:1::2/64"}},
			{Name: "green", Interface: "eth1", Addresses: []string{"198.19.0.7/24", "2001:db8:2::7/64"}},
		},
		Serversets: []checkpoint.Serverset{{Path: "/aurora/www/prod/hello", Joined: true}, {Path: "/aurora/www/prod/hello@green", Joined: true}},
	}
	now := time.Now()
	t.AddState("TASK_STARTING", "", now)
	t.AddState("TASK_RUNNING", "", now)
	for p := range 5 {
		for r := range 20 {
			name := fmt.Sprintf("process-%d", p)
			t.RunStarted(name, r, 1000+r, now)
			t.RunEnded(name, r, checkpoint.RunFailed, 1, "exit status 1", now)
		}
	}
	w, err := checkpoint.NewWriter(dir, t, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	raw, err := os.ReadFile(checkpoint.Path(dir))
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		write, floor := benchtab.Pair(b, 20, 500, func() (time.Duration, error) {
			n++
			start := time.Now()
			w.Update(func(t *checkpoint.Task) { t.RunStarted("process-0", 20, n, time.Now()) })
			err := w.Flush()
			return time.Since(start), err
		}, func() (time.Duration, error) {
			start := time.Now()
			f, err := os.CreateTemp(dir, ".floor-*")
			if err != nil {
				return 0, err
			}
			_, werr := f.Write(raw)
			cerr := f.Close()
			rerr := os.Rename(f.Name(), filepath.Join(dir, "floor.json"))
			return time.Since(start), errors.Join(werr, cerr, rerr)
		})
		benchtab.Report(b, fmt.Sprintf("checkpoint: one change of a %d-byte record (5 processes × 20 runs)", len(raw)), "write", write,
			"create, write, rename of the same bytes", floor)
	}
	fi, err := os.Stat(checkpoint.Path(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "record-bytes")
}
