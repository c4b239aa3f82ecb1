package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/fakeagent"
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
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	agent := exec.CommandContext(ctx, bin, "--listen", "127.0.0.1:0", "--work-dir", filepath.Join(dir, "work"), "--executor", probe)
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		<-exited
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("dewar-agent printed nothing")
	}
	m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("first line %q does not name the address", lines.Text())
	}
	url := "http://" + m[1]
	go func() { // keep draining the agent's update lines
		for lines.Scan() {
		}
	}()

	out, err := exec.CommandContext(ctx, bin, "launch", "--agent", url, filepath.Join(testenv.RepoRoot(t), "testdata", "tasks", "hello.json")).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("launch: %v (want exit status 1)\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^TASK_FAILED task=hello source=SOURCE_AGENT reason=REASON_EXECUTOR_TERMINATED`).Match(out) {
		t.Fatalf("launch output lacks the terminal update:\n%s", out)
	}

	res, err := http.Get(url + "/state")
	if err != nil {
		t.Fatal(err)
	}
	var st fakeagent.State
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Frameworks) != 1 || len(st.Frameworks[0].Executors) != 1 || st.Frameworks[0].Executors[0].Tasks[0].State != "TASK_FAILED" {
		t.Fatalf("/state %+v", st)
	}
	if !strings.Contains(string(st.Frameworks[0].Executors[0].Tasks[0].Status), "REASON_EXECUTOR_TERMINATED") {
		t.Errorf("/state task status %s", st.Frameworks[0].Executors[0].Tasks[0].Status)
	}

	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("dewar-agent after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("dewar-agent did not stop on SIGTERM")
	}
}
