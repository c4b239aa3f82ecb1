package executor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap/zaptest"
)

// Rules of the real Mesos agent that an executor must follow (issue 9).

func TestStatusUUIDsAreVersion4(t *testing.T) {
	for i := range 1000 {
		u := newUUID()
		if !ValidStatusUUID(u) {
			t.Fatalf("uuid %d = %x: the agent would answer 400 Not a valid UUID", i, u)
		}
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("uuid %x: want version 4 and the RFC 4122 variant", u)
		}
	}
}

func TestValidStatusUUIDIsStouts(t *testing.T) {
	v := func(version byte) []byte {
		b := bytes.Repeat([]byte{0xab}, 16)
		b[6] = version<<4 | 0x0b
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"version 1", v(1), true},
		{"version 4", v(4), true},
		{"version 5", v(5), true},
		{"version 0 (random bytes without version bits)", v(0), false},
		{"version 6", v(6), false},
		{"version 15", v(15), false},
		{"15 bytes", v(4)[:15], false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidStatusUUID(tc.b); got != tc.ok {
				t.Fatalf("ValidStatusUUID(%x) = %t, want %t", tc.b, got, tc.ok)
			}
		})
	}
}

func TestExecutorPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"tcp", Config{AgentEndpoint: "10.0.0.5:5051", AgentPID: "slave(1)@10.0.0.5:5051"}, "/api/v1/executor"},
		{"socket", Config{DomainSocket: "/run/mesos/agent.sock", AgentPID: "slave(1)@10.0.0.5:5051"}, "/slave(1)/api/v1/executor"},
		{"socket, another id", Config{DomainSocket: "/s", AgentPID: "slave(7)@[::1]:5051"}, "/slave(7)/api/v1/executor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.ExecutorPath(); got != tc.want {
				t.Fatalf("ExecutorPath() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRefusedUpdateDoesNotBlockLaterOnes(t *testing.T) {
	a := newAgent(t, true)
	ex := New(testConfig(a), &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}, zaptest.NewLogger(t))
	run(t, ex)
	waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "STARTING and RUNNING", func() bool { return len(a.updates()) == 2 })

	// A bug elsewhere slips in an update the agent refuses (400); the
	// next one must still get through.
	bad := executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t1"}, State: mesos.TASK_RUNNING.Enum(),
		UUID: bytes.Repeat([]byte{1}, 16)}}
	ex.mu.Lock()
	ex.unacked = append(ex.unacked, &pendingUpdate{update: bad, uuid: string(bad.Status.UUID)})
	ex.mu.Unlock()
	ex.report("t1", Status{State: mesos.TASK_RUNNING, Message: "after the refused one"})
	waitFor(t, "the update after the refused one", func() bool { return len(a.updates()) == 3 })
	waitFor(t, "the refused update dropped", func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return len(ex.unacked) == 0
	})
	// And it never rides along in a SUBSCRIBE (the agent would abort).
	a.disconnect()
}

// TestExitsWhenTheTerminalUpdateIsNeverAcknowledged: the agent drops the
// terminal update without an acknowledgement; the executor exits
// --status-ack-timeout (Mesos' own executors: 60 s) after it.
func TestExitsWhenTheTerminalUpdateIsNeverAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newBubbleAgent(t, true)
		cfg := bubbleConfig()
		cfg.AckTimeout = DefaultAckTimeout
		lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
		ex := a.newExecutor(t, cfg, lt)
		done := run(t, ex)
		waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
		a.send(launchEvent("t1"))
		waitFor(t, "STARTING and RUNNING", func() bool { return len(a.updates()) == 2 })
		a.mu.Lock()
		a.autoAck = false // the agent drops the terminal update silently
		a.mu.Unlock()
		killed := time.Now()
		a.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Minute):
			t.Fatal("executor still waits for an acknowledgement that never comes")
		}
		if took := time.Since(killed); took != DefaultAckTimeout {
			t.Errorf("exited %v after the terminal update, want the ack timeout, %v", took, DefaultAckTimeout)
		}
		if got := states(a.updates()); len(got) != 3 || got[2] != "t1:TASK_KILLED" {
			t.Fatalf("updates = %v", got)
		}
	})
}

