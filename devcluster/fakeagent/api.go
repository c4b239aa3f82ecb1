package fakeagent

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"
)

const (
	mediaProtobuf = "application/x-protobuf"
	mediaJSON     = "application/json"
	mediaRecordIO = "application/recordio"
	maxCallBytes  = 16 << 20
)

// serveSocket is the executor domain socket's server: as in Mesos
// (src/slave/slave.cpp, Slave::initialize, the executorSocket server) it
// admits only /<pid id>/api/v1/executor and /<pid id>/api/v1, e.g.
// /slave(1)/api/v1/executor, and answers 403 to anything else.
func (a *Agent) serveSocket(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/" + PIDID + "/api/v1/executor":
		a.serveExecutorAPI(w, r)
	case "/" + PIDID + "/api/v1":
		http.Error(w, "the operator API (/api/v1) is not implemented by dewar-agent", http.StatusNotImplemented)
	default:
		a.log.Info("blocking request over executor socket", zap.String("path", r.URL.Path))
		w.WriteHeader(http.StatusForbidden)
	}
}

// serveExecutorAPI is the executor API, checked in the order of the Mesos
// agent (src/slave/http.cpp, Http::executor): authentication (401), the
// recovery phase (503), method (405), Content-Type compared as a whole
// string (400/415), body (400), call validation (400), HEARTBEAT (202
// before any lookup), recovery again for calls other than SUBSCRIBE (503),
// framework and executor lookup (400), token claims (403), subscription
// (403).
func (a *Agent) serveExecutorAPI(w http.ResponseWriter, r *http.Request) {
	var authed *executorState
	if a.cfg.AuthenticateExecutors {
		authed = a.authenticate(r)
		if authed == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mesos-agent-executor"`)
			http.Error(w, "Unauthorized: the executor API needs 'Authorization: Bearer <MESOS_EXECUTOR_AUTHENTICATION_TOKEN>'", http.StatusUnauthorized)
			return
		}
	}
	a.mu.Lock()
	ph := a.phase
	a.mu.Unlock()
	if ph == phaseRecovering {
		http.Error(w, "Agent has not finished recovery", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Expecting one of { 'POST' }, but received '"+r.Method+"'", http.StatusMethodNotAllowed)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		http.Error(w, "Expecting 'Content-Type' to be present", http.StatusBadRequest)
		return
	}
	// Compared as a whole: "application/json; charset=utf-8" is refused.
	if ct != mediaProtobuf && ct != mediaJSON {
		http.Error(w, fmt.Sprintf("Expecting 'Content-Type' of %s or %s", mediaJSON, mediaProtobuf), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes))
	if err != nil {
		http.Error(w, "Failed to read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var call executor.Call
	if ct == mediaProtobuf {
		if err := call.Unmarshal(body); err != nil {
			http.Error(w, "Failed to parse body into Call protobuf", http.StatusBadRequest)
			return
		}
	} else if err := call.UnmarshalJSON(body); err != nil {
		http.Error(w, "Failed to convert JSON into Call protobuf: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := validateCall(&call); err != nil {
		http.Error(w, "Failed to validate Executor::Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	if call.Type == executor.Call_HEARTBEAT {
		// Http::executor returns early: the ids may be dummies.
		w.WriteHeader(http.StatusAccepted)
		return
	}

	a.mu.Lock()
	if a.phase != phaseRunning && call.Type != executor.Call_SUBSCRIBE {
		a.mu.Unlock()
		http.Error(w, "Agent has not finished recovery", http.StatusServiceUnavailable)
		return
	}
	fw := a.frameworks[call.FrameworkID.Value]
	if fw == nil {
		a.mu.Unlock()
		http.Error(w, "Framework cannot be found", http.StatusBadRequest)
		return
	}
	ex := fw.executors[call.ExecutorID.Value]
	if ex == nil {
		a.mu.Unlock()
		http.Error(w, "Executor cannot be found", http.StatusBadRequest)
		return
	}
	if authed != nil && ex != authed {
		a.mu.Unlock()
		// Http::executor, verifyExecutorClaims: the token's claims
		// (framework, executor, container) must match the call.
		http.Error(w, "The token does not belong to this framework and executor", http.StatusForbidden)
		return
	}
	if ex.ended && call.Type != executor.Call_SUBSCRIBE {
		a.mu.Unlock()
		http.Error(w, "Executor is terminated", http.StatusForbidden)
		return
	}
	if !ex.subscribed && call.Type != executor.Call_SUBSCRIBE {
		a.mu.Unlock()
		http.Error(w, "Executor is not subscribed", http.StatusForbidden)
		return
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		a.subscribe(w, r, ex, call.Subscribe) // unlocks
	case executor.Call_UPDATE:
		a.update(w, ex, call.Update.Status) // unlocks
	case executor.Call_MESSAGE:
		a.mu.Unlock()
		// Framework messages would go to the scheduler; the fake master has
		// no use for them yet.
		ex.log.Info("executor message dropped: framework messages are not forwarded", zap.Int("bytes", len(call.Message.Data)))
		w.WriteHeader(http.StatusAccepted)
	default:
		a.mu.Unlock()
		http.Error(w, fmt.Sprintf("Call type %v is not implemented", call.Type), http.StatusNotImplemented)
	}
}

// update handles UPDATE (a.mu held on entry; released here) as
// Slave::statusUpdate: checkpointed, then acknowledged on the stream if
// the executor is connected (an ACK for a disconnected executor is lost).
func (a *Agent) update(w http.ResponseWriter, ex *executorState, st mesos.TaskStatus) {
	err := a.executorUpdateLocked(ex, st)
	if err == nil {
		// Acknowledge only what is on disk; a duplicate is acknowledged
		// again, since the executor evidently missed the first one.
		ex.send(ackEvent(st))
	}
	a.mu.Unlock()
	if err != nil {
		ex.log.Error("checkpointing status update failed", zap.Error(err))
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// authenticate returns the executor whose token the request carries.
func (a *Agent) authenticate(r *http.Request) *executorState {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.run.Token != "" && subtle.ConstantTimeCompare([]byte(ex.run.Token), []byte(tok)) == 1 {
				return ex
			}
		}
	}
	return nil
}
