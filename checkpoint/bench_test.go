package checkpoint_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// BenchmarkWrite is the executor's cost of one change: Update plus the
// atomic replacement of a realistic record (5 processes with 20 runs
// each, 2 networks, 2 serversets). Nothing is written while nothing
// changes, so the steady-state cost is this times the rate of changes
// (a process crash-looping with Thermos' 5 s min_duration: 2 writes in 5 s).
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
	n := 0
	for b.Loop() {
		n++
		w.Update(func(t *checkpoint.Task) { t.RunStarted("process-0", 20, n, time.Now()) })
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(checkpoint.Path(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "record-bytes")
}
