package master

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/internal/frameworktest"
)

// fakeAgent stands in for *fakeagent.Agent: it records calls and answers
// launches and kills with the updates a real executor would send.
type fakeAgent struct {
	m *Master

	mu        sync.Mutex
	launched  []mesos.TaskInfo
	execs     []*mesos.ExecutorInfo
	fws       []mesos.FrameworkInfo
	killed    []string
	shutdowns []string
	quiet     bool // when set, Launch sends no update
}

func (a *fakeAgent) Info() mesos.AgentInfo {
	return mesos.AgentInfo{
		ID:       &mesos.AgentID{Value: "agent-1"},
		Hostname: "node-1",
		Resources: []mesos.Resource{
			resources.NewCPUs(4).Resource,
			resources.NewMemory(4096).Resource,
			resources.Build().Name(resources.NamePorts).Ranges(resources.BuildRanges().Span(31000, 31099).Ranges).Resource,
		},
	}
}

func (a *fakeAgent) status(fwID, taskID string, state mesos.TaskState) {
	a.m.Update(fwID, mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		AgentID: &mesos.AgentID{Value: "agent-1"}, UUID: []byte(taskID + state.String()),
	})
}

func (a *fakeAgent) Launch(_ context.Context, fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, task mesos.TaskInfo) error {
	a.mu.Lock()
	a.launched = append(a.launched, task)
	a.execs = append(a.execs, exec)
	a.fws = append(a.fws, fw)
	quiet := a.quiet
	a.mu.Unlock()
	if !quiet {
		a.status(fw.GetID().GetValue(), task.TaskID.Value, mesos.TASK_RUNNING)
	}
	return nil
}

func (a *fakeAgent) Kill(_ context.Context, fwID, taskID string, _ *mesos.KillPolicy) error {
	a.mu.Lock()
	a.killed = append(a.killed, taskID)
	a.mu.Unlock()
	a.status(fwID, taskID, mesos.TASK_KILLED)
	return nil
}

func (a *fakeAgent) ShutdownFramework(_ context.Context, fwID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.shutdowns = append(a.shutdowns, fwID)
	return nil
}

func (a *fakeAgent) launches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.launched)
}

type harness struct {
	t     *testing.T
	agent *fakeAgent
	m     *Master
	url   string
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	a := &fakeAgent{}
	m := New(zaptest.NewLogger(t), a, cfg)
	a.m = m
	mux := http.NewServeMux()
	mux.Handle("/api/v1/scheduler", m)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		// Close the master first: it ends the streams the server waits for.
		m.Close()
		srv.Close()
	})
	return &harness{t: t, agent: a, m: m, url: srv.URL + "/api/v1/scheduler"}
}

// subscribe subscribes a framework with mesos-go's real scheduler client,
// strictly: an event the test does not await fails it.
func (h *harness) subscribe(mediaType encoding.MediaType, info mesos.FrameworkInfo) *frameworktest.Framework {
	h.t.Helper()
	c := frameworktest.Subscribe(h.t, h.url, info, frameworktest.Options{MediaType: mediaType, Strict: true, Timeout: 20 * time.Second})
	if got := c.Subscribed.GetHeartbeatIntervalSeconds(); got <= 0 {
		h.t.Errorf("SUBSCRIBED heartbeat interval = %v, want > 0", got)
	}
	return c
}

func newTask(id string, offer mesos.Offer, cpus float64, ports ...uint64) mesos.TaskInfo {
	res := []mesos.Resource{resources.NewCPUs(cpus).Resource, resources.NewMemory(128).Resource}
	if len(ports) > 0 {
		res = append(res, resources.Build().Name(resources.NamePorts).Ranges(resources.BuildRanges().Span(ports[0], ports[len(ports)-1]).Ranges).Resource)
	}
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID, Resources: res,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "exec-" + id},
			Command:    &mesos.CommandInfo{Value: ptr("/bin/true")},
			Resources:  []mesos.Resource{resources.NewCPUs(0.25).Resource, resources.NewMemory(128).Resource},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func launch(offer mesos.Offer, tasks ...mesos.TaskInfo) *scheduler.Call {
	return calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(offer.ID))
}

