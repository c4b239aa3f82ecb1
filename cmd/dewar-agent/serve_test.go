package main_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestServeAndLaunch: `dewar-agent` serves on a free port and prints it;
// `dewar-agent launch` sends a task to it and prints its updates until the
// terminal one (exit status 1 unless TASK_FINISHED); /state shows the task;
// SIGTERM stops the agent cleanly.
func TestServeAndLaunch(t *testing.T) {
	bin := testenv.Binary(t, "dewar-agent")
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe.sh")
	writeFile(t, probe, "#!/bin/sh\nexit 0\n", 0o755)
	a := e2etest.StartLocalAgent(t, bin, "--listen", "127.0.0.1:0", "--work-dir", filepath.Join(dir, "work"), "--executor", probe)

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "launch", "--agent", a.URL, filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json")).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("launch: %v (want exit status 1)\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^TASK_FAILED task=hello source=SOURCE_AGENT reason=REASON_EXECUTOR_TERMINATED`).Match(out) {
		t.Fatalf("launch output lacks the terminal update:\n%s", out)
	}

	st := a.State(t)
	if len(st.Frameworks) != 1 || len(st.Frameworks[0].Executors) != 1 || st.Frameworks[0].Executors[0].Tasks[0].State != "TASK_FAILED" {
		t.Fatalf("/state %+v", st)
	}
	if !strings.Contains(string(st.Frameworks[0].Executors[0].Tasks[0].Status), "REASON_EXECUTOR_TERMINATED") {
		t.Errorf("/state task status %s", st.Frameworks[0].Executors[0].Tasks[0].Status)
	}
	a.Stop(t)
}
