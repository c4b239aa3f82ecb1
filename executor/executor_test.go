package executor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/internal/testenv"
)

// agent is a minimal in-test Mesos agent: it records every call, streams
// events to the subscriber and acknowledges updates when told to. The full
// fake agent (package fakeagent) is tested with the real binary; this one
// pins down the executor's side of the protocol.
type agent struct {
	t       *testing.T
	srv     *httptest.Server
	autoAck bool

	mu       sync.Mutex
	calls    []*executor.Call
	stream   chan *executor.Event // events for the current subscriber
	subs     int
	closeSub chan struct{}
	token    string
	paths    []string
	// status answers every call with this code while set (e.g. 503 while
	// the agent recovers), as the real agent does before routing a call.
	status int
	// pathPrefix, when set, is the only prefix the agent admits, as over
	// the real agent's executor socket.
	pathPrefix string
}

func newAgent(t *testing.T, autoAck bool) *agent {
	a := &agent{t: t, autoAck: autoAck}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *agent) endpoint() string { return strings.TrimPrefix(a.srv.URL, "http://") }

func (a *agent) serve(w http.ResponseWriter, r *http.Request) {
	if a.token != "" && r.Header.Get("Authorization") != "Bearer "+a.token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	a.mu.Lock()
	a.paths = append(a.paths, r.URL.Path)
	status, prefix := a.status, a.pathPrefix
	a.mu.Unlock()
	if prefix != "" && r.URL.Path != prefix+"/api/v1/executor" {
		http.Error(w, "", http.StatusForbidden)
		return
	}
	if status != 0 {
		http.Error(w, "Agent has not finished recovery", status)
		return
	}
	var c executor.Call
	if err := c.Unmarshal(b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// As stout's UUID::fromBytes: the agent refuses an update whose UUID
	// has no RFC 4122 version.
	if u := c.GetUpdate(); u != nil && !ValidStatusUUID(u.Status.UUID) {
		http.Error(w, "Not a valid UUID", http.StatusBadRequest)
		return
	}
	if s := c.GetSubscribe(); s != nil {
		for _, u := range s.UnacknowledgedUpdates {
			if !ValidStatusUUID(u.Status.UUID) {
				a.t.Errorf("SUBSCRIBE carries an update with an invalid UUID %x: the real agent aborts", u.Status.UUID)
			}
		}
	}
	a.mu.Lock()
	a.calls = append(a.calls, &c)
	a.mu.Unlock()
	switch c.GetType() {
	case executor.Call_SUBSCRIBE:
		a.mu.Lock()
		a.subs++
		ch := make(chan *executor.Event, 64)
		closeSub := make(chan struct{})
		a.stream, a.closeSub = ch, closeSub
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		a.send(&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
			ExecutorInfo:  mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "ex"}},
			FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "test"},
			AgentInfo:     mesos.AgentInfo{Hostname: "agent.example", ID: &mesos.AgentID{Value: "agent-1"}},
		}})
		fl := w.(http.Flusher)
		for {
			select {
			case ev := <-ch:
				buf, _ := ev.Marshal()
				fmt.Fprintf(w, "%d\n", len(buf))
				w.Write(buf)
				fl.Flush()
			case <-closeSub:
				return
			case <-r.Context().Done():
				return
			}
		}
	case executor.Call_UPDATE:
		w.WriteHeader(http.StatusAccepted)
		if a.autoAck {
			st := c.GetUpdate().GetStatus()
			a.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{
				TaskID: st.TaskID, UUID: st.UUID}})
		}
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *agent) send(ev *executor.Event) {
	a.mu.Lock()
	ch := a.stream
	a.mu.Unlock()
	ch <- ev
}

// disconnect ends the current subscription stream, as an agent restart does.
func (a *agent) disconnect() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closeSub != nil {
		close(a.closeSub)
		a.closeSub = nil
	}
}

func (a *agent) updates() []mesos.TaskStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []mesos.TaskStatus
	for _, c := range a.calls {
		if c.GetType() == executor.Call_UPDATE {
			out = append(out, c.GetUpdate().GetStatus())
		}
	}
	return out
}

