package observer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// FuzzServeCheckpoint puts arbitrary bytes where a task's checkpoint lies
// and asks the observer for the pages that read it: the list, the task
// page, the JSON of the task and of its first process, and the process
// page. The observer must never panic, always serve the list, and answer
// a page of a checkpoint that parses without a server error. (The
// checkpoint format alone is fuzzed by checkpoint.FuzzParse.)
func FuzzServeCheckpoint(f *testing.F) {
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	b, err := json.Marshal(syntheticTask("t-two", "hello", 0, start))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"task_id":"t","processes":[{"name":"p","runs":[{"run":7,"state":"RUNNING"}]}],"networks":[{"name":"n","addresses":["not an address","::1/200"]}]}`))
	f.Add([]byte(`{"version":1,"task_id":"t","states":[{"state":"TASK_RUNNING"}],"serversets":[{"path":"/a"}],"ports":{"":-1}}`))
	f.Add([]byte(`{"version":1,"task_id":"t","states":[{"st`))
	// One server for every input (parsing its templates is most of a
	// fresh server's cost); each input is a new run directory, the last
	// one removed, and the index rescans on every request.
	root := f.TempDir()
	srv, err := NewServer(Options{Root: root, TTL: time.Nanosecond, Hostname: "agent1"})
	if err != nil {
		f.Fatal(err)
	}
	var n int
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		exec := filepath.Join(root, "slaves", "a1", "frameworks", "fw", "executors", fmt.Sprint("ex", n))
		run := filepath.Join(exec, "runs", "c1")
		if err := os.MkdirAll(filepath.Join(run, checkpoint.Dir), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(exec) })
		if err := os.WriteFile(checkpoint.Path(run), data, 0o644); err != nil {
			t.Fatal(err)
		}
		// A fresh, empty /proc scan: what a run's usage shows is not this
		// target's business, and one real scan per input (of every process
		// on a busy machine, under the fuzzer's instrumentation) takes
		// seconds.
		srv.usage.mu.Lock()
		srv.usage.s, srv.usage.at = sessions{}, time.Now()
		srv.usage.mu.Unlock()
		get := func(path string) int {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			return rec.Code
		}
		if code := get("/main"); code != http.StatusOK {
			t.Fatalf("GET /main = %d", code)
		}
		task, err := checkpoint.Parse(data)
		if err != nil {
			return
		}
		id := url.PathEscape(task.TaskID)
		paths := []string{"/task/" + id, "/j/task/" + id, "/j/task", "/j/task_ids"}
		if len(task.Processes) > 0 {
			p := url.PathEscape(task.Processes[0].Name)
			paths = append(paths, "/process/"+id+"/"+p, "/j/process/"+id+"/"+p, "/process/"+id+"/"+p+"/0")
		}
		for _, p := range paths {
			if code := get(p); code >= 500 {
				t.Fatalf("GET %s = %d for a checkpoint that parses", p, code)
			}
		}
	})
}
