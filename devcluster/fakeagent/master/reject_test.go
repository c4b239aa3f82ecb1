package master

import (
	"slices"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/dewarhq/dewar/internal/frameworktest"
)

// A LAUNCH that reuses the id of a running task is answered with
// TASK_ERROR and nothing else: as Master::_accept only forwards the
// update, the running task keeps its state (reconciliation answers
// RUNNING), its resources (the next offer has 4 - 1 - 0.25 cpus) and can
// still be killed. The same holds for the same id twice in one ACCEPT,
// where the first task is launched and the second refused.
func TestRejectedLaunchLeavesKnownTaskAlone(t *testing.T) {
	t.Run("later ACCEPT", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
		offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
		c.Call(launch(offer, newTask("t1", offer, 1)))
		c.Call(calls.Acknowledge("agent-1", "t1", c.Update(mesos.TASK_RUNNING).UUID))

		offer = c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
		c.Call(launch(offer, newTask("t1", offer, 1)))
		checkDuplicateRejected(t, c.Update(mesos.TASK_ERROR))
		checkStillRunning(t, h, c, "t1")
	})
	t.Run("same ACCEPT", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
		offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
		c.Call(launch(offer, newTask("t1", offer, 1), newTask("t1", offer, 1)))
		// The TASK_ERROR is sent at once, RUNNING when the agent has
		// launched: either may come first.
		var running, rejected bool
		for !running || !rejected {
			st := c.Next(scheduler.Event_UPDATE).Update.Status
			switch st.GetState() {
			case mesos.TASK_RUNNING:
				running = true
				c.Call(calls.Acknowledge("agent-1", "t1", st.UUID))
			case mesos.TASK_ERROR:
				rejected = true
				checkDuplicateRejected(t, st)
			default:
				t.Fatalf("update %v (%s), want RUNNING and TASK_ERROR", st.GetState(), st.GetMessage())
			}
		}
		checkStillRunning(t, h, c, "t1")
	})
}

func checkDuplicateRejected(t *testing.T, st mesos.TaskStatus) {
	t.Helper()
	if st.TaskID.Value != "t1" || st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), "duplicate ID") || len(st.UUID) != 0 {
		t.Fatalf("rejection of %s: reason %v message %q uuid %x; want t1, REASON_TASK_INVALID, \"task has duplicate ID\", no uuid",
			st.TaskID.Value, st.GetReason(), st.GetMessage(), st.UUID)
	}
}

// checkStillRunning checks that the master still holds task id (1 cpu and
// its executor's 0.25) as running, and that a KILL of it reaches the agent.
func checkStillRunning(t *testing.T, h *harness, c *frameworktest.Framework, id string) {
	t.Helper()
	if got := offerCPUs(c.Next(scheduler.Event_OFFERS).Offers.Offers[0]); got != 2.75 {
		t.Fatalf("offer after the rejected launch has %v cpus, want 2.75 (task %s still holds its resources)", got, id)
	}
	c.Call(calls.Reconcile(calls.ReconcileTasks(map[string]string{id: "agent-1"})))
	var ev *scheduler.Event
	for ev == nil {
		ev = next2(t, c, scheduler.Event_UPDATE)
	}
	if st := ev.Update.Status; st.TaskID.Value != id || st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("reconcile %s: %s %v (%s), want TASK_RUNNING", id, st.TaskID.Value, st.GetState(), st.GetMessage())
	}
	c.Call(calls.Kill(id, "agent-1"))
	c.Call(calls.Acknowledge("agent-1", id, c.Update(mesos.TASK_KILLED).UUID))
	h.agent.mu.Lock()
	killed := slices.Clone(h.agent.killed)
	h.agent.mu.Unlock()
	if !slices.Equal(killed, []string{id}) {
		t.Fatalf("agent killed %v, want [%s]", killed, id)
	}
}