func (a *agent) subscribes() []*executor.Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*executor.Call
	for _, c := range a.calls {
		if c.GetType() == executor.Call_SUBSCRIBE {
			out = append(out, c)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitUntil(t, 10*time.Second, what, cond)
}

// scriptTask is a Launcher whose tasks report what the test tells them.
type scriptTask struct {
	mu     sync.Mutex
	report Reporter
	killed chan *mesos.KillPolicy
}

func (s *scriptTask) Launch(_ context.Context, _ LaunchEnv, _ mesos.TaskInfo, report Reporter) Task {
	s.mu.Lock()
	s.report = report
	s.mu.Unlock()
	report(Status{State: mesos.TASK_STARTING})
	report(Status{State: mesos.TASK_RUNNING})
	return s
}

// Done: the script task holds nothing, so its teardown is over at once.
func (s *scriptTask) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (s *scriptTask) Kill(p *mesos.KillPolicy, _ string) {
	s.killed <- p
	s.mu.Lock()
	r := s.report
	s.mu.Unlock()
	r(Status{State: mesos.TASK_KILLED, Message: "killed"})
}

func (s *scriptTask) Shutdown(grace time.Duration, why string) {
	s.Kill(&mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(grace)}}, why)
}

// run starts ex and returns what Run returns. The test's cleanup stops the
// executor and waits for it before the agent closes, so that nothing logs
// after the test.
func run(t *testing.T, ex *Executor) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done, out := make(chan error, 1), make(chan error, 1)
	go func() { err := ex.Run(ctx); done <- err; out <- err }()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func testConfig(a *agent) Config {
	return Config{FrameworkID: "fw", ExecutorID: "ex", AgentEndpoint: a.endpoint(), Directory: "/tmp", Sandbox: "/tmp",
		ShutdownGracePeriod: 2 * time.Second, RecoveryTimeout: time.Minute, SubscriptionBackoffMax: 50 * time.Millisecond,
		AckTimeout: DefaultAckTimeout}
}

func launchEvent(id string) *executor.Event {
	return &executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{
		Task: mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "agent-1"}}}}
}

func states(sts []mesos.TaskStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.TaskID.Value+":"+s.GetState().String())
	}
	return out
}

func TestUpdatesCarryWhatMesosRequires(t *testing.T) {
	a := newAgent(t, true)
	a.token = "tok-123"
	cfg := testConfig(a)
	cfg.AuthToken = a.token
	lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
	ex := New(cfg, lt, zaptest.NewLogger(t))
	done := run(t, ex)

	waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "STARTING and RUNNING", func() bool { return len(a.updates()) == 2 })
	a.send(&executor.Event{Type: executor.Event_HEARTBEAT})
	a.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte("hi")}})
	a.send(&executor.Event{Type: executor.Event_Type(99)}) // unknown: logged, never fatal
	a.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("executor did not exit after its last update was acknowledged")
	}
	got := a.updates()
	if want := []string{"t1:TASK_STARTING", "t1:TASK_RUNNING", "t1:TASK_KILLED"}; fmt.Sprint(states(got)) != fmt.Sprint(want) {
		t.Fatalf("updates = %v, want %v", states(got), want)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if len(s.UUID) != 16 {
			t.Errorf("uuid of %s is %d bytes, want 16", s.GetState(), len(s.UUID))
		}
		if seen[string(s.UUID)] {
			t.Errorf("uuid reused")
		}
		seen[string(s.UUID)] = true
		if s.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Errorf("source = %v", s.GetSource())
		}
		if s.GetExecutorID().GetValue() != "ex" || s.GetAgentID().GetValue() != "agent-1" || s.Timestamp == nil {
			t.Errorf("status lacks ids or timestamp: %+v", s)
		}
	}
}

func TestLaunchGroupAndSecondTaskAreRefused(t *testing.T) {
	a := newAgent(t, true)
	lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
	ex := New(testConfig(a), lt, zaptest.NewLogger(t))
	run(t, ex)
	waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "t1 running", func() bool { return len(a.updates()) == 2 })
	a.send(launchEvent("t2"))
	a.send(&executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{
		TaskGroup: mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{{Name: "g1", TaskID: mesos.TaskID{Value: "g1"}}}}}})
	waitFor(t, "refusals", func() bool { return len(a.updates()) == 4 })
	for _, s := range a.updates()[2:] {
		if s.GetState() != mesos.TASK_FAILED {
			t.Errorf("%s: state %s, want TASK_FAILED", s.TaskID.Value, s.GetState())
		}
		switch s.TaskID.Value {
		case "t2":
			if !strings.Contains(s.GetMessage(), "one task per executor") {
				t.Errorf("t2 message = %q", s.GetMessage())
			}
		case "g1":
			if s.GetMessage() == "" || !strings.Contains(s.GetMessage(), "task groups are not supported by dewar") {
				t.Errorf("g1 message = %q", s.GetMessage())
			}
		}
	}
}

