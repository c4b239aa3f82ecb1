package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// fakeNode is the strict fake agent, in this process, with the real
// dewar-executor for Aurora tasks. It can be stopped and started again on
// the same work dir (executors keep running and re-subscribe) and records
// every update any of its incarnations checkpointed, in order.
type fakeNode struct {
	t        *testing.T
	cfg      fakeagent.Config
	executor string // the dewar-executor binary
	fw       mesos.FrameworkInfo

	agent *fakeagent.Agent // nil while stopped

	// mu guards the following fields.
	mu      sync.Mutex
	updates []update
}

// update is a checkpointed status update and when it reached the test.
type update struct {
	st mesos.TaskStatus
	at time.Time
}

// newFakeNode starts the agent on a fresh work dir; cfg's WorkDir, Listen,
// Hostname and Log are filled in. The framework checkpoints, as Aurora's
// does (CommandLineDriverSettingsModule, getFrameworkInfo:
// .setCheckpoint(true)), so executors outlive the agent's restarts.
// Cleanup kills every executor still running, by PID, and stops the agent;
// a condition on which a real Mesos agent aborts fails the test.
func newFakeNode(t *testing.T, cfg fakeagent.Config) *fakeNode {
	t.Helper()
	n := &fakeNode{t: t, cfg: cfg, executor: testenv.Binary(t, "dewar-executor")}
	work := t.TempDir()
	for _, d := range []string{work, filepath.Dir(work)} {
		if err := os.Chmod(d, 0o755); err != nil { // traversable by the task user
			t.Fatal(err)
		}
	}
	if n.cfg.WorkDir == "" {
		n.cfg.WorkDir = work
	}
	n.cfg.Listen, n.cfg.Hostname = "127.0.0.1:0", "localhost"
	if n.cfg.ShutdownGracePeriod == 0 {
		n.cfg.ShutdownGracePeriod = 5 * time.Second
	}
	n.cfg.Log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	checkpoint := true
	n.fw = mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "aurora"}, Name: "Aurora", User: "root", Checkpoint: &checkpoint}
	n.start()
	t.Cleanup(n.cleanup)
	return n
}

// start starts an incarnation of the agent on the node's work dir (the
// port recorded there is reused: running executors know only that one).
func (n *fakeNode) start() {
	n.t.Helper()
	a, err := fakeagent.New(n.cfg)
	if err != nil {
		n.t.Fatalf("start the fake agent: %v", err)
	}
	a.OnUpdate(func(_ string, st mesos.TaskStatus) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.updates = append(n.updates, update{st: st, at: time.Now()})
	})
	a.Start()
	n.agent = a
}

// stop closes the current incarnation (its executors keep running) and
// fails the test on any condition on which a real agent aborts.
func (n *fakeNode) stop() {
	n.t.Helper()
	if n.agent == nil {
		return
	}
	_ = n.agent.Close()
	for _, err := range n.agent.Fatal() {
		n.t.Errorf("the fake agent hit a condition on which a real Mesos agent aborts: %v", err)
	}
	n.agent = nil
}

func (n *fakeNode) cleanup() {
	if n.agent != nil {
		for _, f := range n.agent.Snapshot().Frameworks {
			for _, e := range f.Executors {
				if e.State != "terminated" && e.PID > 0 {
					_ = syscall.Kill(e.PID, syscall.SIGKILL)
				}
			}
		}
	}
	n.stop()
	// What an executor killed above left: every task process carries its
	// sandbox, under the work dir, as MESOS_DIRECTORY.
	for _, pid := range e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + n.cfg.WorkDir + "/") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// launch runs an Aurora job (MesosJob JSON named name) as a task under
// dewar-executor with extra flags, and returns its task id and executor id.
func (n *fakeNode) launch(t *testing.T, jobJSON, name string, executorFlags ...string) (taskID, executorID string) {
	t.Helper()
	return n.launchAs(t, jobJSON, jobJSON, name, executorFlags...)
}

