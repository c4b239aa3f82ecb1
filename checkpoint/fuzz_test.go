package checkpoint_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// FuzzParse: whatever lies in a task.json (a truncated write by an old
// version, a disk error, a hand edit), Parse returns a record or an error,
// never panics; every accessor the observer uses works on what it returns;
// and a parsed record written again reads back the same.
//
// testdata/fuzz/FuzzParse holds checkpoints written by the real executor
// (a running Aurora task with usage samples, a task killed before it
// started) besides what the fuzzer found.
func FuzzParse(f *testing.F) {
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	full := checkpoint.Task{Version: checkpoint.Version, TaskID: "www-prod-hello-0-1", Role: "www", Instance: 3,
		Networks: []checkpoint.Network{{Name: "blue", Interface: "eth0", Addresses: []string{"198.18.0.2/24", "2001:db8::2/64"}}},
		Ports:    map[string]int{"http": 31000},
		Health:   &checkpoint.Health{State: checkpoint.HealthHealthy, Time: start},
		Disk:     &checkpoint.Disk{Bytes: 4096, Entries: 3, Time: start},
	}
	full.AddState("TASK_STARTING", "", start)
	full.AddRunnerState("ACTIVE", "", start)
	full.AddProcess("web")
	full.RunStarted("web", 0, 42, start)
	full.SetUsage("web", 0, checkpoint.Usage{CPUSeconds: 1.25, RSSBytes: 5 << 20, Processes: 2, Time: start})
	full.RunEnded("web", 0, checkpoint.RunFailed, 1, "exit status 1", start.Add(time.Second))
	b, err := json.Marshal(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"task_id":"t","processes":[{"name":"p","runs":[{"run":0}]},{"name":"p","runs":[]}],"states":[]}`))
	f.Add([]byte(`{"version":2,"task_id":"t"}`))
	f.Add([]byte(`{"version":1,"task_id":"t","states":[{"st`))
	f.Fuzz(func(t *testing.T, data []byte) {
		task, err := checkpoint.Parse(data)
		if err != nil {
			if task != nil {
				t.Fatalf("Parse returned a record and an error: %v", err)
			}
			return
		}
		if task.Version <= 0 || task.Version > checkpoint.Version || task.TaskID == "" {
			t.Fatalf("Parse accepted version %d, task id %q", task.Version, task.TaskID)
		}
		_ = task.State()
		_ = task.Terminal()
		_ = task.Launched()
		for i := range task.Processes {
			p := &task.Processes[i]
			_ = p.Last()
			if task.Process(p.Name) == nil {
				t.Fatalf("Process(%q) = nil for a listed process", p.Name)
			}
		}
		b1, err := json.Marshal(task)
		if err != nil {
			// A time that parses but does not format (a year past 9999
			// cannot parse; nothing else should get here).
			t.Fatalf("marshal a parsed checkpoint: %v", err)
		}
		again, err := checkpoint.Parse(b1)
		if err != nil {
			t.Fatalf("re-parse what was written: %v\n%s", err, b1)
		}
		b2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip is not stable:\n%s\n%s", b1, b2)
		}
	})
}
