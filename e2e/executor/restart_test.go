package executore2e

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// auroraTask is e2etest.GatedJob as an Aurora task (an AssignedTask in
// TaskInfo.data, run by dewar-executor as a custom executor).
func auroraTask(t testing.TB, executorBin, taskID, healthy, done string) mesos.TaskInfo {
	t.Helper()
	jobJSON := e2etest.GatedJob("restart", healthy, done)
	job, err := aurora.ParseJob([]byte(jobJSON))
	if err != nil {
		t.Fatalf("test job: %v", err)
	}
	data, err := aurora.BuildAssignedTask(job, []byte(jobJSON), taskID, 0, nil)
	if err != nil {
		t.Fatalf("test job: %v", err)
	}
	noShell := false
	return mesos.TaskInfo{
		Name: "restart", TaskID: mesos.TaskID{Value: taskID}, Data: data,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "thermos-" + taskID},
			Command:    &mesos.CommandInfo{Value: &executorBin, Shell: &noShell, Arguments: []string{executorBin}},
		},
	}
}

// TestAgentRestartNoUpdateLost: the agent checkpoints TASK_STARTING and is
// stopped (SIGTERM: its executors keep running). While it is down the task
// becomes healthy (TASK_RUNNING) and finishes (TASK_FINISHED); the executor
// keeps both unacknowledged. The agent starts again on the same work dir
// and port; the executor re-subscribes, re-sends what is unacknowledged,
// gets both acknowledged and exits. The agent's checkpoint then holds
// STARTING, RUNNING, FINISHED exactly once each, in that order: no update
// lost, none duplicated.
func TestAgentRestartNoUpdateLost(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	healthy, done := filepath.Join(dir, "healthy"), filepath.Join(dir, "done")
	args := []string{"--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--subscription-backoff-max", "200ms"}
	a := e2etest.StartLocalAgent(t, bin.agent, args...)

	taskID := newID("restart")
	task := auroraTask(t, bin.executor, taskID, healthy, done)
	exID := task.Executor.ExecutorID.Value
	l := launch(t, a.URL, task)
	l.await(t, mesos.TASK_STARTING)
	ex := a.Executor(t, fakeagent.CLIFrameworkID, exID)
	killExecutorAtCleanup(t, ex.PID)
	if !a.State(t).Frameworks[0].Checkpoint {
		t.Fatal("the CLI framework does not checkpoint: its executors would not survive an agent restart")
	}
	a.Stop(t)
	if !e2etest.Alive(ex.PID) {
		t.Fatal("the executor exited with the agent")
	}

	// Both updates happen while no agent listens. The executor's own log
	// (JSON on its stderr, kept in the sandbox) is the only witness of an
	// update no agent has received.
	execLog := filepath.Join(ex.Sandbox, "stderr")
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 20*time.Second, "the executor to report TASK_RUNNING", func() bool { return logHas(execLog, `"state":"TASK_RUNNING"`) })
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 20*time.Second, "the executor to report TASK_FINISHED", func() bool { return logHas(execLog, `"state":"TASK_FINISHED"`) })
	if !e2etest.Alive(ex.PID) {
		t.Fatal("the executor exited with updates unacknowledged")
	}

	b := e2etest.StartLocalAgent(t, bin.agent, args...)
	if b.URL != a.URL {
		t.Fatalf("the restarted agent listens on %s; the executor knows only %s", b.URL, a.URL)
	}
	// The executor exits once both updates are acknowledged.
	testenv.WaitUntil(t, 30*time.Second, "the executor to exit after the restart", func() bool { return !e2etest.Alive(ex.PID) })
	testenv.WaitUntil(t, 10*time.Second, "the agent to see the executor end", func() bool {
		return b.Executor(t, fakeagent.CLIFrameworkID, exID).State == "terminated"
	})

	ups := readUpdates(t, work, fakeagent.CLIFrameworkID, exID, taskID)
	var got []string
	uuids := map[string]bool{}
	for _, st := range ups {
		got = append(got, st.GetState().String())
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Errorf("checkpointed %s from %s (%s): the agent had to fill in for the executor", st.GetState(), st.GetSource(), st.GetMessage())
		}
		u := hex.EncodeToString(st.UUID)
		if uuids[u] {
			t.Errorf("update %s checkpointed twice", u)
		}
		uuids[u] = true
	}
	if want := "TASK_STARTING TASK_RUNNING TASK_FINISHED"; strings.Join(got, " ") != want {
		t.Fatalf("checkpointed updates: %v, want %s\nfirst agent printed:\n%s\nrestarted agent printed:\n%s", got, want, a.Output(), b.Output())
	}
	// Each agent printed what it checkpointed: STARTING before the
	// restart, RUNNING and FINISHED after it.
	for _, c := range []struct {
		p    *e2etest.LocalAgent
		want string
	}{{a, "TASK_STARTING"}, {b, "TASK_RUNNING TASK_FINISHED"}} {
		if got := printedStates(c.p.Output(), taskID); got != c.want {
			t.Errorf("agent printed %q, want %q", got, c.want)
		}
	}
}

func logHas(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}

// printedStates lists the states of the update lines the agent printed for
// task.
func printedStates(out, task string) string {
	var states []string
	for _, line := range strings.Split(out, "\n") {
		state, rest, _ := strings.Cut(line, " ")
		if strings.HasPrefix(rest, "task="+task+" ") {
			states = append(states, state)
		}
	}
	return strings.Join(states, " ")
}
