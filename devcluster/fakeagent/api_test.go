package fakeagent_test

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// TestExecutorAPIRejects: every call Mesos refuses is refused with its
// status code, and well-formed calls get 202.
func TestExecutorAPIRejects(t *testing.T) {
	a := startAgent(t, t.TempDir())
	fw := framework("fw-1", true, true)
	fresh := tcpClient(a, launchFake(t, a, fw, "ex-fresh", "t-fresh"))
	subd := tcpClient(a, launchFake(t, a, fw, "ex-subd", "t-subd"))
	subd.subscribe(t, "application/x-protobuf", nil, nil)

	const pb = "application/x-protobuf"
	withUUID := func(n int) *executor.Call {
		st := status("t-subd", mesos.TASK_RUNNING)
		st.UUID = make([]byte, n)
		return subd.updateCall(st)
	}
	withSource := func(src mesos.TaskStatus_Source) *executor.Call {
		st := status("t-subd", mesos.TASK_RUNNING)
		st.Source = &src
		return subd.updateCall(st)
	}
	otherIDs := func(fw, ex string) *executor.Call {
		c := subd.updateCall(status("t-subd", mesos.TASK_RUNNING))
		c.FrameworkID.Value, c.ExecutorID.Value = fw, ex
		return c
	}
	mismatched := status("t-subd", mesos.TASK_RUNNING)
	mismatched.ExecutorID = &mesos.ExecutorID{Value: "ex-fresh"}
	staging := status("t-subd", mesos.TASK_STAGING)

	tests := []struct {
		name        string
		c           *client
		call        *executor.Call
		contentType string
		token       string // "" keeps the client's
		rawBody     []byte
		accept      string
		want        int
	}{
		{name: "no token", c: subd, call: subd.call(executor.Call_HEARTBEAT), contentType: pb, token: "-", want: http.StatusUnauthorized},
		{name: "wrong token", c: subd, call: subd.call(executor.Call_HEARTBEAT), contentType: pb, token: "0123", want: http.StatusUnauthorized},
		{name: "no content type", c: subd, call: subd.call(executor.Call_HEARTBEAT), contentType: "", want: http.StatusBadRequest},
		{name: "text content type", c: subd, call: subd.call(executor.Call_HEARTBEAT), contentType: "text/plain", want: http.StatusUnsupportedMediaType},
		{name: "undecodable protobuf", c: subd, rawBody: []byte{0xff, 0xff, 0xff}, contentType: pb, want: http.StatusBadRequest},
		{name: "undecodable json", c: subd, rawBody: []byte("{not json"), contentType: "application/json", want: http.StatusBadRequest},
		{name: "update before subscribe", c: fresh, call: fresh.updateCall(status("t-fresh", mesos.TASK_RUNNING)), contentType: pb, want: http.StatusForbidden},
		// Http::executor answers HEARTBEAT before looking at the executor.
		{name: "heartbeat before subscribe", c: fresh, call: fresh.call(executor.Call_HEARTBEAT), contentType: pb, want: http.StatusAccepted},
		{name: "uuid of 15 bytes", c: subd, call: withUUID(15), contentType: pb, want: http.StatusBadRequest},
		{name: "uuid of 17 bytes", c: subd, call: withUUID(17), contentType: pb, want: http.StatusBadRequest},
		{name: "source agent", c: subd, call: withSource(mesos.SOURCE_AGENT), contentType: pb, want: http.StatusBadRequest},
		{name: "source master", c: subd, call: withSource(mesos.SOURCE_MASTER), contentType: pb, want: http.StatusBadRequest},
		{name: "state staging", c: subd, call: subd.updateCall(staging), contentType: pb, want: http.StatusBadRequest},
		{name: "status executor id mismatch", c: subd, call: subd.updateCall(mismatched), contentType: pb, want: http.StatusBadRequest},
		{name: "unknown framework", c: subd, call: otherIDs("fw-nope", "ex-subd"), contentType: pb, want: http.StatusBadRequest},
		{name: "unknown executor", c: subd, call: otherIDs("fw-1", "ex-nope"), contentType: pb, want: http.StatusBadRequest},
		{name: "token of another executor", c: subd, call: otherIDs("fw-1", "ex-fresh"), contentType: pb, want: http.StatusForbidden},
		{name: "subscribe accepting nothing known", c: fresh, call: subscribeCall(fresh), contentType: pb, accept: "text/html", want: http.StatusNotAcceptable},
		{name: "update", c: subd, call: subd.updateCall(status("t-subd", mesos.TASK_RUNNING)), contentType: pb, want: http.StatusAccepted},
		{name: "update in json", c: subd, call: subd.updateCall(status("t-subd", mesos.TASK_RUNNING)), contentType: "application/json", want: http.StatusAccepted},
		{name: "heartbeat", c: subd, call: subd.call(executor.Call_HEARTBEAT), contentType: pb, want: http.StatusAccepted},
		{name: "message", c: subd, call: func() *executor.Call {
			c := subd.call(executor.Call_MESSAGE)
			c.Message = &executor.Call_Message{Data: []byte("hi")}
			return c
		}(), contentType: pb, want: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.rawBody
			if body == nil {
				var err error
				if tt.contentType == "application/json" {
					body, err = tt.call.MarshalJSON()
				} else {
					body, err = tt.call.Marshal()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, tt.c.url, bytes.NewReader(body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			switch tt.token {
			case "":
				req.Header.Set("Authorization", "Bearer "+tt.c.token)
			case "-":
			default:
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := tt.c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg := new(bytes.Buffer)
			msg.ReadFrom(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, strings.TrimSpace(msg.String()), tt.want)
			}
			if strings.Contains(msg.String(), tt.c.token) {
				t.Fatal("the response leaks the token")
			}
		})
	}
}

func subscribeCall(c *client) *executor.Call {
	call := c.call(executor.Call_SUBSCRIBE)
	call.Subscribe = &executor.Call_Subscribe{}
	return call
}

// TestSubscribeStream: SUBSCRIBED first, then LAUNCH, heartbeats, and an
// ACKNOWLEDGED per update, in JSON over TCP and protobuf over the unix
// socket.
func TestSubscribeStream(t *testing.T) {
	for _, tt := range []struct {
		name     string
		encoding string
		unix     bool
	}{
		{"json over tcp", "application/json", false},
		{"protobuf over unix socket", "application/x-protobuf", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.HeartbeatInterval = 50 * time.Millisecond })
			got := record(a)
			fe := launchFake(t, a, framework("fw-s", true, false), "ex-s", "task-s")
			c := tcpClient(a, fe)
			if tt.unix {
				c = unixClient(a.SocketPath(), fe)
			}
			s := c.subscribe(t, tt.encoding, nil, nil)
			if ct := s.res.Header.Get("Content-Type"); ct != tt.encoding {
				t.Errorf("Content-Type %q, want %q", ct, tt.encoding)
			}
			if id := s.res.Header.Get("Mesos-Stream-Id"); id != "" {
				t.Errorf("the executor API has no Mesos-Stream-Id, got %q", id)
			}
			sub := s.nextAny(t) // SUBSCRIBED must come before anything, heartbeats included
			if sub.Type != executor.Event_SUBSCRIBED {
				t.Fatalf("first event %v, want SUBSCRIBED", sub.Type)
			}
			if got := sub.Subscribed.ExecutorInfo.ExecutorID.Value; got != "ex-s" {
				t.Errorf("SUBSCRIBED executor_info id %q", got)
			}
			if got := sub.Subscribed.FrameworkInfo.GetID().GetValue(); got != "fw-s" {
				t.Errorf("SUBSCRIBED framework_info id %q", got)
			}
			if sub.Subscribed.AgentInfo.GetID().GetValue() != agentID(a) || sub.Subscribed.AgentInfo.Hostname != "localhost" {
				t.Errorf("SUBSCRIBED agent_info %v", sub.Subscribed.AgentInfo)
			}
			if sub.Subscribed.ContainerID.GetValue() == "" {
				t.Error("SUBSCRIBED has no container_id")
			}
			l := s.expect(t, executor.Event_LAUNCH)
			if l.Launch.Task.TaskID.Value != "task-s" || l.Launch.Task.AgentID.Value != agentID(a) {
				t.Errorf("LAUNCH task %v", l.Launch.Task)
			}
			for _, state := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
				st := status("task-s", state)
				if code, body, err := c.post(c.updateCall(st), tt.encoding); err != nil || code != http.StatusAccepted {
					t.Fatalf("UPDATE %v: %d %s %v", state, code, body, err)
				}
				ack := s.expect(t, executor.Event_ACKNOWLEDGED)
				if ack.Acknowledged.TaskID.Value != "task-s" || !bytes.Equal(ack.Acknowledged.UUID, st.UUID) {
					t.Fatalf("ACKNOWLEDGED %v for update %x", ack.Acknowledged, st.UUID)
				}
				got.waitState(t, "task-s", state)
			}
			for {
				if ev := s.nextAny(t); ev.Type == executor.Event_HEARTBEAT {
					break
				}
			}
		})
	}
}

