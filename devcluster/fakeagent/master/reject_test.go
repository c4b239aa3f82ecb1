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

// A launch that reuses the id of a running task is answered with an
// update of its own and nothing else: as Master::accept and
// Master::_accept only forward it, the running task keeps its state
// (reconciliation answers RUNNING), its resources (the next offer has
// 4 - 1 - 0.25 cpus) and can still be killed. The same holds for the same
// id twice in one ACCEPT, where the first task is launched and the second
// refused.
func TestRejectedLaunchLeavesKnownTaskAlone(t *testing.T) {
	later := []struct {
		name    string
		call    func(offer mesos.Offer) *scheduler.Call
		state   mesos.TaskState
		message string
	}{
		{"LAUNCH", func(o mesos.Offer) *scheduler.Call { return launch(o, newTask("t1", o, 1)) },
			mesos.TASK_ERROR, "task has duplicate ID: t1"},
		{"LAUNCH with an invalid offer", func(o mesos.Offer) *scheduler.Call {
			return calls.Accept(calls.OfferOperations{calls.OpLaunch(newTask("t1", o, 1))}.WithOffers(o.ID, mesos.OfferID{Value: "no-such-offer"}))
		}, mesos.TASK_LOST, "Task launched with invalid offers: offer no-such-offer is no longer valid"},
		{"LAUNCH_GROUP", func(o mesos.Offer) *scheduler.Call {
			ti := newTask("t1", o, 1)
			return calls.Accept(calls.OfferOperations{calls.OpLaunchGroup(*ti.Executor, ti)}.WithOffers(o.ID))
		}, mesos.TASK_ERROR, "LAUNCH_GROUP is not supported by the fake master"},
	}
	for _, tt := range later {
		t.Run("later "+tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
			offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			c.Call(launch(offer, newTask("t1", offer, 1)))
			c.Call(calls.Acknowledge("agent-1", "t1", c.Update(mesos.TASK_RUNNING).UUID))

			offer = c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			c.Call(tt.call(offer))
			if st := c.Update(tt.state); st.TaskID.Value != "t1" || st.GetMessage() != tt.message || len(st.UUID) != 0 {
				t.Fatalf("rejection of %s: message %q uuid %x; want t1, %q, no uuid", st.TaskID.Value, st.GetMessage(), st.UUID, tt.message)
			}
			checkStillRunning(t, h, c, "t1")
		})
	}
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