func offerCPUs(o mesos.Offer) float64 { v, _ := resources.CPUs(o.Resources...); return v }

func TestLifecycleOverBothCodecs(t *testing.T) {
	for _, mt := range []encoding.MediaType{codecs.MediaTypeProtobuf, codecs.MediaTypeJSON} {
		t.Run(string(mt), func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.subscribe(mt, mesos.FrameworkInfo{User: "root", Name: "test"})

			offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			if got := offerCPUs(offer); got != 4 {
				t.Fatalf("first offer has %v cpus, want all 4", got)
			}
			if ports, _ := resources.Ports(offer.Resources...); ports.Size() != 100 {
				t.Fatalf("first offer ports %v, want 31000-31099", ports)
			}
			if offer.AgentID.Value != "agent-1" || offer.Hostname != "node-1" {
				t.Fatalf("offer agent %q host %q", offer.AgentID.Value, offer.Hostname)
			}

			c.Call(launch(offer, newTask("t1", offer, 1, 31000, 31001)))
			st := c.Update(mesos.TASK_RUNNING)
			if st.TaskID.Value != "t1" {
				t.Fatalf("update for %q, want t1", st.TaskID.Value)
			}
			h.agent.mu.Lock()
			if len(h.agent.fws) != 1 || h.agent.fws[0].GetID().GetValue() != c.ID || h.agent.execs[0].ExecutorID.Value != "exec-t1" {
				t.Errorf("agent launch got framework %+v executor %+v", h.agent.fws, h.agent.execs)
			}
			h.agent.mu.Unlock()
			c.Call(calls.Acknowledge("agent-1", "t1", st.UUID))

			// The rest of the node comes back as the next offer: 4 - 1 - 0.25.
			offer = c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			if got := offerCPUs(offer); got != 2.75 {
				t.Fatalf("second offer has %v cpus, want 2.75", got)
			}
			if ports, _ := resources.Ports(offer.Resources...); ports.Size() != 98 {
				t.Fatalf("second offer ports %v, want 98 ports", ports)
			}
			c.Call(calls.Decline(offer.ID).With(calls.RefuseSeconds(10 * time.Millisecond)))

			c.Call(calls.Kill("t1", "agent-1"))
			st = c.Update(mesos.TASK_KILLED)
			c.Call(calls.Acknowledge("agent-1", "t1", st.UUID))

			// Once the task has ended, everything is offered again.
			for {
				offer = c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
				if offerCPUs(offer) == 4 {
					break
				}
				c.Call(calls.Decline(offer.ID).With(calls.RefuseSeconds(10 * time.Millisecond)))
			}
		})
	}
}

var partitionAware = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}

