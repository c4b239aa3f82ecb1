package executore2e

import (
	"context"
	"os/user"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// framework is a minimal Mesos framework on the agent's scheduler API
// (/api/v1/scheduler), using mesos-go's real scheduler client: the only way
// to send KILL to a task through the real dewar-agent binary.
type framework struct {
	t      testing.TB
	caller calls.Caller
	id     string
	events chan scheduler.Event
	offers []mesos.Offer
}

func subscribeFramework(t testing.TB, agentURL string) *framework {
	t.Helper()
	cli := httpcli.New(httpcli.Endpoint(agentURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]))
	f := &framework{t: t, caller: httpsched.NewCaller(cli), events: make(chan scheduler.Event, 256)}
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := f.caller.Call(ctx, calls.Subscribe(&mesos.FrameworkInfo{User: name, Name: "e2e-executor"}))
	if err != nil {
		cancel()
		t.Fatalf("SUBSCRIBE to %s: %v", agentURL, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(f.events)
		defer resp.Close()
		for {
			var ev scheduler.Event
			if err := resp.Decode(&ev); err != nil {
				return
			}
			select {
			case f.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	f.id = f.next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
	return f
}

// next returns the next event of type want; offers met on the way are kept
// for offer, heartbeats skipped, updates acknowledged.
func (f *framework) next(want scheduler.Event_Type) scheduler.Event {
	f.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-f.events:
			if !ok {
				f.t.Fatalf("scheduler event stream ended while waiting for %s", want)
			}
			if ev.Type == scheduler.Event_OFFERS {
				f.offers = append(f.offers, ev.Offers.Offers...)
			}
			if ev.Type == scheduler.Event_UPDATE && len(ev.Update.Status.UUID) > 0 {
				st := ev.Update.Status
				f.call(calls.Acknowledge(st.AgentID.GetValue(), st.TaskID.Value, st.UUID))
			}
			if ev.Type == want {
				return ev
			}
		case <-timeout:
			f.t.Fatalf("no %s event within 30s", want)
		}
	}
}

func (f *framework) call(c *scheduler.Call) {
	f.t.Helper()
	resp, err := f.caller.Call(context.Background(), c.With(calls.Framework(f.id)))
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		f.t.Fatalf("%s: %v", c.Type, err)
	}
}

// launchCommand accepts an offer with one command task (run by the agent
// under its --executor) and returns the agent id it went to.
func (f *framework) launchCommand(taskID, cmd string) string {
	f.t.Helper()
	return f.launchTask(mesos.TaskInfo{Name: taskID, TaskID: mesos.TaskID{Value: taskID}, Command: &mesos.CommandInfo{Value: &cmd}})
}

// launchTask accepts an offer with task (given a small share of the
// offer's resources and its agent id) and returns the agent id it went to.
func (f *framework) launchTask(task mesos.TaskInfo) string {
	f.t.Helper()
	for len(f.offers) == 0 {
		f.next(scheduler.Event_OFFERS)
	}
	o := f.offers[0]
	f.offers = f.offers[1:]
	task.AgentID = o.AgentID
	task.Resources = []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource}
	f.call(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(o.ID)))
	return o.AgentID.Value
}

// update waits for the next status update of the task, which must be want.
func (f *framework) update(want mesos.TaskState) mesos.TaskStatus {
	f.t.Helper()
	st := f.next(scheduler.Event_UPDATE).Update.Status
	if st.GetState() != want {
		f.t.Fatalf("task %s: got %s (%s), want %s", st.TaskID.Value, st.GetState(), st.GetMessage(), want)
	}
	return st
}
