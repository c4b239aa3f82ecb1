package fakeagent_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	dexec "github.com/dewarhq/dewar/executor"
)

// TestStatusUUIDAsStout: an UPDATE's uuid is checked as stout's
// UUID::fromBytes does: 16 bytes whose version nibble (high 4 bits of byte
// 6) is 1 to 5, else 400 "Not a valid UUID". The old executor's 16 random
// bytes failed this about 11 times in 16. The executor's own check agrees.
func TestStatusUUIDAsStout(t *testing.T) {
	a := startAgent(t, t.TempDir())
	c := tcpClient(a, launchFake(t, a, framework("fw-u", true, true), "ex-u", "t-u"))
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)
	withVersion := func(v byte) []byte {
		b := fakeagent.NewUUID()
		b[6] = b[6]&0x0f | v<<4
		return b
	}
	for _, tt := range []struct {
		name string
		uuid []byte
		ok   bool
	}{
		{"version 0", withVersion(0), false},
		{"version 1", withVersion(1), true},
		{"version 3", withVersion(3), true},
		{"version 4", withVersion(4), true},
		{"version 5", withVersion(5), true},
		{"version 6", withVersion(6), false},
		{"version 15", withVersion(15), false},
		{"all zero", make([]byte, 16), false},
		{"15 bytes", fakeagent.NewUUID()[:15], false},
		{"17 bytes", append(fakeagent.NewUUID(), 0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := dexec.ValidStatusUUID(tt.uuid); got != tt.ok {
				t.Errorf("executor.ValidStatusUUID = %v, the agent's rule says %v", got, tt.ok)
			}
			st := status("t-u", mesos.TASK_RUNNING)
			st.UUID = tt.uuid
			code, body, err := c.post(c.updateCall(st), "application/x-protobuf")
			if err != nil {
				t.Fatal(err)
			}
			if tt.ok {
				if code != http.StatusAccepted {
					t.Fatalf("%d %s, want 202", code, body)
				}
				s.expect(t, executor.Event_ACKNOWLEDGED)
				return
			}
			if code != http.StatusBadRequest || strings.TrimSpace(body) != "Failed to validate Executor::Call: Not a valid UUID" {
				t.Fatalf("%d %q, want 400 'Failed to validate Executor::Call: Not a valid UUID'", code, body)
			}
		})
	}
	if f := a.Fatal(); len(f) != 0 {
		t.Errorf("fatal conditions after refused UPDATEs: %v", f)
	}
}

// TestBadUUIDInSubscribeIsFatal: an unacknowledged update in SUBSCRIBE is
// not validated by Mesos' HTTP layer; addPendingTaskStatus calls
// UUID::fromBytes(...).get() and the real agent aborts. The fake agent
// answers 500, checkpoints nothing, and reports the condition through
// Fatal, FatalChan and /state.
func TestBadUUIDInSubscribeIsFatal(t *testing.T) {
	a := startAgent(t, t.TempDir())
	fatalExpected.Store(a, struct{}{})
	got := record(a)
	c := tcpClient(a, launchFake(t, a, framework("fw-bad", true, true), "ex-bad", "t-bad"))
	good := status("t-bad", mesos.TASK_STARTING)
	bad := status("t-bad", mesos.TASK_RUNNING)
	bad.UUID[6] &= 0x0f // version 0: what 16 random bytes often are
	call := c.call(executor.Call_SUBSCRIBE)
	call.Subscribe = &executor.Call_Subscribe{UnacknowledgedUpdates: []executor.Call_Update{{Status: good}, {Status: bad}}}
	code, body, err := c.post(call, "application/x-protobuf")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusInternalServerError || !strings.Contains(body, "Not a valid UUID") {
		t.Fatalf("SUBSCRIBE with a bad unacknowledged update: %d %q, want 500 naming the invalid UUID", code, body)
	}
	if f := a.Fatal(); len(f) != 1 || !strings.Contains(f[0].Error(), "ex-bad") {
		t.Fatalf("Fatal() = %v, want the bad SUBSCRIBE", f)
	}
	select {
	case <-a.FatalChan():
	default:
		t.Error("FatalChan did not deliver the condition")
	}
	if st := a.Snapshot(); len(st.Fatal) != 1 {
		t.Errorf("/state fatal = %v", st.Fatal)
	}
	if u := got.all(); len(u) != 0 {
		t.Errorf("updates checkpointed from a SUBSCRIBE the agent would have died on: %v", u)
	}
}