func TestAcceptValidation(t *testing.T) {
	tests := []struct {
		name   string
		build  func(offer mesos.Offer) *scheduler.Call
		state  mesos.TaskState
		reason mesos.TaskStatus_Reason
		caps   []mesos.FrameworkInfo_Capability
	}{
		{"more cpus than offered", func(o mesos.Offer) *scheduler.Call { return launch(o, newTask("big", o, 8)) },
			mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, nil},
		{"ports outside the offer", func(o mesos.Offer) *scheduler.Call { return launch(o, newTask("p", o, 1, 80)) },
			mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, nil},
		{"two tasks exceed the offer together", func(o mesos.Offer) *scheduler.Call {
			return launch(o, newTask("a", o, 3), newTask("b", o, 1))
		}, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, nil},
		{"unknown offer", func(o mesos.Offer) *scheduler.Call {
			o.ID.Value = "no-such-offer"
			return launch(o, newTask("x", o, 1))
		}, mesos.TASK_LOST, mesos.REASON_INVALID_OFFERS, nil},
		{"unknown offer, partition-aware framework", func(o mesos.Offer) *scheduler.Call {
			o.ID.Value = "no-such-offer"
			return launch(o, newTask("x", o, 1))
		}, mesos.TASK_DROPPED, mesos.REASON_INVALID_OFFERS, partitionAware},
		{"the same offer twice", func(o mesos.Offer) *scheduler.Call {
			// By hand: mesos-go's calls.Accept drops duplicate offer ids.
			return &scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
				OfferIDs:   []mesos.OfferID{o.ID, o.ID},
				Operations: []mesos.Offer_Operation{calls.OpLaunch(newTask("d", o, 1))},
			}}
		}, mesos.TASK_LOST, mesos.REASON_INVALID_OFFERS, nil},
		{"no executor and no command", func(o mesos.Offer) *scheduler.Call {
			ti := newTask("n", o, 1)
			ti.Executor = nil
			return launch(o, ti)
		}, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test", Capabilities: tt.caps})
			offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			c.Call(tt.build(offer))
			var rejected bool
			running := 0
			for !rejected {
				st := c.Next(scheduler.Event_UPDATE).Update.Status
				switch st.GetState() {
				case mesos.TASK_RUNNING:
					// Only the valid one of a pair may run.
					if running++; tt.name != "two tasks exceed the offer together" || running > 1 {
						t.Fatalf("task %s RUNNING, want it rejected", st.TaskID.Value)
					}
				case tt.state:
					if st.GetReason() != tt.reason || st.GetMessage() == "" || len(st.UUID) != 0 {
						t.Fatalf("rejection reason %v message %q uuid %x; want %v, a message, no uuid", st.GetReason(), st.GetMessage(), st.UUID, tt.reason)
					}
					if tt.reason == mesos.REASON_INVALID_OFFERS && !strings.HasPrefix(st.GetMessage(), "Task launched with invalid offers: ") {
						t.Fatalf("rejection message %q, want Mesos' \"Task launched with invalid offers: ...\"", st.GetMessage())
					}
					rejected = true
				default:
					t.Fatalf("update %v (%s), want %v", st.GetState(), st.GetMessage(), tt.state)
				}
			}
			if tt.name != "two tasks exceed the offer together" && h.agent.launches() != 0 {
				t.Fatalf("agent launched %d tasks of a rejected accept", h.agent.launches())
			}
		})
	}
}

func TestResubscribeRedeliversUnacknowledgedAndReconciles(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
	offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	c.Call(launch(offer, newTask("t1", offer, 1)))
	first := c.Update(mesos.TASK_RUNNING) // not acknowledged
	c.Close()

	c2 := h.subscribe(codecs.MediaTypeJSON, mesos.FrameworkInfo{User: "root", Name: "test", ID: &mesos.FrameworkID{Value: c.ID}})
	if c2.ID != c.ID {
		t.Fatalf("resubscribed as %q, want framework id %q kept", c2.ID, c.ID)
	}
	again := c2.Update(mesos.TASK_RUNNING)
	if !bytes.Equal(again.UUID, first.UUID) {
		t.Fatalf("redelivered uuid %x, want %x", again.UUID, first.UUID)
	}
	c2.Call(calls.Acknowledge("agent-1", "t1", again.UUID))

	c2.Call(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t1": "agent-1", "gone": ""})))
	got := map[string]mesos.TaskStatus{}
	for len(got) < 2 {
		ev := next2(t, c2, scheduler.Event_UPDATE)
		if ev == nil {
			continue
		}
		got[ev.Update.Status.TaskID.Value] = ev.Update.Status
	}
	for id, want := range map[string]mesos.TaskState{"t1": mesos.TASK_RUNNING, "gone": mesos.TASK_LOST} {
		st := got[id]
		if st.GetState() != want || st.GetReason() != mesos.REASON_RECONCILIATION || len(st.UUID) != 0 {
			t.Errorf("reconcile %s: %v reason %v uuid %x; want %v, REASON_RECONCILIATION, no uuid", id, st.GetState(), st.GetReason(), st.UUID, want)
		}
	}
}

// next2 returns the next event of type want, or nil for an offer (offers
// may interleave with reconciliation answers).
func next2(t *testing.T, c *frameworktest.Framework, want scheduler.Event_Type) *scheduler.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("event stream ended while waiting for %v", want)
		}
		if ev.Type == want {
			return &ev
		}
		if ev.Type == scheduler.Event_OFFERS || ev.Type == scheduler.Event_HEARTBEAT {
			return nil
		}
		t.Fatalf("got event %v, want %v", ev.Type, want)
	case <-time.After(20 * time.Second):
		t.Fatalf("no %v event within 20s", want)
	}
	return nil
}

