package fakeagent_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/chans"
)

const waitFor = 20 * time.Second

// startAgent starts an agent on workDir listening on a free loopback port.
func startAgent(t *testing.T, workDir string, mod ...func(*fakeagent.Config)) *fakeagent.Agent {
	t.Helper()
	cfg := fakeagent.Config{
		WorkDir:               workDir,
		Listen:                "127.0.0.1:0",
		Hostname:              "localhost",
		HeartbeatInterval:     30 * time.Second,
		AuthenticateExecutors: true,
		Log:                   zaptest.NewLogger(t),
	}
	for _, m := range mod {
		m(&cfg)
	}
	a, err := fakeagent.New(cfg)
	if err != nil {
		t.Fatalf("start agent: %v", err)
	}
	a.Start()
	t.Cleanup(func() {
		a.Close()
		// A real agent would have aborted: every test fails on it, except
		// the ones that provoke it on purpose.
		if _, ok := fatalExpected.Load(a); !ok {
			for _, err := range a.Fatal() {
				t.Errorf("the agent hit a condition on which Mesos aborts: %v", err)
			}
		}
	})
	return a
}

// fatalExpected holds the agents whose test provokes a fatal condition.
var fatalExpected sync.Map // *fakeagent.Agent → struct{}

// updates records every update an agent reports through OnUpdate.
type updates struct {
	mu  sync.Mutex
	got []mesos.TaskStatus
	ch  chans.Wake
}

func record(a *fakeagent.Agent) *updates {
	u := &updates{ch: chans.NewWake()}
	a.OnUpdate(func(_ string, st mesos.TaskStatus) {
		u.mu.Lock()
		u.got = append(u.got, st)
		u.mu.Unlock()
		u.ch.Signal()
	})
	return u
}

func (u *updates) all() []mesos.TaskStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]mesos.TaskStatus(nil), u.got...)
}

// waitState waits for an update of task in state and returns it.
func (u *updates) waitState(t *testing.T, task string, state mesos.TaskState) mesos.TaskStatus {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		for _, st := range u.all() {
			if st.TaskID.Value == task && st.GetState() == state {
				return st
			}
		}
		select {
		case <-u.ch:
		case <-deadline:
			t.Fatalf("no %v update for task %s; got %v", state, task, u.all())
		}
	}
}

func framework(id string, checkpoint, partitionAware bool) mesos.FrameworkInfo {
	fw := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: id}, User: "root", Name: "test", Checkpoint: &checkpoint}
	if partitionAware {
		fw.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}
	}
	return fw
}

// fakeExecutor is a real executor process that only records its
// environment and sleeps; the test speaks the executor protocol on its
// behalf, with the token and ids the agent gave the process.
type fakeExecutor struct {
	fw, ex string
	env    map[string]string
	pid    int
}

// launchFake launches task under a fake executor and waits for its env.
func launchFake(t *testing.T, a *fakeagent.Agent, fw mesos.FrameworkInfo, exID string, tasks ...string) *fakeExecutor {
	t.Helper()
	shell := true
	info := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: exID},
		Command:    &mesos.CommandInfo{Value: ptr(`env > env.tmp && mv env.tmp env.txt && exec sleep 600`), Shell: &shell},
	}
	for _, id := range tasks {
		task := mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}}
		if err := a.Launch(context.Background(), fw, info, task); err != nil {
			t.Fatalf("launch %s: %v", id, err)
		}
	}
	return awaitFake(t, a, fw.GetID().GetValue(), exID)
}

