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
// TASK_STARTING, TASK_RUNNING and TASK_FINISHED in that order (each from
// the executor: SOURCE_EXECUTOR), exits 0, and
// `hello` is in the task process's stdout in the sandbox. By default the
// executor talks to the agent over the domain socket, where only
// /slave(1)/api/v1/executor is admitted, with a token; it must work as well
// over TCP without one. Every update passes the agent's stout UUID check.
func TestRunHello(t *testing.T) {
	agent := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	for _, tt := range []struct {
		name   string
		flags  []string
		socket bool
		token  bool
	}{
		{"domain socket with token (default)", nil, true, true},
		{"tcp without token", []string{"--http-executor-domain-sockets=false", "--authenticate-http-executors=false"}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "work")
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			args := append([]string{"run", "--work-dir", work, "--executor", executor}, tt.flags...)
			args = append(args, filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json"))
			cmd := exec.CommandContext(ctx, agent, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("dewar-agent run: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
			}
			var states []string
			for _, m := range regexp.MustCompile(`(?m)^(TASK_[A-Z_]+) task=hello source=(\S+)`).FindAllStringSubmatch(string(out), -1) {
				if m[2] != "SOURCE_EXECUTOR" {
					t.Errorf("%s came from %s, want SOURCE_EXECUTOR", m[1], m[2])
				}
				states = append(states, m[1])
			}
			want := []string{"TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"}
			if strings.Join(states, " ") != strings.Join(want, " ") {
				t.Fatalf("updates %v, want %v\n%s", states, want, out)
			}
			run := filepath.Join(work, "slaves", "*", "frameworks", "dewar-cli", "executors", "hello", "runs", "latest")
			logs, _ := filepath.Glob(filepath.Join(run, "sandbox", ".logs", "*", "0", "stdout"))
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
			runDir := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(logs[0])))))
			execLog, err := os.ReadFile(filepath.Join(runDir, "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			// The log is JSON: the config's quotes are escaped.
			wantSocket := `socket=\"\"`
			if tt.socket {
				wantSocket = `socket=\"` + filepath.Join(work, "agent.sock") + `\"`
			}
			wantToken := "token=<none>"
			if tt.token {
				wantToken = "token=<redacted>"
			}
			for _, w := range []string{wantSocket, wantToken} {
				if !strings.Contains(string(execLog), w) {
					t.Errorf("executor log lacks %s:\n%s", w, execLog)
				}
			}
			// What the executor logs when the agent refuses a call (a bare
			// "403" would also match a timestamp).
			if strings.Contains(string(execLog), "Not a valid UUID") || strings.Contains(string(execLog), "Forbidden") ||
				strings.Contains(string(execLog), "refused") || strings.Contains(string(execLog), "will retry") {
				t.Errorf("the agent refused a call of the executor:\n%s", execLog)
			}
		})
	}
}
