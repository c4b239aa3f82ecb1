package fakeagent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
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

// serveExecutorAPI is POST /api/v1/executor, checked in the order of the
// Mesos agent (src/slave/http.cpp, Http::executor): authentication (401),
// Content-Type (400/415), body (400), call validation (400), framework and
// executor lookup (400), identity (403), subscription (403).
func (a *Agent) serveExecutorAPI(w http.ResponseWriter, r *http.Request) {
	authed := a.authenticate(r)
	if authed == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mesos-agent-executor"`)
		http.Error(w, "Unauthorized: the executor API needs 'Authorization: Bearer <MESOS_EXECUTOR_AUTHENTICATION_TOKEN>'", http.StatusUnauthorized)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		http.Error(w, "Expecting 'Content-Type' to be present", http.StatusBadRequest)
		return
	}
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != mediaProtobuf && mt != mediaJSON {
		http.Error(w, fmt.Sprintf("Expecting 'Content-Type' of %s or %s", mediaJSON, mediaProtobuf), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes))
	if err != nil {
		http.Error(w, "Failed to read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var call executor.Call
	if mt == mediaProtobuf {
		err = call.Unmarshal(body)
	} else {
		err = call.UnmarshalJSON(body)
	}
	if err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := validateCall(&call); err != nil {
		http.Error(w, "Failed to validate Executor::Call: "+err.Error(), http.StatusBadRequest)
		return
	}

	a.mu.Lock()
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
	if ex != authed {
		a.mu.Unlock()
		// Mesos checks the token's claims (framework, executor, container)
		// against the call.
		http.Error(w, "The token does not belong to this framework and executor", http.StatusForbidden)
		return
	}
	if ex.ended {
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
		err := a.executorUpdateLocked(ex, call.Update.Status)
		if err == nil {
			// Acknowledge only what is on disk; a duplicate is acknowledged
			// again, since the executor evidently missed the first one.
			ex.send(ackEvent(call.Update.Status))
		}
		a.mu.Unlock()
		if err != nil {
			ex.log.Error("checkpointing status update failed", zap.Error(err))
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case executor.Call_MESSAGE:
		a.mu.Unlock()
		// Framework messages would go to the scheduler; the fake master has
		// no use for them yet.
		ex.log.Info("executor message dropped: framework messages are not forwarded", zap.Int("bytes", len(call.Message.Data)))
		w.WriteHeader(http.StatusAccepted)
	case executor.Call_HEARTBEAT:
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		a.mu.Unlock()
		http.Error(w, fmt.Sprintf("Call type %v is not implemented", call.Type), http.StatusNotImplemented)
	}
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

// validateCall follows Mesos' executor call validation
// (src/common/validation.cpp, executor::call::validate).
func validateCall(c *executor.Call) error {
	if c.ExecutorID.Value == "" {
		return errors.New("expecting 'executor_id' to be present")
	}
	if c.FrameworkID.Value == "" {
		return errors.New("expecting 'framework_id' to be present")
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return errors.New("expecting 'subscribe' to be present")
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return errors.New("expecting 'update' to be present")
		}
		st := &c.Update.Status
		if st.UUID == nil {
			return errors.New("expecting 'uuid' to be present")
		}
		if len(st.UUID) != 16 {
			return fmt.Errorf("invalid UUID: %d bytes, want 16", len(st.UUID))
		}
		if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
			return fmt.Errorf("executorID in Call: %s does not match ExecutorID in TaskStatus: %s", c.ExecutorID.Value, st.ExecutorID.Value)
		}
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			return fmt.Errorf("received Call from executor with invalid source, source: %v", st.GetSource())
		}
		if st.GetState() == mesos.TASK_STAGING {
			return errors.New("received TASK_STAGING from executor which is not allowed")
		}
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return errors.New("expecting 'message' to be present")
		}
	case executor.Call_HEARTBEAT:
	default:
		// proto2 cannot tell an absent type from UNKNOWN (0).
		return errors.New("expecting 'type' to be present")
	}
	return nil
}