// TestDomainSocketPaths: the executor socket admits only
// /slave(1)/api/v1/executor and /slave(1)/api/v1 (403 for anything else,
// the old executor's /api/v1/executor included); TCP takes both paths.
func TestDomainSocketPaths(t *testing.T) {
	a := startAgent(t, t.TempDir())
	fe := launchFake(t, a, framework("fw-p", true, true), "ex-p", "t-p")
	if fe.env["MESOS_SLAVE_PID"] != "slave(1)@"+a.Addr() || fe.env["MESOS_DOMAIN_SOCKET"] != a.SocketPath() {
		t.Fatalf("MESOS_SLAVE_PID=%q MESOS_DOMAIN_SOCKET=%q", fe.env["MESOS_SLAVE_PID"], fe.env["MESOS_DOMAIN_SOCKET"])
	}
	hb := func(c *client) *executor.Call { return c.call(executor.Call_HEARTBEAT) }
	for _, tt := range []struct {
		name, path string
		unix       bool
		want       int
	}{
		{"socket, prefixed executor path", "/slave(1)/api/v1/executor", true, http.StatusAccepted},
		{"socket, unprefixed executor path", "/api/v1/executor", true, http.StatusForbidden},
		{"socket, other pid", "/slave(2)/api/v1/executor", true, http.StatusForbidden},
		{"socket, state", "/state", true, http.StatusForbidden},
		{"socket, operator api", "/slave(1)/api/v1", true, http.StatusNotImplemented},
		{"tcp, unprefixed executor path", "/api/v1/executor", false, http.StatusAccepted},
		{"tcp, prefixed executor path", "/slave(1)/api/v1/executor", false, http.StatusAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tcpClient(a, fe)
			c.url = a.URL() + tt.path
			if tt.unix {
				c = unixClient(a.SocketPath(), fe)
				c.url = "http://agent" + tt.path
			}
			code, body, err := c.post(hb(c), "application/x-protobuf")
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Fatalf("POST %s: %d %s, want %d", c.url, code, body, tt.want)
			}
		})
	}

	t.Run("socket off", func(t *testing.T) {
		b := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.NoDomainSocket = true })
		fe := launchFake(t, b, framework("fw-p", true, true), "ex-p", "t-p")
		if b.SocketPath() != "" {
			t.Errorf("SocketPath %q with the socket off", b.SocketPath())
		}
		if v, ok := fe.env["MESOS_DOMAIN_SOCKET"]; ok {
			t.Errorf("MESOS_DOMAIN_SOCKET=%q with the socket off", v)
		}
	})
}