// launchAs is launch with the AssignedTask's fields taken from the job
// parseJSON and sendJSON as its executor config: a job this repository's
// parser refuses still reaches the executor.
func (n *fakeNode) launchAs(t *testing.T, parseJSON, sendJSON, name string, executorFlags ...string) (taskID, executorID string) {
	t.Helper()
	job, err := aurora.ParseJob([]byte(parseJSON))
	if err != nil {
		t.Fatalf("test job: %v", err)
	}
	taskID = fmt.Sprintf("root-test-%s-0-%d", name, time.Now().UnixNano())
	data, err := aurora.BuildAssignedTask(job, []byte(sendJSON), taskID, 0, map[string]int32{"http": 31999})
	if err != nil {
		t.Fatal(err)
	}
	noShell := false
	exInfo := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "thermos-" + taskID},
		Name:       &[]string{aurora.ExecutorName}[0],
		Command: &mesos.CommandInfo{Value: &n.executor, Shell: &noShell,
			Arguments: append([]string{n.executor}, executorFlags...)},
	}
	info := mesos.TaskInfo{Name: name, TaskID: mesos.TaskID{Value: taskID}, Data: data,
		Resources: []mesos.Resource{{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.agent.Launch(ctx, n.fw, exInfo, info); err != nil {
		t.Fatalf("launch %s: %v", taskID, err)
	}
	return taskID, exInfo.ExecutorID.Value
}

// kill asks the executor to kill the task (a scheduler's KILL).
func (n *fakeNode) kill(t *testing.T, taskID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.agent.Kill(ctx, n.fw.ID.Value, taskID, nil); err != nil {
		t.Fatalf("kill %s: %v", taskID, err)
	}
}

// shutdown shuts the framework down: SHUTDOWN to each of its executors,
// destroyed if still running a grace period later.
func (n *fakeNode) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.agent.ShutdownFramework(ctx, n.fw.ID.Value); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// executorState polls the agent until the executor has a PID and returns its
// /state entry.
func (n *fakeNode) executorState(t *testing.T, id string) fakeagent.ExecutorState {
	t.Helper()
	var st fakeagent.ExecutorState
	testenv.WaitUntil(t, time.Minute, "executor "+id+" running", func() bool {
		for _, f := range n.agent.Snapshot().Frameworks {
			for _, e := range f.Executors {
				if e.ID == id && e.PID > 0 {
					st = e
					return true
				}
			}
		}
		return false
	})
	return st
}

// executorDone returns a channel closed once the executor's run has ended
// and the agent cleaned up after it.
func (n *fakeNode) executorDone(id string) <-chan struct{} {
	return n.agent.ExecutorDone(n.fw.ID.Value, id)
}

// updatesOf returns the checkpointed updates of a task, in order.
func (n *fakeNode) updatesOf(taskID string) []update {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []update
	for _, u := range n.updates {
		if u.st.TaskID.Value == taskID {
			out = append(out, u)
		}
	}
	return out
}

// allUpdates returns every checkpointed update, in order.
func (n *fakeNode) allUpdates() []update {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]update(nil), n.updates...)
}

// waitState waits for a checkpointed update of the task in state s and
// returns it.
func (n *fakeNode) waitState(t *testing.T, d time.Duration, taskID string, s mesos.TaskState) update {
	t.Helper()
	var got update
	testenv.WaitUntil(t, d, fmt.Sprintf("task %s %s", taskID, s), func() bool {
		for _, u := range n.updatesOf(taskID) {
			if u.st.GetState() == s {
				got = u
				return true
			}
		}
		return false
	})
	return got
}

// waitTerminal waits for the task's first terminal update.
func (n *fakeNode) waitTerminal(t *testing.T, d time.Duration, taskID string) update {
	t.Helper()
	var got update
	testenv.WaitUntil(t, d, "a terminal update of task "+taskID, func() bool {
		for _, u := range n.updatesOf(taskID) {
			if isTerminal(u.st.State) {
				got = u
				return true
			}
		}
		return false
	})
	return got
}
