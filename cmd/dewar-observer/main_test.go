package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestReadmeObserver is the README's observer example: a task run by the
// real executor through `dewar-agent run`, then `dewar-observer` on that
// work dir, which prints its URL and shows the finished task with its
// process run, its log and the host network's addresses the executor
// recorded.
func TestReadmeObserver(t *testing.T) {
	agent := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	observer := testenv.Binary(t, "dewar-observer")
	work := filepath.Join(t.TempDir(), "w")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if out, err := exec.CommandContext(ctx, agent, "run", "--work-dir", work, "--executor", executor,
		filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json")).CombinedOutput(); err != nil {
		t.Fatalf("dewar-agent run: %v\n%s", err, out)
	}

	cmd := exec.CommandContext(ctx, observer, "--mesos-root", work, "--ip", "127.0.0.1", "--port", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "observer: ") {
				lines <- sc.Text()
			}
		}
	}()
	var base string
	select {
	case l := <-lines:
		base = strings.TrimSuffix(strings.TrimPrefix(l, "observer: "), "/")
	case <-ctx.Done():
		t.Fatal("no \"observer: http://...\" line")
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var tasks map[string]struct {
		MesosState string              `json:"mesos_state"`
		Processes  map[string][]string `json:"processes"`
		Addresses  []string            `json:"addresses"`
	}
	if err := json.Unmarshal([]byte(get("/j/task/hello")), &tasks); err != nil {
		t.Fatal(err)
	}
	h := tasks["hello"]
	if h.MesosState != "TASK_FINISHED" || len(h.Processes["success"]) != 1 || len(h.Addresses) == 0 {
		t.Errorf("/j/task/hello = %+v", h)
	}
	page := get("/task/hello")
	for _, a := range h.Addresses {
		if !strings.Contains(page, a) {
			t.Errorf("address %s not on the task page", a)
		}
	}
	if log := get("/logs/hello/command/0/stdout"); !strings.Contains(log, "hello\n") {
		t.Errorf("log page:\n%s", log)
	}
}

// TestStatusAndTail: the command-line verbs on the same kind of work dir.
func TestStatusAndTail(t *testing.T) {
	agent := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	observer := testenv.Binary(t, "dewar-observer")
	work := filepath.Join(t.TempDir(), "w")
	if out, err := exec.Command(agent, "run", "--work-dir", work, "--executor", executor,
		filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json")).CombinedOutput(); err != nil {
		t.Fatalf("dewar-agent run: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--mesos-root", work}, 0, "TASK_FINISHED"},
		{[]string{"tail", "--mesos-root", work, "hello", "command"}, 0, "hello\n"},
		{[]string{"tail", "hello", "command", "--mesos-root", work, "--stderr"}, 0, ""},
		{[]string{"tail", "--mesos-root", work, "hello", "nope"}, 1, "its processes: command"},
		{[]string{"tail", "--mesos-root", work, "nope", "command"}, 1, "unknown task \"nope\""},
		{[]string{"tail", "--mesos-root", work, "hello"}, 2, "usage:"},
		{[]string{"status", "--mesos-root", "/nonexistent/dewar"}, 1, "give the agent's --work_dir"},
	} {
		out, err := exec.Command(observer, tc.args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("dewar-observer %s: exit %d, want %d with %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out)
		}
	}
}

func TestBadRoot(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"--mesos-root", "/nonexistent/dewar", "--port", "0"}, io.Discard, &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "give the agent's --work_dir") {
		t.Errorf("error does not say what to do: %s", out.String())
	}
}