func TestUnacknowledgedUpdatesAreResentOnResubscribe(t *testing.T) {
	a := newAgent(t, false) // the agent "crashes" before acknowledging
	cfg := testConfig(a)
	cfg.Checkpoint = true
	lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
	ex := New(cfg, lt, zaptest.NewLogger(t))
	run(t, ex)
	waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "two updates", func() bool { return len(a.updates()) == 2 })
	a.disconnect()
	waitFor(t, "resubscription", func() bool { return len(a.subscribes()) == 2 })
	sub := a.subscribes()[1].GetSubscribe()
	if n := len(sub.GetUnacknowledgedUpdates()); n != 2 {
		t.Fatalf("resubscribe carries %d unacknowledged updates, want 2", n)
	}
	if n := len(sub.GetUnacknowledgedTasks()); n != 1 || sub.GetUnacknowledgedTasks()[0].TaskID.Value != "t1" {
		t.Fatalf("resubscribe carries unacknowledged tasks %v, want [t1]", sub.GetUnacknowledgedTasks())
	}
	// Acknowledge both; after that a third subscription carries nothing.
	for _, u := range sub.GetUnacknowledgedUpdates() {
		a.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{
			TaskID: u.Status.TaskID, UUID: u.Status.UUID}})
	}
	waitFor(t, "acks processed", func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return len(ex.unacked) == 0
	})
	a.disconnect()
	waitFor(t, "third subscription", func() bool { return len(a.subscribes()) == 3 })
	sub = a.subscribes()[2].GetSubscribe()
	if len(sub.GetUnacknowledgedUpdates()) != 0 || len(sub.GetUnacknowledgedTasks()) != 0 {
		t.Fatalf("acknowledged updates were re-sent: %v", sub)
	}
}

func TestWithoutCheckpointingADisconnectKillsTheTask(t *testing.T) {
	a := newAgent(t, true)
	lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
	ex := New(testConfig(a), lt, zaptest.NewLogger(t))
	done := run(t, ex)
	waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "running", func() bool { return len(a.updates()) == 2 })
	a.disconnect()
	select {
	case <-lt.killed:
	case <-time.After(10 * time.Second):
		t.Fatal("task not killed after the agent went away")
	}
	if err := <-done; err != ErrAgentGone {
		t.Fatalf("Run = %v, want ErrAgentGone", err)
	}
}

// TestRecoveryTimeoutKillsTheTask: with checkpointing, an agent gone for
// good is waited for MESOS_RECOVERY_TIMEOUT (here 15 s), then the task is
// killed and the executor gives up: not before, and not much after.
func TestRecoveryTimeoutKillsTheTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newBubbleAgent(t, true)
		cfg := bubbleConfig()
		cfg.Checkpoint = true
		cfg.RecoveryTimeout = 15 * time.Second
		lt := &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}
		ex := a.newExecutor(t, cfg, lt)
		done := run(t, ex)
		waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
		a.send(launchEvent("t1"))
		waitFor(t, "running", func() bool { return len(a.updates()) == 2 })
		// The agent goes away for good: its port refuses connections.
		gone := time.Now()
		a.goAway()
		select {
		case err := <-done:
			if err != ErrRecoveryTimed {
				t.Fatalf("Run = %v, want ErrRecoveryTimed", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("executor did not give up after the recovery timeout")
		}
		// The last SUBSCRIBE may start just before the deadline; its wait
		// is at most SubscriptionBackoffMax.
		if took := time.Since(gone); took < cfg.RecoveryTimeout || took > cfg.RecoveryTimeout+time.Second {
			t.Errorf("gave up %v after the agent went away, want the recovery timeout, %v", took, cfg.RecoveryTimeout)
		}
		select {
		case <-lt.killed:
		default:
			t.Fatal("task was not killed")
		}
	})
}

func TestUnixSocketTransport(t *testing.T) {
	a := newAgent(t, true)
	sock := t.TempDir() + "/agent.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(a.serve)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	cfg := testConfig(a)
	cfg.AgentEndpoint = "10.255.255.1:5051" // unroutable: only the socket may be used
	cfg.DomainSocket = sock
	cfg.AgentPID = "slave(1)@10.255.255.1:5051"
	a.pathPrefix = "/slave(1)"
	ex := New(cfg, &scriptTask{killed: make(chan *mesos.KillPolicy, 1)}, zaptest.NewLogger(t))
	run(t, ex)
	waitFor(t, "subscription over the unix socket", func() bool { return len(a.subscribes()) >= 1 })
	a.send(launchEvent("t1"))
	waitFor(t, "updates over the unix socket", func() bool { return len(a.updates()) == 2 })
}
