package master

import (
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Acknowledging a task's terminal update while an earlier one is still
// unacknowledged ends the task and everything pending for it: the master
// re-sends nothing of a task it no longer knows (in Mesos the earlier
// update would have been acknowledged first, Master::acknowledge).
func TestTerminalAckDropsEarlierUpdates(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
	offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	c.Call(launch(offer, newTask("t1", offer, 1)))
	c.Update(mesos.TASK_RUNNING) // never acknowledged
	c.Call(calls.Kill("t1", "agent-1"))
	c.Call(calls.Acknowledge("agent-1", "t1", c.Update(mesos.TASK_KILLED).UUID))

	h.m.mu.Lock()
	pending := slices.Clone(h.m.frameworks[c.ID].unacked)
	_, known := h.m.tasks[taskKey{c.ID, "t1"}]
	h.m.mu.Unlock()
	if len(pending) != 0 || known {
		states := make([]string, len(pending))
		for i, p := range pending {
			states[i] = p.status.TaskID.Value + " " + p.status.GetState().String()
		}
		t.Fatalf("after the terminal ack: task known %v, updates left to re-send %v; want neither", known, states)
	}
}
