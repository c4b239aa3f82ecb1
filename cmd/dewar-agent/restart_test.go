package main_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestAgentRestartWithRealExecutor: the agent is stopped while the real
// dewar-executor runs a task; the task finishes while the agent is away;
// the restarted agent (same work dir, same port) gets TASK_FINISHED from
// the re-subscribing executor, which then exits. No update is lost or
// doubled. With a recovery phase after the restart (every call 503 for a
// while, then UPDATE 503 until the re-registration window ends, as the
// real agent), the executor retries until it gets through.
func TestAgentRestartWithRealExecutor(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restart []string
	}{
		{"immediate recovery", nil},
		{"recovery phase", []string{"--recovery-delay", "1500ms"}},
	} {
		t.Run(tt.name, func(t *testing.T) { testAgentRestart(t, tt.restart) })
	}
}

func testAgentRestart(t *testing.T, restartFlags []string) {
	bin := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	args := []string{"--listen", "127.0.0.1:0", "--work-dir", work, "--executor", executor, "--subscription-backoff-max", "500ms"}
	a := e2etest.StartLocalAgent(t, bin, args...)

	marker := filepath.Join(dir, "agent-was-down")
	task := mesos.TaskInfo{Name: "survivor", TaskID: mesos.TaskID{Value: "survivor"},
		Command: &mesos.CommandInfo{Value: ptr("while [ ! -e " + marker + " ]; do sleep 0.1; done; echo done")}}
	running := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	go func() {
		_, _ = fakeagent.LaunchRemote(ctx, a.URL, task, func(st mesos.TaskStatus) {
			if st.GetState() == mesos.TASK_RUNNING {
				once.Do(func() { close(running) })
			}
		})
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatalf("task never RUNNING; agent output:\n%s", a.Output())
	}
	ex := a.State(t).Frameworks[0].Executors[0]
	t.Cleanup(func() { _ = syscall.Kill(ex.PID, syscall.SIGKILL) })
	a.Stop(t)

	// The task finishes while the agent is down; its executor keeps the
	// TASK_FINISHED update until an agent acknowledges it.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(ex.Sandbox, "sandbox", ".logs", "command", "0", "stdout"), "done")
	if err := syscall.Kill(ex.PID, 0); err != nil {
		t.Fatalf("the executor did not wait for the agent: %v", err)
	}

	b := e2etest.StartLocalAgent(t, bin, append(args, restartFlags...)...)
	if b.URL != a.URL {
		t.Fatalf("restarted agent on %s, the executor knows %s", b.URL, a.URL)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		e := b.State(t).Frameworks[0].Executors[0]
		if e.State == "terminated" {
			if e.Tasks[0].State != "TASK_FINISHED" {
				t.Fatalf("task ended %s, want TASK_FINISHED: %s", e.Tasks[0].State, e.Tasks[0].Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("executor not done after the restart: %+v\nagent output:\n%s", e, b.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(regexp.MustCompile(`(?m)^TASK_FINISHED task=survivor source=SOURCE_EXECUTOR`).FindAllString(b.Output(), -1)); n != 1 {
		t.Errorf("the restarted agent printed TASK_FINISHED %d times, want once:\n%s", n, b.Output())
	}
	if len(restartFlags) > 0 {
		log, _ := os.ReadFile(filepath.Join(ex.Sandbox, "stderr"))
		if !strings.Contains(string(log), "Agent has not finished recovery") {
			t.Errorf("the executor never met the recovery phase:\n%s", log)
		}
	}
}

func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q (has %q)", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
