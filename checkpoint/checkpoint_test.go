package checkpoint_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/checkpoint"
)

func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-1", Role: "www", Environment: "prod", Job: "hello", Instance: 3}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	// The first record is on disk when NewWriter returns.
	got, err := checkpoint.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != checkpoint.Version || got.TaskID != "t-1" || got.Instance != 3 {
		t.Fatalf("first record = %+v", got)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w.Update(func(t *checkpoint.Task) {
		t.AddState("TASK_STARTING", "", at)
		t.AddState("TASK_RUNNING", "", at.Add(time.Second))
		t.AddState("TASK_RUNNING", "", at.Add(2*time.Second)) // a repeat: not recorded
		t.AddProcess("never")
		t.RunStarted("web", 0, 42, at)
		t.RunEnded("web", 0, checkpoint.RunFailed, 1, "exit status 1", at.Add(time.Second))
		t.RunStarted("web", 1, 43, at.Add(2*time.Second))
		t.Networks = []checkpoint.Network{{Name: "a", Interface: "eth0", Addresses: []string{"198.18.0.2/24", "2001:db8::2/64"}}}
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = checkpoint.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.State() != "TASK_RUNNING" || len(got.States) != 2 {
		t.Errorf("states = %+v", got.States)
	}
	web := got.Process("web")
	if web == nil || len(web.Runs) != 2 || web.Runs[0].PID != 42 || *web.Runs[0].ExitCode != 1 || web.Last().State != checkpoint.RunRunning {
		t.Errorf("web = %+v", web)
	}
	if p := got.Process("never"); p == nil || len(p.Runs) != 0 {
		t.Errorf("never = %+v", p)
	}
	if len(got.Networks) != 1 || got.Networks[0].Addresses[1] != "2001:db8::2/64" {
		t.Errorf("networks = %+v", got.Networks)
	}
	// Nothing but the checkpoint is left in the directory (no temp files).
	ents, _ := os.ReadDir(filepath.Join(dir, checkpoint.Dir))
	if len(ents) != 1 {
		t.Errorf("checkpoint dir holds %d entries, want 1", len(ents))
	}
}

// A burst of changes is written without a flush: the writer goroutine
// picks up the latest document.
func TestWriterWritesOnChange(t *testing.T) {
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-2"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for i := range 50 {
		w.Update(func(t *checkpoint.Task) { t.RunStarted("p", i, 100+i, time.Now()) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := checkpoint.Read(dir)
		if err == nil && len(got.Processes) == 1 && len(got.Processes[0].Runs) == 50 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint never showed 50 runs: %+v, %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"truncated", `{"version":1,"task_id":"x","states":[`, "corrupt checkpoint"},
		{"not json", "\x00\x01", "corrupt checkpoint"},
		{"no version", `{"task_id":"x"}`, "no version"},
		{"no task id", `{"version":1}`, "no task_id"},
		{"newer", `{"version":99,"task_id":"x"}`, "upgrade dewar-observer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, checkpoint.Dir), 0o755)
			if err := os.WriteFile(checkpoint.Path(dir), []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := checkpoint.Read(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := checkpoint.Read(t.TempDir())
		if !errors.Is(err, checkpoint.ErrNotFound) {
			t.Fatalf("Read = %v, want ErrNotFound", err)
		}
	})
	t.Run("unknown fields", func(t *testing.T) {
		got, err := checkpoint.Parse([]byte(`{"version":1,"task_id":"x","future":{"a":1}}`))
		if err != nil || got.TaskID != "x" {
			t.Fatalf("Parse = %+v, %v; unknown fields must be ignored", got, err)
		}
	})
}

func TestNilWriter(t *testing.T) {
	var w *checkpoint.Writer
	w.Update(func(*checkpoint.Task) { t.Error("nil writer called fn") })
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A writer started from a document read back (Updated already set, as when
// a task's record is rewritten) still writes it at once.
func TestNewWriterWritesAReadDocument(t *testing.T) {
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := checkpoint.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	got.AddState("TASK_KILLED", "", time.Now())
	w, err = checkpoint.NewWriter(dir, *got, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got, err = checkpoint.Read(dir); err != nil || got.State() != "TASK_KILLED" {
		t.Fatalf("rewritten record = %+v, %v", got, err)
	}
}