func TestHeartbeatAndTeardown(t *testing.T) {
	h := newHarness(t, Config{Heartbeat: 20 * time.Millisecond})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
	c.Next(scheduler.Event_OFFERS)
	c.Next(scheduler.Event_HEARTBEAT)

	c.Call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.agent.mu.Lock()
		n := len(h.agent.shutdowns)
		h.agent.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agent was not asked to shut the framework down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for ev := range c.Events() { // the master hangs up
		if ev.Type != scheduler.Event_HEARTBEAT && ev.Type != scheduler.Event_OFFERS {
			t.Fatalf("event %v after TEARDOWN", ev.Type)
		}
	}
	h.subscribeRefused(mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: c.ID}, User: "root", Name: "test"}, "Framework has been removed")
}

func TestUnacknowledgedUpdatesAreRetried(t *testing.T) {
	h := newHarness(t, Config{UpdateRetry: 100 * time.Millisecond})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
	offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	c.Call(launch(offer, newTask("t1", offer, 1)))
	first := c.Update(mesos.TASK_RUNNING)
	again := c.Update(mesos.TASK_RUNNING) // not acknowledged: sent again
	if !bytes.Equal(first.UUID, again.UUID) {
		t.Fatalf("retried update has uuid %x, want %x", again.UUID, first.UUID)
	}
	c.Call(calls.Acknowledge("agent-1", "t1", again.UUID))
}

// A framework keeps the user and checkpoint it registered with: a failover
// that presents others gets them put back, as Mesos' preserveImmutableFields
// does; a changed principal is refused with an ERROR event.
func TestResubscribeKeepsImmutableFields(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "alice", Name: "test", Checkpoint: ptr(true)})
	c.Close()

	id := &mesos.FrameworkID{Value: c.ID}
	c2 := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{ID: id, User: "bob", Name: "test 2", Checkpoint: ptr(false)})
	offer := c2.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	c2.Call(launch(offer, newTask("t1", offer, 1)))
	c2.Update(mesos.TASK_RUNNING)
	h.agent.mu.Lock()
	fw := h.agent.fws[0]
	h.agent.mu.Unlock()
	if fw.User != "alice" || !fw.GetCheckpoint() || fw.Name != "test 2" {
		t.Fatalf("task launched for user %q checkpoint %v name %q; want the registered alice and true, the new name", fw.User, fw.GetCheckpoint(), fw.Name)
	}
	c2.Close()

	h.subscribeRefused(mesos.FrameworkInfo{ID: id, User: "alice", Name: "test", Principal: ptr("mallory")},
		"Changing framework's principal is not allowed.")
}