// TestRequestFormAsMesos: Content-Type is compared as a whole string, and
// a status without its required state is refused, as Http::executor and
// validateExecutorCall (IsInitialized) do.
func TestRequestFormAsMesos(t *testing.T) {
	a := startAgent(t, t.TempDir())
	c := tcpClient(a, launchFake(t, a, framework("fw-f", true, true), "ex-f", "t-f"))
	s := c.subscribe(t, "application/json", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	noState := status("t-f", mesos.TASK_RUNNING)
	noState.State = nil
	for _, tt := range []struct {
		name, contentType string
		call              *executor.Call
		want              int
		body              string
	}{
		{"json with charset", "application/json; charset=utf-8", c.updateCall(status("t-f", mesos.TASK_RUNNING)), http.StatusUnsupportedMediaType, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"protobuf with parameter", "application/x-protobuf; proto=mesos.v1.executor.Call", c.updateCall(status("t-f", mesos.TASK_RUNNING)), http.StatusUnsupportedMediaType, ""},
		{"upper case", "Application/JSON", c.updateCall(status("t-f", mesos.TASK_RUNNING)), http.StatusUnsupportedMediaType, ""},
		{"no state", "application/json", c.updateCall(noState), http.StatusBadRequest, "Failed to validate Executor::Call: Not initialized: update.status.state"},
		{"no update", "application/x-protobuf", c.call(executor.Call_UPDATE), http.StatusBadRequest, "Failed to validate Executor::Call: Expecting 'update' to be present"},
		{"no type", "application/x-protobuf", c.call(executor.Call_UNKNOWN), http.StatusBadRequest, "Failed to validate Executor::Call: Expecting 'type' to be present"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, err := c.post(tt.call, strings.Split(tt.contentType, ";")[0], "Content-Type", tt.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.want || (tt.body != "" && strings.TrimSpace(body) != tt.body) {
				t.Fatalf("%d %q, want %d %q", code, body, tt.want, tt.body)
			}
		})
	}
}

// TestRecoveryPhase: after a restart every call gets 503 "Agent has not
// finished recovery" while the containerizer recovers; then SUBSCRIBE is
// taken but UPDATE still gets 503 until the re-registration window ends
// (Slave::_recover, reregisterExecutorTimeout). An executor that did not
// re-subscribe in the window is destroyed and its tasks end TASK_GONE
// (partition-aware) or TASK_LOST, reason EXECUTOR_REREGISTRATION_TIMEOUT.
func TestRecoveryPhase(t *testing.T) {
	const delay, window = 500 * time.Millisecond, time.Second
	slow := func(c *fakeagent.Config) {
		c.RecoveryDelay = delay
		c.ExecutorReregistrationTimeout = window
	}
	dir := t.TempDir()
	a := startAgent(t, dir, func(c *fakeagent.Config) { c.ExecutorReregistrationTimeout = window })
	back := tcpClient(a, launchFake(t, a, framework("fw-rp", true, true), "ex-back", "t-back"))
	goneFE := launchFake(t, a, framework("fw-rp", true, true), "ex-gone", "t-gone")
	lostFE := launchFake(t, a, framework("fw-old", true, false), "ex-lost", "t-lost")
	if v := goneFE.env["MESOS_SUBSCRIPTION_BACKOFF_MAX"]; v != "1secs" {
		t.Errorf("MESOS_SUBSCRIPTION_BACKOFF_MAX=%q, want the re-registration timeout, 1secs", v)
	}
	for _, c := range []*client{back, tcpClient(a, goneFE), tcpClient(a, lostFE)} {
		s := c.subscribe(t, "application/x-protobuf", nil, nil)
		s.expect(t, executor.Event_SUBSCRIBED)
		launch := s.expect(t, executor.Event_LAUNCH)
		c.postAccepted(t, c.updateCall(status(launch.Launch.Task.TaskID.Value, mesos.TASK_RUNNING)), "application/x-protobuf")
		s.expect(t, executor.Event_ACKNOWLEDGED)
	}
	a.Close()

	start := time.Now()
	b := startAgent(t, dir, slow)
	got := record(b)
	expect := func(call *executor.Call, want int, wantBody string) {
		t.Helper()
		code, body, err := back.post(call, "application/x-protobuf", "Accept", "application/x-protobuf")
		if err != nil {
			t.Fatal(err)
		}
		if code != want || (wantBody != "" && strings.TrimSpace(body) != wantBody) {
			t.Fatalf("%v %v after restart: %d %q, want %d %q", call.Type, time.Since(start), code, body, want, wantBody)
		}
	}
	const recovering = "Agent has not finished recovery"
	expect(back.call(executor.Call_HEARTBEAT), http.StatusServiceUnavailable, recovering)
	expect(subscribeCall(back), http.StatusServiceUnavailable, recovering)
	if findExecutor(t, b, "fw-rp", "ex-back").State != "registering" {
		t.Errorf("recovered executor in /state: %+v, want registering", findExecutor(t, b, "fw-rp", "ex-back"))
	}
	// The containerizer has recovered: SUBSCRIBE is taken.
	var s *stream
	for deadline := time.Now().Add(waitFor); ; time.Sleep(20 * time.Millisecond) {
		code, _, err := back.post(back.call(executor.Call_HEARTBEAT), "application/x-protobuf")
		if err == nil && code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent never left its recovery phase")
		}
	}
	if time.Since(start) < delay {
		t.Fatalf("recovery phase ended after %v, want %v", time.Since(start), delay)
	}
	s = back.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	// Subscribed, but the agent is still RECOVERING: UPDATE gets 503.
	finished := status("t-back", mesos.TASK_FINISHED)
	expect(back.updateCall(finished), http.StatusServiceUnavailable, recovering)
	back.postAccepted(t, back.updateCall(finished), "application/x-protobuf")
	if time.Since(start) < delay+window {
		t.Errorf("UPDATE accepted %v after the restart, before the re-registration window (%v) ended", time.Since(start), delay+window)
	}
	s.expect(t, executor.Event_ACKNOWLEDGED)

	for _, tt := range []struct {
		task string
		fe   *fakeExecutor
		want mesos.TaskState
	}{{"t-gone", goneFE, mesos.TASK_GONE}, {"t-lost", lostFE, mesos.TASK_LOST}} {
		st := got.waitState(t, tt.task, tt.want)
		if st.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT || st.GetMessage() != "Executor did not reregister within 1secs" || st.GetSource() != mesos.SOURCE_AGENT {
			t.Errorf("%s: %v", tt.task, st)
		}
		waitGone(t, tt.fe.pid)
	}
	if task := findTask(t, b, "fw-rp", "ex-back", "t-back"); task.State != "TASK_FINISHED" {
		t.Errorf("the re-subscribed executor's task: %s", task.State)
	}
}

