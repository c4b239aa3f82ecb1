package mesostest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dewarhq/dewar/devcluster/scheduler"
)

// WaitRunning polls the stub's store until n instances are RUNNING; a task
// ending or the stub exiting fails at once.
func (c *Cluster) WaitRunning(t *testing.T, s *Stub, n int) map[int]scheduler.TaskRecord {
	t.Helper()
	var latest map[int]scheduler.TaskRecord
	c.WaitFor(t, 90*time.Second, fmt.Sprintf("%d instances RUNNING", n), func() bool {
		if !s.P.Alive() {
			t.Fatalf("the stub exited:\n%s", Tail(s.P.Output(), 40))
		}
		latest = c.Latest(t, s)
		running := 0
		for i, r := range latest {
			switch r.State {
			case "TASK_RUNNING":
				running++
			case "TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_KILLED", "TASK_FINISHED":
				t.Fatalf("instance %d: %s %s (%s)", i, r.State, r.Reason, r.Message)
			}
		}
		return running == n
	})
	return latest
}

// Latest is the stub's latest record of each instance (from its store).
func (c *Cluster) Latest(t *testing.T, s *Stub) map[int]scheduler.TaskRecord {
	t.Helper()
	store, err := scheduler.OpenStore(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := store.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	return scheduler.Latest(recs)
}

// CheckUpdates compares what the stub received for taskID with the agent's
// checkpointed stream: every update the executor sent was accepted once and
// acknowledged once, and the stub received each of them, in order, and no
// other; the last is in state last. Mesos delivers at least once: the
// same update (same UUID) may reach the stub twice, which is logged, not an
// error (a re-registering agent resends its pending update from both
// Slave::reregistered and Slave::updateFramework, src/slave/slave.cpp).
func (c *Cluster) CheckUpdates(t *testing.T, s *Stub, taskID, last string) {
	t.Helper()
	var recs []StreamRecord
	c.WaitFor(t, 30*time.Second, "every update of "+taskID+" acknowledged", func() bool {
		recs = c.TaskStream(t, taskID)
		return AllAcked(recs)
	})
	checkpointed := CheckStream(t, taskID, recs)
	var want []string
	for _, r := range recs {
		if !r.Ack {
			want = append(want, r.Status.GetState().String()+" "+r.UUID)
		}
	}
	var got []string
	seen := map[string]bool{}
	for _, u := range s.Updates(t) {
		if u.Task != taskID {
			continue
		}
		if u.UUID == "" {
			t.Errorf("task %s: the stub received %s without a UUID (not from the executor)", taskID, u.State)
			continue
		}
		if seen[u.UUID] {
			t.Logf("task %s: Mesos delivered %s %s again (at-least-once delivery)", taskID, u.State, u.UUID)
			continue
		}
		seen[u.UUID] = true
		got = append(got, u.State+" "+u.UUID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("task %s: the stub received %v, the agent checkpointed %v:\n%s", taskID, got, want, DescribeStream(recs))
	}
	if len(checkpointed) == 0 || checkpointed[len(checkpointed)-1] != last {
		t.Errorf("task %s: updates %v, want the last %s", taskID, checkpointed, last)
	}
	t.Logf("task %s: updates %v: each accepted and acknowledged once, all received by the stub in order", taskID, checkpointed)
}
