package observer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/checkpoint"
)

type fixture struct {
	root string
	srv  *Server
	http *httptest.Server
	run  string // the run dir of task "t-two"
}

// newFixture is a work dir with the two-network task "t-two", a finished
// task of another job, and a task whose checkpoint is corrupt.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: t.TempDir()}
	start := time.Now().Add(-time.Minute)
	f.run = writeRun(t, f.root, "agent-1", syntheticTask("t-two", "hello", 0, start))
	writeLog(t, f.run, "web", 1, "stdout", "line one\nserving on 198.18.0.2:31000\n")
	writeLog(t, f.run, "web", 1, "stderr", "warning: <b>not html</b>\n")
	done := syntheticTask("t-done", "batch", 2, start.Add(-time.Hour))
	done.AddState("TASK_FINISHED", "all processes finished", start)
	writeRun(t, f.root, "agent-1", done)
	bad := writeRun(t, f.root, "agent-1", checkpoint.Task{TaskID: "t-bad"})
	if err := os.WriteFile(checkpoint.Path(bad), []byte(`{"version":1,"task_id":"t-bad","states":[{"st`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Changed before the others: the list shows the newest first.
	if err := os.Chtimes(checkpoint.Path(bad), start.Add(-2*time.Hour), start.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Not a dewar task: no checkpoint.
	os.MkdirAll(filepath.Join(f.root, "slaves", "agent-1", "frameworks", "fw-1", "executors", "other", "runs", "c1"), 0o755)
	srv, err := NewServer(Options{Root: f.root, TTL: time.Nanosecond, Hostname: "agent1", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv)
	t.Cleanup(f.http.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(f.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) mustGet(t *testing.T, path string) string {
	t.Helper()
	code, body := f.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, code, body)
	}
	return body
}

func TestIndexFindsTasks(t *testing.T) {
	f := newFixture(t)
	got := map[string]bool{}
	for _, e := range f.srv.Index().Tasks() {
		if got[e.ID] {
			t.Errorf("task %s listed twice (latest symlink?)", e.ID)
		}
		got[e.ID] = true
	}
	for _, id := range []string{"t-two", "t-done", "thermos-t-bad"} {
		if !got[id] {
			t.Errorf("task %s not found; found %v", id, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("found %d tasks, want 3: %v", len(got), got)
	}
	// A task ending is noticed at the next scan.
	e := f.srv.Index().Get("t-two")
	tk := *e.Task
	tk.AddState("TASK_KILLED", "killed", time.Now())
	w, err := checkpoint.NewWriter(e.RunDir, tk, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if e := f.srv.Index().Get("t-two"); e.Active() {
		t.Errorf("t-two still active after its checkpoint says %s", e.Task.State())
	}
	// A finished task's run dir removed (the agent's sandbox GC): gone.
	done := f.srv.Index().Get("t-done")
	if err := os.RemoveAll(done.RunDir); err != nil {
		t.Fatal(err)
	}
	if e := f.srv.Index().Get("t-done"); e != nil {
		t.Errorf("t-done still indexed after its run dir was removed: %+v", e)
	}
}

func TestListPage(t *testing.T) {
	f := newFixture(t)
	body := f.mustGet(t, "/")
	for _, want := range []string{"t-two", "t-done", "www/prod/hello", "198.19.0.7", "2001:db8:2::7", "http=31000",
		"unreadable: corrupt checkpoint"} {
		if !strings.Contains(body, want) {
			t.Errorf("list page lacks %q", want)
		}
	}
	for path, want := range map[string][]string{
		"/main?job=batch":          {"t-done"},
		"/main?state=active":       {"t-two", "thermos-t-bad"},
		"/main/finished":           {"t-done"},
		"/main?state=TASK_RUNNING": {"t-two"},
		"/main?role=nobody":        {},
		"/main?num=1":              {"t-two"},
		"/main?num=1&offset=1":     {"thermos-t-bad"},
		"/main/all/2/1":            {"t-done"},
	} {
		body := f.mustGet(t, path)
		for _, id := range []string{"t-two", "t-done", "thermos-t-bad"} {
			listed := strings.Contains(body, `href="/task/`+id+`"`)
			if listed != contains(want, id) {
				t.Errorf("%s: task %s listed=%v, want %v", path, id, listed, !listed)
			}
		}
	}
	if body := f.mustGet(t, "/main?num=1"); !strings.Contains(body, "older »") {
		t.Error("first page of three has no link to the next")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestTaskPage(t *testing.T) {
	f := newFixture(t)
	body := f.mustGet(t, "/task/t-two")
	for _, want := range []string{
		"198.18.0.2/24", "2001:db8:1::2/64", "198.19.0.7/24", "2001:db8:2::7/64", "eth0", "eth1",
		// every port on every address, IPv6 bracketed in the link
		`href="http://198.18.0.2:31000/"`, `href="http://[2001:db8:1::2]:31001/"`, `href="http://[2001:db8:2::7]:31000/"`,
		`href="http://198.19.0.7:31001/"`,
		"/aurora/www/prod/hello@green", "198.19.0.7:31000", "HEALTHY", "zone=a",
		`href="/process/t-two/web"`, `href="/logs/t-two/web/1/stdout"`, "TASK_RUNNING",
		"KiB</span> on disk", // the logs and the checkpoint take a few blocks
	} {
		if !strings.Contains(body, want) {
			t.Errorf("task page lacks %q", want)
		}
	}
	// The corrupt one: shown as unreadable with the reason.
	body = f.mustGet(t, "/task/thermos-t-bad")
	if !strings.Contains(body, "unreadable") || !strings.Contains(body, "corrupt checkpoint") {
		t.Errorf("corrupt task page does not say why:\n%s", body)
	}
}

func TestProcessAndLogs(t *testing.T) {
	f := newFixture(t)
	body := f.mustGet(t, "/process/t-two/web")
	for _, want := range []string{"exit status 1", "1002", "RUNNING", "FAILED", `href="/logs/t-two/web/0/stderr"`} {
		if !strings.Contains(body, want) {
			t.Errorf("process page lacks %q", want)
		}
	}
	f.mustGet(t, "/process/t-two/web/0")
	body = f.mustGet(t, "/logs/t-two/web/1/stdout")
	if !strings.Contains(body, "serving on 198.18.0.2:31000") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("log page of a running process lacks its tail or its refresh:\n%s", body)
	}
	// Log content is text, never markup.
	if body := f.mustGet(t, "/logs/t-two/web/1/stderr"); !strings.Contains(body, "&lt;b&gt;not html&lt;/b&gt;") {
		t.Errorf("stderr not escaped:\n%s", body)
	}
	if body := f.mustGet(t, "/logs/t-two/setup/0/stdout"); !strings.Contains(body, "No stdout yet") {
		t.Errorf("missing log page:\n%s", body)
	}
}

// TestLogData: Thermos' pailer protocol, which a follower polls: the
// chunk from an offset, then what was appended after it.
func TestLogData(t *testing.T) {
	f := newFixture(t)
	var c struct {
		Offset int64  `json:"offset"`
		Length int    `json:"length"`
		Data   string `json:"data"`
	}
	get := func(path string) {
		t.Helper()
		c.Data = ""
		if err := json.Unmarshal([]byte(f.mustGet(t, path)), &c); err != nil {
			t.Fatal(err)
		}
	}
	get("/logdata/t-two/web/1/stdout?offset=0")
	if c.Offset != 0 || c.Data != "line one\nserving on 198.18.0.2:31000\n" {
		t.Fatalf("first chunk = %+v", c)
	}
	next := c.Offset + int64(c.Length)
	lf, err := os.OpenFile(filepath.Join(f.run, ".logs", "web", "1", "stdout"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	lf.WriteString("line three\n")
	lf.Close()
	get("/logdata/t-two/web/1/stdout?offset=" + strconv.FormatInt(next, 10))
	if c.Offset != next || c.Data != "line three\n" {
		t.Fatalf("next chunk = %+v", c)
	}
	// Without an offset: from the end (nothing), where a follower starts.
	get("/logdata/t-two/web/1/stdout")
	if c.Length != 0 || c.Offset != next+11 {
		t.Fatalf("chunk at the end = %+v", c)
	}
	get("/filedata/t-two/.logs/web/1/stdout?offset=5&length=3")
	if c.Data != "one" {
		t.Fatalf("filedata chunk = %+v", c)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	// A symlink that leaves the sandbox, and one that stays inside.
	os.Symlink("/etc", filepath.Join(f.run, "out"))
	os.Symlink(".logs", filepath.Join(f.run, "in"))
	for path, want := range map[string]int{
		"/task/nope":                         404,
		"/j/task/nope":                       404,
		"/process/nope/web":                  404,
		"/process/t-two/nope":                404,
		"/process/t-two/web/7":               404,
		"/logs/t-two/web/1/environ":          404,
		"/browse/t-two/../../../etc":         403,
		"/browse/t-two/.logs/../../x":        403,
		"/file/t-two/..%2f..%2fetc%2fpasswd": 403,
		"/file/t-two//etc/passwd":            403,
		"/file/t-two/%2fetc%2fpasswd":        403,
		"/file/t-two/out/passwd":             403,
		"/browse/t-two/out":                  403,
		"/file/t-two/nothing":                404,
		"/file/t-two/in/web/1/stdout":        200,
		"/browse/t-two/":                     200,
		"/browse/t-two/.logs/web":            200,
	} {
		if code, body := f.get(t, path); code != want {
			t.Errorf("GET %s = %d, want %d (%s)", path, code, want, strings.TrimSpace(body))
		}
	}
	// A raw file is served as inert text.
	resp, err := http.Get(f.http.URL + "/download/t-two/.logs/web/1/stderr")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("raw file served as %q", ct)
	}
	// The run directory vanishes: its task goes away, the rest stays.
	if err := os.RemoveAll(f.run); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.get(t, "/logs/t-two/web/1/stdout"); code != 404 {
		t.Errorf("log of a vanished task = %d, want 404", code)
	}
	f.mustGet(t, "/task/t-done")
	f.mustGet(t, "/")
}

func TestJSON(t *testing.T) {
	f := newFixture(t)
	var ids struct {
		Tasks []struct {
			TaskID    string   `json:"task_id"`
			State     string   `json:"state"`
			Addresses []string `json:"addresses"`
		} `json:"tasks"`
		TaskCount int `json:"task_count"`
	}
	if err := json.Unmarshal([]byte(f.mustGet(t, "/j/task_ids/active/0/10")), &ids); err != nil {
		t.Fatal(err)
	}
	if ids.TaskCount != 2 || len(ids.Tasks) != 2 || ids.Tasks[0].TaskID != "t-two" || len(ids.Tasks[0].Addresses) != 4 {
		t.Errorf("/j/task_ids/active = %+v", ids)
	}
	var tasks map[string]struct {
		State     string              `json:"state"`
		Processes map[string][]string `json:"processes"`
		Networks  []NetView           `json:"networks"`
	}
	if err := json.Unmarshal([]byte(f.mustGet(t, "/j/task?task_id=t-two,nope,t-done")), &tasks); err != nil {
		t.Fatal(err)
	}
	two, ok := tasks["t-two"]
	if len(tasks) != 2 || !ok || len(two.Networks) != 2 || two.Networks[1].Addresses[1].Host != "[2001:db8:2::7]" {
		t.Errorf("/j/task = %+v", tasks)
	}
	if got := two.Processes["running"]; len(got) != 2 || len(two.Processes["waiting"]) != 1 || len(two.Processes["killed"]) != 1 {
		t.Errorf("process buckets = %v", two.Processes)
	}
	var run map[string]any
	if err := json.Unmarshal([]byte(f.mustGet(t, "/j/process/t-two/web/0")), &run); err != nil {
		t.Fatal(err)
	}
	if run["return_code"] != 1.0 || run["state"] != "FAILED" {
		t.Errorf("/j/process/t-two/web/0 = %v", run)
	}
	var count map[string]int
	json.Unmarshal([]byte(f.mustGet(t, "/j/task_id_count")), &count)
	if count["all"] != 3 || count["finished"] != 1 {
		t.Errorf("/j/task_id_count = %v", count)
	}
}

// TestIndexConcurrent: requests during a rescan get the last snapshot (or
// wait for the first scan), never a partial one; run with -race.
func TestIndexConcurrent(t *testing.T) {
	root := t.TempDir()
	manyTasks(t, root, 50)
	x := NewIndex(root, 0, nil)
	partial := make(chan int, 8)
	for range 8 {
		go func() {
			bad := 0
			for range 40 {
				if len(x.Tasks()) != 50 {
					bad++
				}
			}
			partial <- bad
		}()
	}
	for range 8 {
		if bad := <-partial; bad != 0 {
			t.Fatalf("%d reads saw a partial index", bad)
		}
	}
}