// TestUnsubscribedExecutorCalls: an executor that has not subscribed
// (REGISTERING) gets 403 "Executor is not subscribed" for UPDATE.
func TestUnsubscribedExecutorCalls(t *testing.T) {
	a := startAgent(t, t.TempDir())
	c := tcpClient(a, launchFake(t, a, framework("fw-r", true, true), "ex-r", "t-r"))
	code, body, err := c.post(c.updateCall(status("t-r", mesos.TASK_RUNNING)), "application/x-protobuf")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusForbidden || strings.TrimSpace(body) != "Executor is not subscribed" {
		t.Fatalf("UPDATE before SUBSCRIBE: %d %q", code, body)
	}
}

// TestEventsNotQueued: KILL, ACKNOWLEDGED and LAUNCH sent while a
// subscribed executor is disconnected are lost (Executor::send), not
// delivered on the next SUBSCRIBE; the lost LAUNCH leaves the task
// STAGING, and it is dropped when the executor re-subscribes without it.
func TestEventsNotQueued(t *testing.T) {
	a := startAgent(t, t.TempDir())
	got := record(a)
	fw := framework("fw-q", true, true)
	fe := launchFake(t, a, fw, "ex-q", "t-running")
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	launch := s.expect(t, executor.Event_LAUNCH)
	s.close()
	waitState(t, a, "fw-q", "ex-q", "disconnected")

	running := status("t-running", mesos.TASK_RUNNING)
	c.postAccepted(t, c.updateCall(running), "application/x-protobuf") // its ACK is lost
	got.waitState(t, "t-running", mesos.TASK_RUNNING)
	if err := a.Kill(context.Background(), "fw-q", "t-running", nil); err != nil { // lost
		t.Fatal(err)
	}
	info := &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "ex-q"}}
	if err := a.Launch(context.Background(), fw, info, mesos.TaskInfo{Name: "late", TaskID: mesos.TaskID{Value: "t-late"}}); err != nil { // lost
		t.Fatal(err)
	}

	s2 := c.subscribe(t, "application/x-protobuf", []mesos.TaskInfo{launch.Launch.Task}, nil)
	s2.expect(t, executor.Event_SUBSCRIBED)
	st := got.waitState(t, "t-late", mesos.TASK_DROPPED)
	if st.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("drop of the lost LAUNCH: %v", st)
	}
	// The next event is the ACK of a fresh update: no queued KILL, LAUNCH
	// or ACKNOWLEDGED came first.
	fresh := status("t-running", mesos.TASK_RUNNING)
	c.postAccepted(t, c.updateCall(fresh), "application/x-protobuf")
	ev := s2.next(t)
	if ev.Type != executor.Event_ACKNOWLEDGED || string(ev.Acknowledged.UUID) != string(fresh.UUID) {
		t.Fatalf("first event after re-subscribing: %v, want only the ACK of the new update", ev)
	}
}

