package main_test

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

// TestRunHello is the README's first command: `dewar-agent run` launches
// the real dewar-executor with testdata/tasks/hello.json, prints
// TASK_STARTING, TASK_RUNNING and TASK_FINISHED in that order, exits 0, and
// `hello` is in the task process's stdout in the sandbox.
func TestRunHello(t *testing.T) {
	agent := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	work := filepath.Join(t.TempDir(), "work")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent, "run", "--work-dir", work, "--executor", executor,
		filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dewar-agent run: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var states []string
	for _, m := range regexp.MustCompile(`(?m)^(TASK_[A-Z_]+) task=hello `).FindAllStringSubmatch(string(out), -1) {
		states = append(states, m[1])
	}
	want := []string{"TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"}
	if strings.Join(states, " ") != strings.Join(want, " ") {
		t.Fatalf("updates %v, want %v\n%s", states, want, out)
	}
	logs, _ := filepath.Glob(filepath.Join(work, "frameworks", "dewar-cli", "executors", "hello", "runs", "*", "sandbox", ".logs", "*", "0", "stdout"))
	if len(logs) != 1 {
		t.Fatalf("task stdout files: %v", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != "hello" {
		t.Fatalf("task stdout %q, want hello", b)
	}
}
