package scheduler

import (
	"context"
	"fmt"
	"os"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Both `run` and `kill --master` subscribe as the stub's framework; they do
// it here, one way, so that a failover by `kill` presents the framework
// exactly as `run` registered it.

// identity is what the store keeps of a framework so that any later
// subscriber presents the same FrameworkInfo.
type identity struct {
	ID   string // "" registers a new framework
	User string
	Name string
}

// frameworkInfo builds the FrameworkInfo the stub subscribes with. Mesos
// keeps user and checkpoint for a framework's life: on SUBSCRIBE with a
// known id it silently puts the old values back, and UPDATE_FRAMEWORK with
// other ones is refused (src/master/validation.cpp,
// framework::preserveImmutableFields and framework::validateUpdate, called
// from Master::_subscribe and Master::updateFramework). So they never
// change here either.
func frameworkInfo(id identity) *mesos.FrameworkInfo {
	host, _ := os.Hostname()
	failover := (7 * 24 * time.Hour).Seconds()
	info := &mesos.FrameworkInfo{
		User: id.User, Name: id.Name, Hostname: &host,
		Checkpoint: ptr(true), FailoverTimeout: &failover,
	}
	if id.ID != "" {
		info.ID = &mesos.FrameworkID{Value: id.ID}
	}
	return info
}

// newCaller is a scheduler API client for master (host:port or URL).
func newCaller(master string) calls.Caller {
	cli := httpcli.New(
		httpcli.Endpoint(SchedulerURL(master)),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(30*time.Second))),
	)
	return httpsched.NewCaller(cli, httpsched.AllowReconnection(true))
}

// subscription is one SUBSCRIBE stream. Mesos promises a HEARTBEAT every
// interval; silence for several of them means the connection is dead even
// if TCP has not noticed, and the stream's context is cancelled.
type subscription struct {
	resp     mesos.Response
	cancel   context.CancelFunc
	watchdog *time.Timer
	silence  time.Duration
}

// subscribe opens the event stream as the framework id names. The returned
// context ends with the stream; calls made on its behalf should use it.
func subscribe(ctx context.Context, caller calls.Caller, master string, id identity) (*subscription, context.Context, error) {
	subCtx, cancel := context.WithCancel(ctx)
	resp, err := caller.Call(subCtx, calls.Subscribe(frameworkInfo(id)))
	if err != nil {
		cancel()
		what := "a new framework"
		if id.ID != "" {
			what = "framework " + id.ID
		}
		return nil, nil, fmt.Errorf("subscribe to %s as %s: %w", SchedulerURL(master), what, err)
	}
	s := &subscription{resp: resp, cancel: cancel, silence: time.Minute}
	s.watchdog = time.AfterFunc(s.silence, cancel)
	return s, subCtx, nil
}

// next waits for the next event.
func (s *subscription) next() (scheduler.Event, error) {
	var ev scheduler.Event
	if err := s.resp.Decode(&ev); err != nil {
		return ev, fmt.Errorf("event stream: %w", err)
	}
	if hb := ev.GetSubscribed().GetHeartbeatIntervalSeconds(); hb > 0 {
		s.silence = time.Duration(3 * hb * float64(time.Second))
	}
	s.watchdog.Reset(s.silence)
	if ev.Type == scheduler.Event_ERROR {
		return ev, &MasterError{Message: ev.GetError().GetMessage()}
	}
	return ev, nil
}

// MasterError is an ERROR event: the master refused the subscription or
// dropped the framework. Mesos sends one (a FrameworkErrorMessage) when
// Master::validateFramework or framework::validateUpdate refuse a
// SUBSCRIBE (src/master/master.cpp, Master::subscribe), and "Framework
// failed over" to a stream another subscriber took over
// (Master::failoverFramework). Subscribing again the same way gets the
// same answer, so it ends Run.
type MasterError struct{ Message string }

func (e *MasterError) Error() string { return "master sent ERROR: " + e.Message }

// msgFrameworkRemoved is Mesos' ERROR for a framework that was torn down
// or outlived its failover timeout (Master::validateFramework,
// isCompletedFramework): its id can never subscribe again.
const msgFrameworkRemoved = "Framework has been removed"

// forgetRemoved forgets the framework recorded in store when merr says the
// master removed it (Mesos killed its tasks with it, Master::removeFramework),
// and returns the error to report; removed is false for any other ERROR.
func forgetRemoved(store *Store, who string, merr *MasterError) (err error, removed bool) {
	if merr.Message != msgFrameworkRemoved {
		return nil, false
	}
	if ferr := store.ForgetFramework(); ferr != nil {
		return fmt.Errorf("%s: %w; forgetting it in the database failed too: %w", who, merr, ferr), true
	}
	return fmt.Errorf("%s: %w (torn down, or away longer than its failover timeout), and its tasks with it; "+
		"forgot it in the database", who, merr), true
}

// Close ends the stream.
func (s *subscription) Close() {
	s.watchdog.Stop()
	s.cancel()
	_ = s.resp.Close()
}

// callAs sends c as framework fwID; the answer of a call other than
// SUBSCRIBE carries nothing the stub needs.
func callAs(ctx context.Context, caller calls.Caller, fwID string, c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: fwID}
	resp, err := caller.Call(ctx, c)
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		return fmt.Errorf("%v call: %w", c.Type, err)
	}
	return nil
}
