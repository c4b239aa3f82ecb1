// Package frameworktest is a Mesos framework for tests: it subscribes to a
// v1 scheduler API (the fake master's, dewar-agent's) with mesos-go's real
// client and waits for the events a test expects, keeping offers that
// arrive on the way.
//
//	f := frameworktest.Subscribe(t, url+"/api/v1/scheduler", info, frameworktest.Options{AutoAck: true})
//	offer := f.Offer()
//	f.Call(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)))
//	f.Update(mesos.TASK_RUNNING)
package frameworktest

import (
	"context"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Options shape a Framework; the zero value is a lenient protobuf client.
type Options struct {
	// MediaType of calls and events (default protobuf).
	MediaType encoding.MediaType
	// Strict fails the test on any event other than the one awaited, a
	// heartbeat, an offer or (with AutoAck) an update: for tests of the
	// master itself. Otherwise such events are passed over.
	Strict bool
	// AutoAck acknowledges every update that carries a UUID as it passes,
	// as a real framework does.
	AutoAck bool
	// Timeout bounds each wait for an event (default 30s).
	Timeout time.Duration
}

// Framework is one SUBSCRIBE stream and the calls made on it.
type Framework struct {
	// ID is the framework id the master assigned (or kept).
	ID string
	// Subscribed is the SUBSCRIBED event.
	Subscribed *scheduler.Event_Subscribed

	t      testing.TB
	opt    Options
	caller calls.Caller
	events chan scheduler.Event
	offers []scheduler.Event // OFFERS events met while waiting for something else
	cancel context.CancelFunc
	done   chan struct{}
}

// Subscribe subscribes info to the scheduler API at url and returns once
// SUBSCRIBED arrived. The stream ends in t.Cleanup (or with Close).
func Subscribe(t testing.TB, url string, info mesos.FrameworkInfo, opt Options) *Framework {
	t.Helper()
	if opt.MediaType == "" {
		opt.MediaType = codecs.MediaTypeProtobuf
	}
	if opt.Timeout == 0 {
		opt.Timeout = 30 * time.Second
	}
	cli := httpcli.New(httpcli.Endpoint(url), httpcli.Codec(codecs.ByMediaType[opt.MediaType]))
	f := &Framework{t: t, opt: opt, caller: httpsched.NewCaller(cli), events: make(chan scheduler.Event, 256), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	resp, err := f.caller.Call(ctx, calls.Subscribe(&info))
	if err != nil {
		cancel()
		t.Fatalf("SUBSCRIBE to %s: %v", url, err)
	}
	go func() {
		defer close(f.done)
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
	t.Cleanup(f.Close)
	f.Subscribed = f.Next(scheduler.Event_SUBSCRIBED).Subscribed
	f.ID = f.Subscribed.FrameworkID.Value
	return f
}

// Close ends the stream, as a scheduler that goes away. Idempotent.
func (f *Framework) Close() {
	f.cancel()
	<-f.done
}

// Events is the raw stream, closed when the master hangs up or Close ends
// it; Next reads from it too.
func (f *Framework) Events() <-chan scheduler.Event { return f.events }

// Next returns the next event of type want. Heartbeats are skipped, offers
// kept for later, updates acknowledged with AutoAck; anything else fails
// the test with Strict.
func (f *Framework) Next(want scheduler.Event_Type) scheduler.Event {
	f.t.Helper()
	if want == scheduler.Event_OFFERS && len(f.offers) > 0 {
		ev := f.offers[0]
		f.offers = f.offers[1:]
		return ev
	}
	timeout := time.After(f.opt.Timeout)
	for {
		select {
		case ev, ok := <-f.events:
			if !ok {
				f.t.Fatalf("event stream ended while waiting for %v", want)
			}
			if ev.Type == scheduler.Event_UPDATE && f.opt.AutoAck && len(ev.Update.Status.UUID) > 0 {
				st := ev.Update.Status
				f.Call(calls.Acknowledge(st.AgentID.GetValue(), st.TaskID.Value, st.UUID))
				if want != scheduler.Event_UPDATE {
					continue
				}
			}
			switch {
			case ev.Type == want:
				return ev
			case ev.Type == scheduler.Event_HEARTBEAT:
			case ev.Type == scheduler.Event_OFFERS:
				f.offers = append(f.offers, ev)
			case f.opt.Strict:
				f.t.Fatalf("got event %v (%v), want %v", ev.Type, ev.String(), want)
			}
		case <-timeout:
			f.t.Fatalf("no %v event within %v", want, f.opt.Timeout)
		}
	}
}

// Offer returns the next offer, from an OFFERS event kept or awaited.
func (f *Framework) Offer() mesos.Offer {
	f.t.Helper()
	ev := f.Next(scheduler.Event_OFFERS)
	if len(ev.Offers.Offers) > 1 {
		rest := *ev.Offers
		rest.Offers = rest.Offers[1:]
		f.offers = append([]scheduler.Event{{Type: scheduler.Event_OFFERS, Offers: &rest}}, f.offers...)
	}
	return ev.Offers.Offers[0]
}

// Call makes call as this framework and fails the test if it is refused.
func (f *Framework) Call(call *scheduler.Call) {
	f.t.Helper()
	resp, err := f.caller.Call(context.Background(), call.With(calls.Framework(f.ID)))
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		f.t.Fatalf("%v: %v", call.Type, err)
	}
}

// Update waits for the next status update, which must be of state want.
func (f *Framework) Update(want mesos.TaskState) mesos.TaskStatus {
	f.t.Helper()
	st := f.Next(scheduler.Event_UPDATE).Update.Status
	if st.GetState() != want {
		f.t.Fatalf("update for %s: state %v (%s), want %v", st.TaskID.Value, st.GetState(), st.GetMessage(), want)
	}
	return st
}