func waitState(t *testing.T, a *fakeagent.Agent, fw, ex, state string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for findExecutor(t, a, fw, ex).State != state {
		if time.Now().After(deadline) {
			t.Fatalf("executor %s/%s never %s: %+v", fw, ex, state, findExecutor(t, a, fw, ex))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownDestroysContainerAtGracePeriod: an executor that ignores
// SHUTDOWN has its whole container destroyed exactly one grace period
// later (Slave::shutdownExecutorTimeout), the processes it started in
// sessions of their own included; and SUBSCRIBE from it then gets
// SHUTDOWN on a stream that ends at once.
func TestShutdownDestroysContainerAtGracePeriod(t *testing.T) {
	const grace = 700 * time.Millisecond
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.ShutdownGracePeriod = grace })
	got := record(a)
	shell := true
	info := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "ex-tree"},
		Command: &mesos.CommandInfo{Shell: &shell, Value: ptr(
			`trap '' TERM; setsid sleep 600 & echo $! > escaped.pid; env > env.tmp && mv env.tmp env.txt; while :; do sleep 1; done`)},
	}
	if err := a.Launch(context.Background(), framework("fw-t", true, false), info, mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t-tree"}}); err != nil {
		t.Fatal(err)
	}
	fe := awaitFake(t, a, "fw-t", "ex-tree")
	b, err := os.ReadFile(filepath.Join(fe.env["MESOS_SANDBOX"], "escaped.pid"))
	if err != nil {
		t.Fatal(err)
	}
	escaped, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() { _ = syscall.Kill(escaped, syscall.SIGKILL) })
	if sid, _ := sessionOf(escaped); sid == fe.pid {
		t.Fatalf("the escaped process is still in the executor's session")
	}
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)

	start := time.Now()
	if err := a.ShutdownFramework(context.Background(), "fw-t"); err != nil {
		t.Fatal(err)
	}
	s.expect(t, executor.Event_SHUTDOWN)
	// Re-subscribing while terminating: SHUTDOWN again, then the end.
	call := subscribeCall(c)
	code, body, err := c.post(call, "application/x-protobuf", "Accept", "application/x-protobuf")
	if err != nil || code != http.StatusOK || body == "" {
		t.Fatalf("SUBSCRIBE while terminating: %d %q %v, want 200 with a SHUTDOWN event", code, body, err)
	}
	waitGone(t, fe.pid)
	took := time.Since(start)
	waitGone(t, escaped)
	// Not before the grace period; and well before Mesos' default 5 s,
	// which an agent ignoring the configured period would take. Between
	// the two the margin is for a loaded machine's scheduling.
	if took < grace || took > grace+3*time.Second {
		t.Errorf("container destroyed %v after SHUTDOWN, want at the grace period %v", took, grace)
	}
	got.waitState(t, "t-tree", mesos.TASK_KILLED)
}

