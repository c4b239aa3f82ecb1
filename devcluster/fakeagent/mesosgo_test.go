package fakeagent_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
)

// TestMesosGoClient: mesos-go's own executor client (httpcli + httpexec,
// protobuf, over the unix socket, as dewar-executor uses it) subscribes,
// receives SUBSCRIBED and LAUNCH, and gets its update acknowledged.
func TestMesosGoClient(t *testing.T) {
	a := startAgent(t, t.TempDir())
	fe := launchFake(t, a, framework("fw-m", true, false), "ex-m", "task-m")
	sock := a.SocketPath()
	cli := httpcli.New(
		httpcli.Endpoint("http://localhost/"+fakeagent.PIDID+"/api/v1/executor"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.DefaultHeader("Authorization", "Bearer "+fe.env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"]),
		httpcli.Do(httpcli.With(httpcli.Transport(func(tr *http.Transport) {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}
			//lint:ignore SA1019 mesos-go sets the deprecated Dial; DialContext must win
			tr.Dial = nil
			tr.Proxy = nil
		}))),
	)
	sender := calls.SenderWith(httpexec.NewSender(cli.Send), calls.Framework("fw-m"), calls.Executor("ex-m"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := sender.Send(ctx, calls.NonStreaming(calls.Subscribe(nil, nil)))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer resp.Close()
	events := make(chan executor.Event, 16)
	go func() {
		defer close(events)
		for {
			var ev executor.Event
			if err := resp.Decode(&ev); err != nil {
				return
			}
			events <- ev
		}
	}()
	next := func() executor.Event {
		t.Helper()
		ev, ok := <-events
		if !ok {
			t.Fatal("subscribe stream ended")
		}
		return ev
	}
	if ev := next(); ev.Type != executor.Event_SUBSCRIBED {
		t.Fatalf("first event %v", ev.Type)
	}
	if ev := next(); ev.Type != executor.Event_LAUNCH || ev.Launch.Task.TaskID.Value != "task-m" {
		t.Fatalf("second event %v", ev)
	}
	st := status("task-m", mesos.TASK_RUNNING)
	r, err := sender.Send(ctx, calls.NonStreaming(calls.Update(st)))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if r != nil {
		r.Close()
	}
	if ev := next(); ev.Type != executor.Event_ACKNOWLEDGED || string(ev.Acknowledged.UUID) != string(st.UUID) {
		t.Fatalf("after UPDATE: %v", ev)
	}
	cancel()
}
