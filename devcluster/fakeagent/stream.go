package fakeagent

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/partitionaware"
)

const streamQueueSize = 1024

// subscriber is one SUBSCRIBE connection: events queue in its outbox,
// which the HTTP handler drains, so the agent never blocks on a slow
// executor. An executor hopelessly behind loses the connection; it
// re-subscribes and loses nothing, since updates are re-sent by the
// executor and tasks by the agent.
type subscriber = chans.Outbox[*executor.Event]

func newSubscriber() *subscriber { return chans.NewOutbox[*executor.Event](streamQueueSize) }

// negotiate picks the stream's encoding as Mesos does: JSON when the client
// accepts it (also when it sends no Accept at all), else protobuf. A client
// asking for application/recordio names the message type in Message-Accept.
func negotiate(r *http.Request) (contentType, messageType string, ok bool) {
	accept := strings.Join(r.Header.Values("Accept"), ",")
	if acceptsExactly(accept, mediaRecordIO) {
		msg := strings.Join(r.Header.Values("Message-Accept"), ",")
		switch {
		case accepts(msg, mediaJSON):
			return mediaRecordIO, mediaJSON, true
		case accepts(msg, mediaProtobuf):
			return mediaRecordIO, mediaProtobuf, true
		}
		return "", "", false
	}
	switch {
	case accepts(accept, mediaJSON):
		return mediaJSON, mediaJSON, true
	case accepts(accept, mediaProtobuf):
		return mediaProtobuf, mediaProtobuf, true
	}
	return "", "", false
}

// accepts reports whether an Accept header value admits media type mt; an
// empty header admits everything (RFC 9110).
func accepts(header, mt string) bool {
	if strings.TrimSpace(header) == "" {
		return true
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, rng := range strings.Split(header, ",") {
		parts := strings.Split(rng, ";")
		m := strings.ToLower(strings.TrimSpace(parts[0]))
		if qZero(parts[1:]) {
			continue
		}
		if m == mt || m == "*/*" || m == typ+"/*" {
			return true
		}
	}
	return false
}

func acceptsExactly(header, mt string) bool {
	for _, rng := range strings.Split(header, ",") {
		parts := strings.Split(rng, ";")
		if strings.ToLower(strings.TrimSpace(parts[0])) == mt && !qZero(parts[1:]) {
			return true
		}
	}
	return false
}

func qZero(params []string) bool {
	for _, p := range params {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			if q, err := strconv.ParseFloat(v, 64); err == nil && q == 0 {
				return true
			}
		}
	}
	return false
}

func encodeEvent(ev *executor.Event, messageType string) ([]byte, error) {
	if messageType == mediaJSON {
		return ev.MarshalJSON()
	}
	return ev.Marshal()
}

