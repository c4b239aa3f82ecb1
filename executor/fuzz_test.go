package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"go.uber.org/zap"
)

// quietTask is a Launcher whose tasks run until killed and then report
// TASK_KILLED once.
type quietTask struct {
	once   sync.Once
	report Reporter
}

type quietLauncher struct{}

func (quietLauncher) Launch(_ context.Context, _ LaunchEnv, _ mesos.TaskInfo, report Reporter) Task {
	report(Status{State: mesos.TASK_STARTING})
	return &quietTask{report: report}
}

func (q *quietTask) Kill(*mesos.KillPolicy, string) {
	q.once.Do(func() { q.report(Status{State: mesos.TASK_KILLED, Message: "killed"}) })
}
func (q *quietTask) Shutdown(time.Duration, string) { q.Kill(nil, "") }
func (q *quietTask) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// recordIO frames events as the agent writes them.
func recordIO(tb testing.TB, evs ...*executor.Event) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, ev := range evs {
		b, err := ev.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&buf, "%d\n", len(b))
		buf.Write(b)
	}
	return buf.Bytes()
}

// agentStream is the event stream of a subscription as the fake agent (and
// a real Mesos agent, which encodes the same protobufs) sends it: SUBSCRIBED
// with a CNI ExecutorInfo, LAUNCH, HEARTBEAT, ACKNOWLEDGED, MESSAGE, KILL,
// SHUTDOWN, ERROR.
func agentStream(tb testing.TB) []byte {
	name, label, v4 := "blue", "zone", "198.18.0.2"
	ipv4 := mesos.IPv4
	cni := &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum(), NetworkInfos: []mesos.NetworkInfo{{
		Name:        &name,
		Labels:      &mesos.Labels{Labels: []mesos.Label{{Key: label, Value: &name}}},
		IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: &ipv4, IPAddress: &v4}},
	}}}
	task := mesos.TaskInfo{Name: "www/prod/hello", TaskID: mesos.TaskID{Value: "www-prod-hello-0-1"},
		AgentID: mesos.AgentID{Value: "agent-1"}, Data: []byte{0x0c, 0x00}}
	uuid := newUUID()
	return recordIO(tb,
		&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
			ExecutorInfo:  mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "thermos-www-prod-hello-0-1"}, Container: cni},
			FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "aurora", Checkpoint: new(bool)},
			AgentInfo:     mesos.AgentInfo{Hostname: "agent1.example", ID: &mesos.AgentID{Value: "agent-1"}},
			ContainerID:   &mesos.ContainerID{Value: "c0ffee"},
		}},
		&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: task}},
		&executor.Event{Type: executor.Event_HEARTBEAT},
		&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: task.TaskID, UUID: uuid}},
		&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte("hello")}},
		&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: task.TaskID,
			KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Second)}}}},
		&executor.Event{Type: executor.Event_SHUTDOWN},
		&executor.Event{Type: executor.Event_ERROR, Error: &executor.Event_Error{Message: "framework removed"}},
	)
}

// FuzzEventStream feeds arbitrary bytes to the executor as the body of the
// agent's SUBSCRIBE answer, over HTTP through the executor's own sender
// (RecordIO framing, protobuf events) and event handler. Whatever the
// agent sends, the stream ends with an error and nothing panics; and the
// framing guard passes every stream mesos-go's reader reads cleanly,
// record for record.
func FuzzEventStream(f *testing.F) {
	f.Add(agentStream(f))
	f.Add(recordIO(f, &executor.Event{Type: executor.Event_KILL}, &executor.Event{Type: executor.Event_ACKNOWLEDGED}))
	f.Add(recordIO(f, &executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{}}))
	f.Add([]byte("18446744073709551615\nabc"))
	f.Add([]byte("0\n0\n3\nabc"))
	f.Add([]byte("4194305\n"))
	f.Add([]byte{})

	var body atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		// Every iteration builds a new executor and transport: keep no
		// idle connection behind.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusOK)
		// Chunked, as the agent streams: with a Content-Length mesos-go
		// would read the body as one protobuf, not as RecordIO.
		w.(http.Flusher).Flush()
		_, _ = w.Write(*body.Load())
	}))
	f.Cleanup(srv.Close)
	log := zap.NewNop()

	f.Fuzz(func(t *testing.T, data []byte) {
		checkGuardKeepsGoodStreams(t, data)

		body.Store(&data)
		cfg := Config{FrameworkID: "fw", ExecutorID: "ex", AgentEndpoint: strings.TrimPrefix(srv.URL, "http://"),
			Directory: "/nonexistent", Sandbox: "/nonexistent", ShutdownGracePeriod: 10 * time.Millisecond,
			RecoveryTimeout: time.Second, SubscriptionBackoffMax: time.Millisecond, AckTimeout: time.Second}
		ex := New(cfg, quietLauncher{}, log)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reached, err := ex.stream(ctx)
		if !reached {
			t.Fatalf("the test agent answered, but stream says it did not: %v", err)
		}
		if err == nil {
			t.Fatal("stream ended without an error")
		}
		if ctx.Err() != nil && !ex.exited() {
			t.Fatalf("stream hung on %d bytes: %v", len(data), err)
		}
	})
}

// checkGuardKeepsGoodStreams reads data with mesos-go's RecordIO reader
// alone and through recordGuard: where the bare reader reads records
// without an error (or panic), the guarded one reads the same records.
func checkGuardKeepsGoodStreams(t *testing.T, data []byte) {
	bare, bareErr := frames(io.NopCloser(bytes.NewReader(data)))
	guarded, guardedErr := frames(&recordGuard{r: io.NopCloser(bytes.NewReader(data))})
	if guardedErr != nil && strings.Contains(guardedErr.Error(), "panic") {
		t.Fatalf("guarded reader panicked: %v", guardedErr)
	}
	n := min(len(bare), len(guarded))
	for i := 0; i < n; i++ {
		if !bytes.Equal(bare[i], guarded[i]) {
			t.Fatalf("record %d differs through the guard: %q vs %q", i, bare[i], guarded[i])
		}
	}
	if bareErr == nil && (guardedErr != nil || len(guarded) != len(bare)) {
		t.Fatalf("the guard broke a stream mesos-go reads: %d records, then %v (bare: %d records)", len(guarded), guardedErr, len(bare))
	}
}

func frames(r io.ReadCloser) (out [][]byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	fr := recordio.NewReader(r)
	for {
		b, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, append([]byte(nil), b...))
	}
}
