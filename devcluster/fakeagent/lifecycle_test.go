package fakeagent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
)

// TestExecutorExitFailsTasks: when the executor dies, each task not yet
// terminal gets TASK_FAILED from the agent with REASON_EXECUTOR_TERMINATED,
// also when it died while the agent was down.
func TestExecutorExitFailsTasks(t *testing.T) {
	for _, tt := range []struct {
		name         string
		whileStopped bool
	}{
		{"while the agent runs", false},
		{"while the agent is down", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := startAgent(t, dir)
			got := record(a)
			fe := launchFake(t, a, framework("fw-x", true, false), "ex-x", "task-x")
			if tt.whileStopped {
				a.Close()
			}
			if err := syscall.Kill(fe.pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitGone(t, fe.pid)
			if tt.whileStopped {
				a = startAgent(t, dir, func(c *fakeagent.Config) {})
				task := findTask(t, a, "fw-x", "ex-x", "task-x")
				if task.State != "TASK_FAILED" || !strings.Contains(string(task.Status), "REASON_EXECUTOR_TERMINATED") {
					t.Fatalf("task after recovery: %s %s", task.State, task.Status)
				}
			} else {
				st := got.waitState(t, "task-x", mesos.TASK_FAILED)
				if st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || st.GetSource() != mesos.SOURCE_AGENT || st.GetMessage() == "" {
					t.Fatalf("failure update %v", st)
				}
			}
			select {
			case <-a.ExecutorDone("fw-x", "ex-x"):
			case <-time.After(waitFor):
				t.Fatal("executor run not ended")
			}
			if e := findExecutor(t, a, "fw-x", "ex-x"); e.State != "terminated" {
				t.Errorf("executor state %q, want terminated", e.State)
			}
		})
	}
}

// TestKill: a launched task's kill goes to the executor as KILL with the
// policy; a task not yet sent is killed by the agent; an unknown task is an
// error.
func TestKill(t *testing.T) {
	a := startAgent(t, t.TempDir())
	got := record(a)
	fw := framework("fw-k", true, false)
	fe := launchFake(t, a, fw, "ex-k", "launched")
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)

	policy := &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}}
	if err := a.Kill(context.Background(), "fw-k", "launched", policy); err != nil {
		t.Fatal(err)
	}
	k := s.expect(t, executor.Event_KILL)
	if k.Kill.TaskID.Value != "launched" || k.Kill.KillPolicy.GetGracePeriod().GetNanoseconds() != int64(3*time.Second) {
		t.Errorf("KILL %v", k.Kill)
	}

	// A second executor that never subscribes: its task is still queued.
	launchFake(t, a, fw, "ex-q", "queued")
	if err := a.Kill(context.Background(), "fw-k", "queued", nil); err != nil {
		t.Fatal(err)
	}
	st := got.waitState(t, "queued", mesos.TASK_KILLED)
	if st.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
		t.Errorf("kill of a queued task: %v", st)
	}
	if err := a.Kill(context.Background(), "fw-k", "nope", nil); !errors.Is(err, fakeagent.ErrUnknownTask) {
		t.Errorf("kill of an unknown task: %v, want ErrUnknownTask", err)
	}
}

// TestShutdownFramework: SHUTDOWN reaches the executor; one that ignores it
// is killed after its grace period and its tasks end TASK_KILLED.
func TestShutdownFramework(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.ShutdownGracePeriod = 100 * time.Millisecond })
	got := record(a)
	fe := launchFake(t, a, framework("fw-sd", true, false), "ex-sd", "task-sd")
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)
	if err := a.ShutdownFramework(context.Background(), "fw-sd"); err != nil {
		t.Fatal(err)
	}
	s.expect(t, executor.Event_SHUTDOWN)
	st := got.waitState(t, "task-sd", mesos.TASK_KILLED)
	if st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED {
		t.Errorf("update after shutdown %v", st)
	}
	waitGone(t, fe.pid)
}

// TestDisconnectWithoutCheckpoint: an executor of a framework that does not
// checkpoint cannot survive a lost connection, so the agent shuts it down.
func TestDisconnectWithoutCheckpoint(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.ShutdownGracePeriod = 100 * time.Millisecond })
	got := record(a)
	fe := launchFake(t, a, framework("fw-nc", false, false), "ex-nc", "task-nc")
	if fe.env["MESOS_CHECKPOINT"] != "0" {
		t.Errorf("MESOS_CHECKPOINT=%q, want 0", fe.env["MESOS_CHECKPOINT"])
	}
	if _, ok := fe.env["MESOS_RECOVERY_TIMEOUT"]; ok {
		t.Error("MESOS_RECOVERY_TIMEOUT set without checkpointing")
	}
	s := tcpClient(a, fe).subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)
	s.close()
	got.waitState(t, "task-nc", mesos.TASK_KILLED)
	waitGone(t, fe.pid)
}

// TestLaunchRefusals: launches the agent cannot accept are errors, not
// updates.
func TestLaunchRefusals(t *testing.T) {
	a := startAgent(t, t.TempDir())
	fw := framework("fw-l", true, false)
	for _, tt := range []struct {
		name string
		task mesos.TaskInfo
	}{
		{"no executor and no command", mesos.TaskInfo{Name: "a", TaskID: mesos.TaskID{Value: "a"}}},
		{"command task without a default executor", mesos.TaskInfo{Name: "b", TaskID: mesos.TaskID{Value: "b"}, Command: &mesos.CommandInfo{Value: ptr("true")}}},
		{"task id with a slash", mesos.TaskInfo{Name: "c", TaskID: mesos.TaskID{Value: "c/d"}, Executor: &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "e"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Launch(context.Background(), fw, nil, tt.task); !errors.Is(err, fakeagent.ErrInvalidLaunch) {
				t.Fatalf("got %v, want ErrInvalidLaunch", err)
			}
		})
	}
}

// TestExecutorExitKillsItsSession: what the executor left behind in its
// session dies with it, as Mesos destroys the container.
func TestExecutorExitKillsItsSession(t *testing.T) {
	a := startAgent(t, t.TempDir())
	shell := true
	info := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "ex-leak"},
		Command:    &mesos.CommandInfo{Value: ptr(`sleep 600 & echo $! > child.pid; env > env.tmp && mv env.tmp env.txt && exec sleep 600`), Shell: &shell},
	}
	if err := a.Launch(context.Background(), framework("fw-leak", true, false), info, mesos.TaskInfo{Name: "l", TaskID: mesos.TaskID{Value: "l"}}); err != nil {
		t.Fatal(err)
	}
	fe := awaitFake(t, a, "fw-leak", "ex-leak")
	b, err := os.ReadFile(filepath.Join(fe.env["MESOS_SANDBOX"], "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if sid, err := sessionOf(child); err != nil || sid != fe.pid {
		t.Fatalf("child session %d (%v), want the executor's %d", sid, err, fe.pid)
	}
	if err := syscall.Kill(fe.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.ExecutorDone("fw-leak", "ex-leak"):
	case <-time.After(waitFor):
		t.Fatal("executor run not ended")
	}
	waitGone(t, child)
}