// subscribeRefused subscribes info and expects what Mesos does when it
// refuses a subscription: a stream with one ERROR event, then its end.
func (h *harness) subscribeRefused(info mesos.FrameworkInfo, want string) {
	h.t.Helper()
	cli := httpcli.New(httpcli.Endpoint(h.url), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]))
	resp, err := httpsched.NewCaller(cli).Call(context.Background(), calls.Subscribe(&info))
	if err != nil {
		h.t.Fatalf("SUBSCRIBE: %v, want an ERROR event on the stream", err)
	}
	defer resp.Close()
	var ev scheduler.Event
	if err := resp.Decode(&ev); err != nil || ev.Type != scheduler.Event_ERROR || ev.GetError().GetMessage() != want {
		h.t.Fatalf("first event %v (%v), want ERROR %q", ev.String(), err, want)
	}
	if err := resp.Decode(&ev); err == nil {
		h.t.Fatalf("event %v after the ERROR, want the stream closed", ev.Type)
	}
}

// Invalid offers void the whole ACCEPT, its filters too: the offers that
// were valid go back at once (Master::accept discards them without the
// call's refuse_seconds).
func TestInvalidAcceptKeepsNoFilter(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test"})
	offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	c.Call(calls.Accept(calls.OfferOperations{calls.OpLaunch(newTask("x", offer, 1))}.WithOffers(offer.ID, mesos.OfferID{Value: "no-such-offer"})).
		With(calls.RefuseSeconds(time.Hour)))
	if st := c.Update(mesos.TASK_LOST); st.GetReason() != mesos.REASON_INVALID_OFFERS {
		t.Fatalf("update reason %v, want REASON_INVALID_OFFERS", st.GetReason())
	}
	if again := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]; offerCPUs(again) != 4 {
		t.Fatalf("offer after the invalid accept has %v cpus, want all 4", offerCPUs(again))
	}
}

// A task the master does not know is reported as Mesos' explicit
// reconciliation does, and a KILL of one is answered the same way: the
// agent named and known, TASK_GONE; no agent, TASK_UNKNOWN; TASK_LOST for
// both when the framework is not partition-aware. A task whose terminal
// update was acknowledged is no longer known.
func TestUnknownTasks(t *testing.T) {
	tests := []struct {
		name      string
		caps      []mesos.FrameworkInfo_Capability
		withAgent mesos.TaskState
		noAgent   mesos.TaskState
	}{
		{"partition-aware", partitionAware, mesos.TASK_GONE, mesos.TASK_UNKNOWN},
		{"not partition-aware", nil, mesos.TASK_LOST, mesos.TASK_LOST},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.subscribe(codecs.MediaTypeProtobuf, mesos.FrameworkInfo{User: "root", Name: "test", Capabilities: tt.caps})
			offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			c.Call(launch(offer, newTask("done", offer, 1)))
			c.Call(calls.Acknowledge("agent-1", "done", c.Update(mesos.TASK_RUNNING).UUID))
			c.Call(calls.Kill("done", "agent-1"))
			c.Call(calls.Acknowledge("agent-1", "done", c.Update(mesos.TASK_KILLED).UUID))

			c.Call(calls.Reconcile(calls.ReconcileTasks(map[string]string{"done": "agent-1", "never": "agent-1", "nowhere": ""})))
			c.Call(calls.Kill("killed-unknown", ""))
			want := map[string]mesos.TaskState{"done": tt.withAgent, "never": tt.withAgent, "nowhere": tt.noAgent, "killed-unknown": tt.noAgent}
			got := map[string]mesos.TaskStatus{}
			for len(got) < len(want) {
				if ev := next2(t, c, scheduler.Event_UPDATE); ev != nil {
					got[ev.Update.Status.TaskID.Value] = ev.Update.Status
				}
			}
			for id, state := range want {
				st := got[id]
				if st.GetState() != state || st.GetReason() != mesos.REASON_RECONCILIATION || st.GetSource() != mesos.SOURCE_MASTER || len(st.UUID) != 0 {
					t.Errorf("%s: %v reason %v source %v uuid %x; want %v, REASON_RECONCILIATION, SOURCE_MASTER, no uuid",
						id, st.GetState(), st.GetReason(), st.GetSource(), st.UUID, state)
				}
			}
		})
	}
}