// TestRidesOutTheAgentsRecoveryPhase: an agent restarting answers 503 to
// every call for a while (here 15 s, longer than the 2 s recovery timeout:
// the clock stops while the agent answers, as libmesos' recovery timer
// stops on connect). The executor retries SUBSCRIBE at least every second,
// holds its update meanwhile and sends it in SUBSCRIBE once the agent is
// back.
func TestRidesOutTheAgentsRecoveryPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newBubbleAgent(t, true)
		cfg := bubbleConfig()
		cfg.Checkpoint = true
		cfg.SubscriptionBackoffMax = 2 * time.Second
		cfg.RecoveryTimeout = 2 * time.Second
		a.autoAck = false
		ex := a.newExecutor(t, cfg, &scriptTask{killed: make(chan *mesos.KillPolicy, 1)})
		done := run(t, ex)
		waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
		a.send(launchEvent("t1"))
		waitFor(t, "STARTING and RUNNING", func() bool { return len(a.updates()) == 2 })

		// The agent restarts: the stream breaks, every call gets 503 for a while.
		const phase = 15 * time.Second
		a.mu.Lock()
		a.status = http.StatusServiceUnavailable
		before := len(a.paths)
		a.mu.Unlock()
		a.disconnect()
		ex.report("t1", Status{State: mesos.TASK_RUNNING, Message: "while the agent was away"})
		time.Sleep(phase)
		a.mu.Lock()
		a.status = 0
		tries := len(a.paths) - before
		a.mu.Unlock()
		if tries < int(phase/time.Second) {
			t.Errorf("%d calls during %v of 503: want SUBSCRIBE retried at least every second", tries, phase)
		}
		waitFor(t, "resubscription", func() bool { return len(a.subscribes()) == 2 })
		select {
		case err := <-done:
			t.Fatalf("executor gave up during the recovery phase: %v", err)
		default:
		}
		sub := a.subscribes()[1].GetSubscribe()
		if n := len(sub.GetUnacknowledgedUpdates()); n != 3 {
			t.Fatalf("SUBSCRIBE carries %d unacknowledged updates, want 3 (the one held while unsubscribed included)", n)
		}
		// The held update went in SUBSCRIBE, not as an UPDATE that the
		// recovering agent would refuse with 403 "Executor is not subscribed".
		if n := len(a.updates()); n != 2 {
			t.Fatalf("%d UPDATE calls reached the agent, want the 2 before the restart", n)
		}
		a.disconnect()
	})
}

func TestResubscribeWaitStaysInsideTheReregistrationWindow(t *testing.T) {
	maxRnd := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		backoffMax, want time.Duration
	}{
		{2 * time.Second, time.Second},
		{15 * time.Second, time.Second},
		{500 * time.Millisecond, 500 * time.Millisecond},
		{0, 0},
	} {
		t.Run(fmt.Sprint(tc.backoffMax), func(t *testing.T) {
			if got := resubscribeWait(tc.backoffMax, maxRnd); got != tc.want {
				t.Fatalf("longest wait = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestShutdownBeforeSubscribed(t *testing.T) {
	// A SUBSCRIBE to a terminating agent gets 200, SHUTDOWN, and the end
	// of the stream, without SUBSCRIBED.
	a := newAgent(t, true)
	a.mu.Lock()
	a.status = 0
	a.mu.Unlock()
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf, _ := (&executor.Event{Type: executor.Event_SHUTDOWN}).Marshal()
		fmt.Fprintf(w, "%d\n", len(buf))
		w.Write(buf)
		w.(http.Flusher).Flush()
	})}
	a.srv.Config.Handler = srv.Handler
	cfg := testConfig(a)
	cfg.Checkpoint = true
	ex := New(cfg, &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}, zaptest.NewLogger(t))
	done := run(t, ex)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("executor did not exit on SHUTDOWN before SUBSCRIBED")
	}
}

func TestSubscribeRefusedForGoodEndsTheExecutor(t *testing.T) {
	// Today's mistake under a real agent: SUBSCRIBE to the wrong path over
	// the executor socket is 403 every time; retrying forever ends only
	// when the agent gives up on the executor a minute later.
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			a := newAgent(t, true)
			a.status = code
			cfg := testConfig(a)
			cfg.Checkpoint = true
			ex := New(cfg, &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}, zaptest.NewLogger(t))
			select {
			case err := <-run(t, ex):
				if !errors.Is(err, ErrSubscribeRefused) {
					t.Fatalf("Run = %v, want ErrSubscribeRefused", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("executor keeps retrying a SUBSCRIBE the agent refuses for good")
			}
		})
	}
}