// awaitFake waits for the fake executor exID to write its environment.
func awaitFake(t *testing.T, a *fakeagent.Agent, fwID, exID string) *fakeExecutor {
	t.Helper()
	fe := &fakeExecutor{fw: fwID, ex: exID}
	var sandbox string
	for _, f := range a.Snapshot().Frameworks {
		for _, e := range f.Executors {
			if f.ID == fe.fw && e.ID == exID {
				sandbox, fe.pid = e.Sandbox, e.PID
			}
		}
	}
	if fe.pid == 0 {
		t.Fatalf("executor %s has no pid in /state: %+v", exID, a.Snapshot())
	}
	t.Cleanup(func() { _ = syscall.Kill(fe.pid, syscall.SIGKILL) })
	deadline := time.Now().Add(waitFor)
	for {
		b, err := os.ReadFile(filepath.Join(sandbox, "env.txt"))
		if err == nil {
			fe.env = map[string]string{}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					fe.env[k] = v
				}
			}
			return fe
		}
		if time.Now().After(deadline) {
			t.Fatalf("executor %s never wrote its environment: %v", exID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// client speaks the executor API, over TCP or the agent's unix socket.
type client struct {
	url   string
	token string
	fw    string
	ex    string
	http  *http.Client
}

func tcpClient(a *fakeagent.Agent, fe *fakeExecutor) *client {
	return &client{url: a.URL() + "/api/v1/executor", token: fe.env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"], fw: fe.fw, ex: fe.ex, http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

func unixClient(socket string, fe *fakeExecutor) *client {
	// A connection per call: a restarted agent must not meet a kept-alive
	// connection of its predecessor ("server closed idle connection").
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &client{url: "http://agent/" + fakeagent.PIDID + "/api/v1/executor", token: fe.env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"], fw: fe.fw, ex: fe.ex, http: &http.Client{Transport: tr}}
}

func (c *client) call(typ executor.Call_Type) *executor.Call {
	return &executor.Call{Type: typ, FrameworkID: mesos.FrameworkID{Value: c.fw}, ExecutorID: mesos.ExecutorID{Value: c.ex}}
}

func status(task string, state mesos.TaskState) mesos.TaskStatus {
	src := mesos.SOURCE_EXECUTOR
	return mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: state.Enum(), Source: &src, UUID: fakeagent.NewUUID(), Message: ptr("from test")}
}

func (c *client) updateCall(st mesos.TaskStatus) *executor.Call {
	call := c.call(executor.Call_UPDATE)
	call.Update = &executor.Call_Update{Status: st}
	return call
}

// post sends call in the given encoding and returns status and body.
func (c *client) post(call *executor.Call, contentType string, header ...string) (int, string, error) {
	var body []byte
	var err error
	if contentType == "application/json" {
		body, err = call.MarshalJSON()
	} else {
		body, err = call.Marshal()
	}
	if err != nil {
		return 0, "", err
	}
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// postAccepted posts call until it is accepted (202), retrying while the
// agent answers 503 (recovering after a restart), as an executor must.
func (c *client) postAccepted(t *testing.T, call *executor.Call, contentType string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		code, body, err := c.post(call, contentType)
		if err == nil && code == http.StatusAccepted {
			return
		}
		if err != nil || code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("%v: %d %s %v", call.Type, code, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stream is an open SUBSCRIBE connection.
type stream struct {
	res    *http.Response
	events chan *executor.Event
	err    chan error
	cancel context.CancelFunc
}

func (c *client) subscribe(t *testing.T, encoding string, tasks []mesos.TaskInfo, ups []executor.Call_Update) *stream {
	t.Helper()
	call := c.call(executor.Call_SUBSCRIBE)
	call.Subscribe = &executor.Call_Subscribe{UnacknowledgedTasks: tasks, UnacknowledgedUpdates: ups}
	var body []byte
	if encoding == "application/json" {
		body, _ = call.MarshalJSON()
	} else {
		body, _ = call.Marshal()
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", encoding)
	req.Header.Set("Accept", encoding)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.http.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("subscribe: %s: %s", res.Status, b)
	}
	s := &stream{res: res, events: make(chan *executor.Event, 100), err: make(chan error, 1), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := recordio.NewReader(bufio.NewReader(res.Body))
		for {
			frame, err := r.ReadFrame()
			if err != nil {
				s.err <- err
				return
			}
			var ev executor.Event
			if encoding == "application/json" {
				err = ev.UnmarshalJSON(frame)
			} else {
				err = ev.Unmarshal(frame)
			}
			if err != nil {
				s.err <- fmt.Errorf("decode event: %w", err)
				return
			}
			s.events <- &ev
		}
	}()
	t.Cleanup(func() { s.close(); <-done })
	return s
}

func (s *stream) close() { s.cancel(); s.res.Body.Close() }

// next returns the next event that is not a HEARTBEAT.
func (s *stream) next(t *testing.T) *executor.Event {
	t.Helper()
	for {
		ev := s.nextAny(t)
		if ev.Type != executor.Event_HEARTBEAT {
			return ev
		}
	}
}

func (s *stream) nextAny(t *testing.T) *executor.Event {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.err:
		t.Fatalf("subscribe stream ended: %v", err)
	case <-time.After(waitFor):
		t.Fatal("no event on the subscribe stream")
	}
	return nil
}

func (s *stream) expect(t *testing.T, typ executor.Event_Type) *executor.Event {
	t.Helper()
	ev := s.next(t)
	if ev.Type != typ {
		t.Fatalf("got event %v, want %v: %v", ev.Type, typ, ev)
	}
	return ev
}

// waitGone waits until the process is gone (or a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still alive", pid)
}

func findExecutor(t *testing.T, a *fakeagent.Agent, fw, ex string) fakeagent.ExecutorState {
	t.Helper()
	for _, f := range a.Snapshot().Frameworks {
		for _, e := range f.Executors {
			if f.ID == fw && e.ID == ex {
				return e
			}
		}
	}
	t.Fatalf("executor %s/%s not in /state", fw, ex)
	return fakeagent.ExecutorState{}
}
