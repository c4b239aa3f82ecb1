package executore2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestREADMEHello runs the README's command,
//
//	dewar-agent run --executor bin/dewar-executor testdata/tasks/hello.json
//
// with the real binaries: the agent launches dewar-executor, which
// subscribes over HTTP, runs `echo hello; sleep 1`, and reports
// TASK_STARTING, TASK_RUNNING and TASK_FINISHED in that order; the command
// exits 0 and `hello` is in the task's stdout in the sandbox.
func TestREADMEHello(t *testing.T) {
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.agent, "run", "--work-dir", work, "--executor", bin.executor,
		filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dewar-agent run: %v (exit code %d)\nstdout:\n%s\nstderr:\n%s", err, cmd.ProcessState.ExitCode(), out, stderr.String())
	}
	var states []string
	for _, m := range regexp.MustCompile(`(?m)^(TASK_[A-Z_]+) task=hello source=(\S+)`).FindAllStringSubmatch(string(out), -1) {
		if m[2] != "SOURCE_EXECUTOR" {
			t.Errorf("%s came from %s, want SOURCE_EXECUTOR", m[1], m[2])
		}
		states = append(states, m[1])
	}
	if got, want := strings.Join(states, " "), "TASK_STARTING TASK_RUNNING TASK_FINISHED"; got != want {
		t.Fatalf("updates printed: %s, want %s\nstdout:\n%s", got, want, out)
	}
	// The command executor's id is the task id; the run id is random.
	logs, err := filepath.Glob(filepath.Join(work, "slaves", "*", "frameworks", "*", "executors", "hello", "runs", "latest", "sandbox", ".logs", "command", "0", "stdout"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("want one task stdout file in the sandbox, found %v (%v)", logs, err)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != "hello" {
		t.Errorf("task stdout %s = %q, want \"hello\"", logs[0], b)
	}
}