// TestAckAfterCheckpoint: when ACKNOWLEDGED arrives, the update is already
// in the task's fsync'd update stream on disk, the one Mesos keeps
// (task.updates), and a new agent on the same work dir knows it. A torn
// record at the stream's end (a crash mid-append) is cut off on recovery,
// so the next update is checkpointed whole after the ones before it.
func TestAckAfterCheckpoint(t *testing.T) {
	const taskID = "task-c[0]*" // an id with glob metacharacters is a plain name on disk
	dir := t.TempDir()
	a := startAgent(t, dir)
	fe := launchFake(t, a, framework("fw-c", true, false), "ex-c", taskID)
	c := tcpClient(a, fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	launch := s.expect(t, executor.Event_LAUNCH)
	st := status(taskID, mesos.TASK_RUNNING)
	if code, body, err := c.post(c.updateCall(st), "application/x-protobuf"); err != nil || code != http.StatusAccepted {
		t.Fatalf("UPDATE: %d %s %v", code, body, err)
	}
	s.expect(t, executor.Event_ACKNOWLEDGED)
	// Read the checkpoint at once, before anything else can happen.
	meta, ok := mesosmeta.MetaRunDir(fe.env["MESOS_DIRECTORY"])
	if !ok {
		t.Fatalf("run dir %s is not laid out as Mesos'", fe.env["MESOS_DIRECTORY"])
	}
	stream := mesosmeta.UpdatesPath(meta, taskID)
	recs, err := mesosmeta.ReadStream(stream)
	if err != nil || len(recs) != 1 || recs[0].Ack || !bytes.Equal(recs[0].UUID, st.UUID) {
		t.Fatalf("checkpoint after ACKNOWLEDGED: %v (%v), want one UPDATE with uuid %x", recs, err, st.UUID)
	}
	if own, _ := filepath.Glob(filepath.Join(dir, "meta", "frameworks", "*", "executors", "*", "tasks", "*", "updates")); len(own) > 0 {
		t.Errorf("a second update stream beside Mesos' task.updates: %v", own)
	}
	a.Close()

	torn := binary.NativeEndian.AppendUint32(nil, 100)
	f, err := os.OpenFile(stream, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(torn, 8, 0))
	f.Close()

	b := startAgent(t, dir)
	task := findTask(t, b, "fw-c", "ex-c", taskID)
	if task.State != "TASK_RUNNING" {
		t.Fatalf("recovered task state %s, want TASK_RUNNING", task.State)
	}
	fin := status(taskID, mesos.TASK_FINISHED)
	s2 := tcpClient(b, fe).subscribe(t, "application/x-protobuf", []mesos.TaskInfo{launch.Launch.Task}, []executor.Call_Update{{Status: fin}})
	s2.expect(t, executor.Event_SUBSCRIBED)
	s2.expect(t, executor.Event_ACKNOWLEDGED)
	recs, err = mesosmeta.ReadStream(stream)
	if err != nil || len(recs) != 2 || !bytes.Equal(recs[1].UUID, fin.UUID) {
		t.Fatalf("stream after a torn tail and one more update: %d records (%v), want RUNNING then FINISHED", len(recs), err)
	}
}

func findTask(t *testing.T, a *fakeagent.Agent, fw, ex, task string) fakeagent.TaskState {
	t.Helper()
	for _, f := range a.Snapshot().Frameworks {
		for _, e := range f.Executors {
			for _, tk := range e.Tasks {
				if f.ID == fw && e.ID == ex && tk.ID == task {
					return tk
				}
			}
		}
	}
	t.Fatalf("task %s/%s/%s not in /state", fw, ex, task)
	return fakeagent.TaskState{}
}

// TestExecutorEnvironment: the executor runs in its own session, in its
// sandbox, with the MESOS_* environment a Mesos agent sets.
func TestExecutorEnvironment(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, dir, func(c *fakeagent.Config) {
		c.RecoveryTimeout = 15 * time.Minute
		c.ExecutorReregistrationTimeout = 2 * time.Second
	})
	fe := launchFake(t, a, framework("fw-e", true, false), "ex-e", "task-e")
	sandbox := fe.env["MESOS_SANDBOX"]
	if !regexp.MustCompile("^" + regexp.QuoteMeta(filepath.Join(dir, "slaves", agentID(a), "frameworks", "fw-e", "executors", "ex-e", "runs")) + "/[0-9a-f-]{36}$").MatchString(sandbox) {
		t.Errorf("MESOS_SANDBOX %q is not <work>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>", sandbox)
	}
	want := map[string]string{
		"MESOS_FRAMEWORK_ID":                   "fw-e",
		"MESOS_EXECUTOR_ID":                    "ex-e",
		"MESOS_AGENT_ENDPOINT":                 a.Addr(),
		"MESOS_DIRECTORY":                      sandbox,
		"MESOS_CHECKPOINT":                     "1",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
		"MESOS_RECOVERY_TIMEOUT":               "15mins",
		"MESOS_SUBSCRIPTION_BACKOFF_MAX":       "2secs",
		"MESOS_SLAVE_ID":                       agentID(a),
		"MESOS_SLAVE_PID":                      "slave(1)@" + a.Addr(),
	}
	for k, v := range want {
		if fe.env[k] != v {
			t.Errorf("%s=%q, want %q", k, fe.env[k], v)
		}
	}
	if tok := fe.env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"]; !regexp.MustCompile("^[0-9a-f]{64}$").MatchString(tok) {
		t.Errorf("MESOS_EXECUTOR_AUTHENTICATION_TOKEN %q is not a random token", tok)
	}
	if got := fe.env["MESOS_DOMAIN_SOCKET"]; got != a.SocketPath() || got == "" {
		t.Errorf("MESOS_DOMAIN_SOCKET=%q, want the agent's socket %q for every executor", got, a.SocketPath())
	}
	for _, f := range []string{"stdout", "stderr"} {
		if _, err := os.Stat(filepath.Join(sandbox, f)); err != nil {
			t.Errorf("executor %s not in the sandbox: %v", f, err)
		}
	}
	if sid, err := sessionOf(fe.pid); err != nil || sid != fe.pid {
		t.Errorf("executor session %d (%v), want its own (%d)", sid, err, fe.pid)
	}
}

func agentID(a *fakeagent.Agent) string { info := a.Info(); return info.GetID().GetValue() }
