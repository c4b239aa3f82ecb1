package fakeagent_test

import (
	"bytes"
	"net/http"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dewarhq/dewar/internal/mesosmeta"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestRestartLosesNoUpdate: an update checkpointed but never acknowledged
// (the executor was disconnected) and an update the executor could not send
// at all (the agent was down) both reach the restarted agent through
// SUBSCRIBE's unacknowledged_updates, are acknowledged, and each is
// checkpointed and reported exactly once. The executor process lives on.
func TestRestartLosesNoUpdate(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir)
	before := record(a)
	fe := launchFake(t, a, framework("fw-r", true, true), "ex-r", "task-r")
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	launch := s.expect(t, executor.Event_LAUNCH)
	s.close() // disconnected: the agent can no longer acknowledge

	running := status("task-r", mesos.TASK_RUNNING)
	if code, body, err := c.post(c.updateCall(running), "application/x-protobuf"); err != nil || code != http.StatusAccepted {
		t.Fatalf("UPDATE while disconnected: %d %s %v", code, body, err)
	}
	before.waitState(t, "task-r", mesos.TASK_RUNNING)
	a.Close()

	finished := status("task-r", mesos.TASK_FINISHED)
	if _, _, err := c.post(c.updateCall(finished), "application/x-protobuf"); err == nil {
		t.Fatal("UPDATE reached an agent that was stopped")
	}

	b := startAgent(t, dir)
	if b.Addr() != a.Addr() {
		t.Fatalf("restarted agent listens on %s, executors know %s", b.Addr(), a.Addr())
	}
	after := record(b)
	unacked := []executor.Call_Update{{Status: running}, {Status: finished}}
	s2 := c.subscribe(t, "application/x-protobuf", []mesos.TaskInfo{launch.Launch.Task}, unacked)
	s2.expect(t, executor.Event_SUBSCRIBED)
	acked := map[string]bool{}
	for range unacked {
		ev := s2.expect(t, executor.Event_ACKNOWLEDGED)
		acked[string(ev.Acknowledged.UUID)] = true
	}
	if !acked[string(running.UUID)] || !acked[string(finished.UUID)] {
		t.Fatalf("acknowledged %d of the 2 unacknowledged updates", len(acked))
	}
	after.waitState(t, "task-r", mesos.TASK_FINISHED)
	for _, st := range after.all() {
		if bytes.Equal(st.UUID, running.UUID) {
			t.Error("TASK_RUNNING, already checkpointed before the restart, was reported again")
		}
	}
	if task := findTask(t, b, "fw-r", "ex-r", "task-r"); task.State != "TASK_FINISHED" {
		t.Errorf("task state %s after recovery, want TASK_FINISHED", task.State)
	}
	if pid := findExecutor(t, b, "fw-r", "ex-r").PID; pid != fe.pid {
		t.Errorf("executor pid %d after restart, want %d (still running)", pid, fe.pid)
	}
	if _, err := sessionOf(fe.pid); err != nil {
		t.Errorf("the executor did not survive the agent restart: %v", err)
	}
	// The checkpoint holds each update once, in order.
	b.Close()
	c3 := startAgent(t, dir)
	if task := findTask(t, c3, "fw-r", "ex-r", "task-r"); task.State != "TASK_FINISHED" {
		t.Errorf("task state %s after a second restart, want TASK_FINISHED", task.State)
	}
}

// TestDroppedOnResubscribe: a task the agent sent (LAUNCH) but the executor
// does not list in unacknowledged_tasks when it re-subscribes after an
// agent restart never arrived: TASK_DROPPED for partition-aware frameworks,
// TASK_LOST for others (Mesos' Slave::subscribe). A task it does list stays.
func TestDroppedOnResubscribe(t *testing.T) {
	for _, tt := range []struct {
		name           string
		partitionAware bool
		want           mesos.TaskState
	}{
		{"partition aware", true, mesos.TASK_DROPPED},
		{"not partition aware", false, mesos.TASK_LOST},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := startAgent(t, dir)
			fe := launchFake(t, a, framework("fw-d", true, tt.partitionAware), "ex-d", "lost-in-flight", "received")
			c := tcpClient(a, fe)
			s := c.subscribe(t, "application/json", nil, nil)
			s.expect(t, executor.Event_SUBSCRIBED)
			tasks := map[string]mesos.TaskInfo{}
			for range 2 {
				ev := s.expect(t, executor.Event_LAUNCH)
				tasks[ev.Launch.Task.TaskID.Value] = ev.Launch.Task
			}
			a.Close()

			b := startAgent(t, dir)
			got := record(b)
			s2 := c.subscribe(t, "application/json", []mesos.TaskInfo{tasks["received"]}, nil)
			s2.expect(t, executor.Event_SUBSCRIBED)
			st := got.waitState(t, "lost-in-flight", tt.want)
			if st.GetSource() != mesos.SOURCE_AGENT || st.GetReason() != mesos.REASON_AGENT_RESTARTED || len(st.UUID) != 16 {
				t.Errorf("drop update %v", st)
			}
			if task := findTask(t, b, "fw-d", "ex-d", "received"); task.State != "TASK_STAGING" {
				t.Errorf("task the executor has: %s, want TASK_STAGING", task.State)
			}
			for _, u := range got.all() {
				if u.TaskID.Value == "received" {
					t.Errorf("update for a task the executor has: %v", u)
				}
			}
		})
	}
}

// TestRecoveryAcrossRuns: a task's updates stay in the task.updates of the
// run it was launched in, as Mesos keeps them; after a restart the agent
// finds each task's stream in its own run, also an earlier run's.
func TestRecoveryAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir)
	got := record(a)
	fw := framework("fw-m", true, true)
	fe1 := launchFake(t, a, fw, "ex-m", "task-1")
	s := tcpClient(a, fe1).subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)
	if err := syscall.Kill(fe1.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got.waitState(t, "task-1", mesos.TASK_FAILED)
	testenv.WaitUntil(t, 10*time.Second, "the first run to end", func() bool { return findExecutor(t, a, "fw-m", "ex-m").State == "terminated" })

	fe2 := launchFake(t, a, fw, "ex-m", "task-2")
	c2 := tcpClient(a, fe2)
	s2 := c2.subscribe(t, "application/x-protobuf", nil, nil)
	s2.expect(t, executor.Event_SUBSCRIBED)
	s2.expect(t, executor.Event_LAUNCH)
	if code, body, err := c2.post(c2.updateCall(status("task-2", mesos.TASK_RUNNING)), "application/x-protobuf"); err != nil || code != http.StatusAccepted {
		t.Fatalf("UPDATE: %d %s %v", code, body, err)
	}
	s2.expect(t, executor.Event_ACKNOWLEDGED)
	a.Close()

	for fe, task := range map[*fakeExecutor]string{fe1: "task-1", fe2: "task-2"} {
		meta, _ := mesosmeta.MetaRunDir(fe.env["MESOS_DIRECTORY"])
		if recs, err := mesosmeta.ReadStream(mesosmeta.UpdatesPath(meta, task)); err != nil || len(recs) != 1 {
			t.Errorf("%s's stream in its own run: %d records, %v; want 1", task, len(recs), err)
		}
	}
	b := startAgent(t, dir)
	for task, want := range map[string]string{"task-1": "TASK_FAILED", "task-2": "TASK_RUNNING"} {
		if st := findTask(t, b, "fw-m", "ex-m", task).State; st != want {
			t.Errorf("%s recovered as %s, want %s", task, st, want)
		}
	}
}