// subscribe handles SUBSCRIBE (a.mu held on entry; released here), following
// Mesos' Slave::subscribe for HTTP executors: SHUTDOWN for an executor
// being shut down; else re-checkpoint the updates the executor never saw
// acknowledged, drop launched tasks it never received, then SUBSCRIBED,
// the queued LAUNCHes, the ACKs, and the stream. Nothing else that was
// sent while the executor was away is delivered: it was lost.
func (a *Agent) subscribe(w http.ResponseWriter, r *http.Request, ex *executorState, sub *executor.Call_Subscribe) {
	ct, msgType, ok := negotiate(r)
	if !ok {
		a.mu.Unlock()
		http.Error(w, fmt.Sprintf("Expecting 'Accept' to allow %s or %s", mediaJSON, mediaProtobuf), http.StatusNotAcceptable)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		a.mu.Unlock()
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// Slave::subscribe: an executor that is being shut down (or whose
	// framework is) gets SHUTDOWN on a stream that is closed at once.
	if ex.ended || ex.run.Shutdown {
		a.mu.Unlock()
		ex.log.Info("shutting down the executor on SUBSCRIBE: it is terminating")
		writeShutdownAndClose(w, flusher, ct, msgType)
		return
	}
	// Slave::subscribe hands every unacknowledged update to statusUpdate
	// without the HTTP layer's validation; Executor::addPendingTaskStatus
	// then calls UUID::fromBytes(...).get(), which aborts the agent on a
	// bad UUID (3rdparty/stout/include/stout/uuid.hpp). The fake agent
	// fails loudly instead: 500, an error log, and Fatal.
	for i, u := range sub.UnacknowledgedUpdates {
		if err := validUUID(u.Status.UUID); err != nil {
			err = fmt.Errorf("executor %s of framework %s: SUBSCRIBE carries unacknowledged update %d (task %s, uuid %x) with an invalid UUID: %w",
				ex.id(), ex.fw.id(), i, u.Status.TaskID.Value, u.Status.UUID, err)
			a.failFatalLocked(err)
			a.mu.Unlock()
			http.Error(w, "a real Mesos agent aborts here: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if ex.conn != nil {
		ex.log.Info("executor re-subscribed; closing its previous connection")
		ex.conn.Close()
	}
	conn := newSubscriber()
	ex.conn = conn
	ex.subscribed = true
	ex.log.Info("executor subscribed", zap.Int("unacknowledged_tasks", len(sub.UnacknowledgedTasks)), zap.Int("unacknowledged_updates", len(sub.UnacknowledgedUpdates)))

	var acks []*executor.Event
	var failed error
	staging := false
	for _, u := range sub.UnacknowledgedUpdates {
		st := u.Status
		if st.GetSource() == mesos.SOURCE_EXECUTOR && st.GetState() == mesos.TASK_STAGING {
			// Slave::statusUpdate shuts such an executor down.
			staging = true
			break
		}
		if err := a.executorUpdateLocked(ex, st); err != nil {
			failed = err
			break
		}
		acks = append(acks, ackEvent(st))
	}
	if staging {
		ex.log.Error("received TASK_STAGING from the executor, which is not allowed; shutting it down")
		ex.conn = nil
		conn.Close()
		a.mu.Unlock()
		// The SHUTDOWN goes out on this stream before the shutdown starts:
		// the container's end closes the executor's connections.
		writeShutdownAndClose(w, flusher, ct, msgType)
		a.mu.Lock()
		a.shutdownExecutorLocked(ex)
		a.mu.Unlock()
		return
	}
	unacked := map[string]bool{}
	for _, t := range sub.UnacknowledgedTasks {
		unacked[t.TaskID.Value] = true
	}
	for _, id := range ex.order {
		t := ex.tasks[id]
		if !t.launched || t.state() != mesos.TASK_STAGING || unacked[id] {
			continue
		}
		// The agent sent LAUNCH but the executor never got it (the agent
		// died first): as Mesos (src/slave/slave.cpp, Slave::subscribe:
		// "Task launched during agent restart"), TASK_DROPPED for
		// partition-aware frameworks, TASK_LOST for the others.
		state := partitionaware.State(ex.fw.info, mesos.TASK_DROPPED)
		if err := a.agentUpdateLocked(ex, t, state, mesos.REASON_AGENT_RESTARTED, "Task launched during agent restart"); err != nil {
			failed = err
			break
		}
	}
	if failed != nil {
		ex.conn = nil
		a.mu.Unlock()
		ex.log.Error("checkpointing during SUBSCRIBE failed", zap.Error(failed))
		http.Error(w, failed.Error(), http.StatusInternalServerError)
		return
	}
	conn.Send(&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo:  ex.info,
		FrameworkInfo: ex.fw.info,
		AgentInfo:     a.info,
		ContainerID:   &mesos.ContainerID{Value: ex.run.ContainerID},
	}})
	for _, id := range ex.order {
		t := ex.tasks[id]
		if t.launched || t.terminal() {
			continue
		}
		a.launchLocked(ex, t)
	}
	for _, ack := range acks {
		conn.Send(ack)
	}
	a.mu.Unlock()

	w.Header().Set("Content-Type", ct)
	if ct == mediaRecordIO {
		w.Header().Set("Message-Content-Type", msgType)
	}
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	a.stream(w, flusher, r, ex, conn, msgType)
}

// writeShutdownAndClose answers a SUBSCRIBE with 200 and one SHUTDOWN
// event, then ends the stream (http.send(ShutdownExecutorMessage());
// http.close() in Slave::subscribe).
func writeShutdownAndClose(w http.ResponseWriter, f http.Flusher, ct, msgType string) {
	w.Header().Set("Content-Type", ct)
	if ct == mediaRecordIO {
		w.Header().Set("Message-Content-Type", msgType)
	}
	w.WriteHeader(http.StatusOK)
	if b, err := encodeEvent(&executor.Event{Type: executor.Event_SHUTDOWN}, msgType); err == nil {
		_ = recordio.NewWriter(w).WriteFrame(b)
	}
	f.Flush()
}

// stream writes events as RecordIO frames until the connection ends.
func (a *Agent) stream(w http.ResponseWriter, f http.Flusher, r *http.Request, ex *executorState, conn *subscriber, msgType string) {
	defer a.disconnected(ex, conn)
	rw := recordio.NewWriter(w)
	hb := time.NewTicker(a.cfg.HeartbeatInterval)
	defer hb.Stop()
	write := func(ev *executor.Event) bool {
		b, err := encodeEvent(ev, msgType)
		if err == nil {
			err = rw.WriteFrame(b)
		}
		if err != nil {
			ex.log.Info("subscribe stream closed", zap.Error(err))
			return false
		}
		f.Flush()
		return true
	}
	for {
		select {
		case ev := <-conn.C:
			if !write(ev) {
				return
			}
		case <-hb.C:
			if !write(&executor.Event{Type: executor.Event_HEARTBEAT}) {
				return
			}
		case <-conn.Done():
			// Flush what was queued before the close (e.g. SHUTDOWN).
			for {
				select {
				case ev := <-conn.C:
					if !write(ev) {
						return
					}
				default:
					return
				}
			}
		case <-r.Context().Done():
			return
		}
	}
}

// disconnected forgets conn. Without checkpointing the executor cannot
// survive a lost connection, so Mesos shuts it down; with checkpointing it
// waits for the executor to come back.
func (a *Agent) disconnected(ex *executorState, conn *subscriber) {
	conn.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if ex.conn != conn {
		return
	}
	ex.conn = nil
	if a.ctx.Err() != nil || ex.ended {
		return
	}
	ex.log.Info("executor disconnected")
	if !ex.fw.checkpoints() {
		ex.log.Info("shutting down the executor: its framework does not checkpoint")
		a.shutdownExecutorLocked(ex)
	}
}

func ackEvent(st mesos.TaskStatus) *executor.Event {
	return &executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}}
}