// TestExecutorEnvironmentBuilt: the executor's environment is built, not
// inherited from the agent's (executorEnvironment); PATH defaults to
// stout's host_default_path unless the ExecutorInfo sets it; the token is
// given, and required, only with executor authentication on.
func TestExecutorEnvironmentBuilt(t *testing.T) {
	t.Setenv("DEWAR_AGENT_ONLY", "leak")
	t.Setenv("HOME", "/nonexistent-agent-home")
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.AuthenticateExecutors = false })
	fe := launchFake(t, a, framework("fw-env", true, true), "ex-env", "t-env")
	for _, k := range []string{"DEWAR_AGENT_ONLY", "HOME", "MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "MESOS_CONTAINER_IP"} {
		if v, ok := fe.env[k]; ok {
			t.Errorf("%s=%q in the executor's environment", k, v)
		}
	}
	if fe.env["PATH"] != fakeagent.DefaultPATH {
		t.Errorf("PATH=%q, want %q", fe.env["PATH"], fakeagent.DefaultPATH)
	}
	if fe.env["LIBPROCESS_PORT"] != "0" || fe.env["MESOS_SANDBOX"] == "" {
		t.Errorf("LIBPROCESS_PORT=%q MESOS_SANDBOX=%q", fe.env["LIBPROCESS_PORT"], fe.env["MESOS_SANDBOX"])
	}
	// Without authentication, calls carry no token.
	c := tcpClient(a, fe)
	c.token = ""
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)

	shell := true
	info := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "ex-path"},
		Command: &mesos.CommandInfo{Shell: &shell, Value: ptr(`env > env.tmp && mv env.tmp env.txt && exec sleep 600`),
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "PATH", Value: ptr("/usr/bin:/bin:/opt/x")}}}},
	}
	if err := a.Launch(context.Background(), framework("fw-env", true, true), info, mesos.TaskInfo{Name: "p", TaskID: mesos.TaskID{Value: "t-path"}}); err != nil {
		t.Fatal(err)
	}
	if got := awaitFake(t, a, "fw-env", "ex-path").env["PATH"]; got != "/usr/bin:/bin:/opt/x" {
		t.Errorf("PATH=%q, want the ExecutorInfo's", got)
	}
}

// TestSandboxLayout: sandboxes are where Mesos puts them
// (src/slave/paths.cpp): <work>/slaves/<agent>/frameworks/<fw>/executors/
// <ex>/runs/<container>, 0750 and owned by the agent's user, with
// runs/latest pointing at the newest run.
func TestSandboxLayout(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir)
	fe := launchFake(t, a, framework("fw-sb", true, true), "ex-sb", "t-sb")
	sandbox := fe.env["MESOS_SANDBOX"]
	runs := filepath.Join(dir, "slaves", agentID(a), "frameworks", "fw-sb", "executors", "ex-sb", "runs")
	if filepath.Dir(sandbox) != runs {
		t.Fatalf("sandbox %s is not in %s", sandbox, runs)
	}
	fi, err := os.Stat(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o750 || int(st.Uid) != os.Getuid() {
		t.Errorf("sandbox mode %v owner %d, want 0750 owned by %d", fi.Mode().Perm(), st.Uid, os.Getuid())
	}
	if l, err := os.Readlink(filepath.Join(runs, "latest")); err != nil || l != sandbox {
		t.Errorf("runs/latest -> %q (%v), want %s", l, err, sandbox)
	}
}

// TestStagingInSubscribeShutsDown: TASK_STAGING from the executor among
// SUBSCRIBE's unacknowledged updates makes Slave::statusUpdate shut the
// executor down: SHUTDOWN, and the stream ends.
func TestStagingInSubscribeShutsDown(t *testing.T) {
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.ShutdownGracePeriod = 200 * time.Millisecond })
	fe := launchFake(t, a, framework("fw-st", true, true), "ex-st", "t-st")
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, []executor.Call_Update{{Status: status("t-st", mesos.TASK_STAGING)}})
	s.expect(t, executor.Event_SHUTDOWN)
	select {
	case <-s.err:
	case ev := <-s.events:
		t.Fatalf("event %v after SHUTDOWN, want the end of the stream", ev.Type)
	case <-time.After(waitFor):
		t.Fatal("the stream did not end after SHUTDOWN")
	}
	waitGone(t, fe.pid)
}
