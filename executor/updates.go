package executor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"go.uber.org/zap"
)

// NetworkInfosLabel is the status label holding, as JSON, the
// NetworkInfos the executor discovered itself.
const NetworkInfosLabel = "dewar.executor.network_infos"

// report turns a task's status into an UPDATE, keeps it until the agent
// acknowledges it, and wakes the sender.
func (e *Executor) report(taskID string, s Status) {
	if s.State == mesos.TASK_STAGING {
		// Mesos rejects TASK_STAGING from executors; it is the agent's state.
		e.log.Error("bug: task reported TASK_STAGING; sending TASK_STARTING", zap.String("task_id", taskID))
		s.State = mesos.TASK_STARTING
	}
	uuid := newUUID()
	now := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID:     mesos.TaskID{Value: taskID},
		State:      s.State.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		Reason:     s.Reason,
		ExecutorID: &mesos.ExecutorID{Value: e.cfg.ExecutorID},
		Timestamp:  &now,
		UUID:       uuid,
		Healthy:    s.Healthy,
	}
	if s.Message != "" {
		st.Message = &s.Message
	}
	labels := s.Labels
	if len(s.Networks) > 0 {
		st.ContainerStatus = &mesos.ContainerStatus{NetworkInfos: s.Networks}
		// An agent merges its own view into container_status; the label
		// keeps the executor's view recognisable whatever the agent does.
		if b, err := json.Marshal(s.Networks); err == nil {
			v := string(b)
			labels = append(labels, mesos.Label{Key: NetworkInfosLabel, Value: &v})
		}
	}
	if len(labels) > 0 {
		st.Labels = &mesos.Labels{Labels: labels}
	}
	e.mu.Lock()
	if e.env != nil {
		st.AgentID = e.env.Agent.ID
	}
	if t := e.tasks[taskID]; t != nil && terminal(s.State) {
		t.terminal = true
		e.changedLocked()
	}
	e.unacked = append(e.unacked, &pendingUpdate{update: executor.Call_Update{Status: st}, uuid: string(uuid)})
	e.mu.Unlock()
	e.log.Info("status update", zap.String("task_id", taskID), zap.Stringer("state", s.State),
		zap.String("message", s.Message), zap.String("uuid", hex.EncodeToString(uuid)))
	e.poke()
}

// acknowledged drops the update the agent has checkpointed.
func (e *Executor) acknowledged(taskID string, uuid []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, u := range e.unacked {
		if u.uuid == string(uuid) {
			e.unacked = append(e.unacked[:i], e.unacked[i+1:]...)
			if t := e.tasks[taskID]; t != nil {
				t.acked = true
			}
			e.changedLocked()
			e.log.Debug("acknowledged", zap.String("task_id", taskID), zap.String("uuid", hex.EncodeToString(uuid)))
			return
		}
	}
	e.log.Warn("acknowledgement for an unknown update", zap.String("task_id", taskID), zap.String("uuid", hex.EncodeToString(uuid)))
}

// sendLoop sends every update the agent has not seen in this session, in
// order. An update that fails to send stays pending: it goes out again in
// the next SUBSCRIBE.
func (e *Executor) sendLoop(ctx context.Context) {
	retry := time.NewTimer(0)
	<-retry.C
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-retry.C:
		}
		for {
			u, session := e.nextToSend()
			if u == nil {
				break
			}
			err := calls.SendNoData(ctx, e.sender, calls.NonStreaming(calls.Update(u.update.Status)))
			if refused(err) {
				// The agent will refuse this update however often it is
				// sent; keeping it would hold every later update behind it
				// and carry it into SUBSCRIBE.
				e.log.Error("agent refused a status update; dropping it", zap.String("task_id", u.update.Status.TaskID.Value),
					zap.String("uuid", hex.EncodeToString(u.update.Status.UUID)), zap.Error(err))
				e.drop(u)
				continue
			}
			if err != nil && ctx.Err() != nil {
				return // the executor is done; nothing was lost: pending updates stay pending
			}
			if err != nil {
				// 503 (agent recovering), 403 (agent restarted and we have
				// not resubscribed yet) or a broken connection: keep the
				// update; it goes out again, or in the next SUBSCRIBE.
				e.log.Warn("sending status update failed; will retry", zap.String("task_id", u.update.Status.TaskID.Value), zap.Error(err))
				retry.Reset(time.Second)
				break
			}
			e.mu.Lock()
			if e.session == session {
				u.sentSession = session
			}
			e.mu.Unlock()
		}
	}
}

// nextToSend returns the oldest update not yet sent in the current
// session, if subscribed.
func (e *Executor) nextToSend() (*pendingUpdate, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.subscribed {
		return nil, 0
	}
	for _, u := range e.unacked {
		if u.sentSession != e.session {
			return u, e.session
		}
	}
	return nil, 0
}

// drop forgets an update the agent refused for good.
func (e *Executor) drop(u *pendingUpdate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, p := range e.unacked {
		if p == u {
			e.unacked = append(e.unacked[:i], e.unacked[i+1:]...)
			e.changedLocked()
			return
		}
	}
}

// refused reports whether the agent rejected a call as malformed (400):
// Mesos validates every call before it looks at the executor's state
// (src/slave/http.cpp, Http::executor, validation::executor::call::
// validate), so sending the same call again can never succeed. 403 (not
// subscribed) and 503 (recovering) are the agent's state, not the call's.
func refused(err error) bool {
	var ae *apierrors.Error
	return errors.As(err, &ae) && apierrors.CodeMalformedRequest.Matches(ae)
}

// subscribeRefused reports whether the agent refused SUBSCRIBE in a way no
// retry can change (src/slave/http.cpp, Http::executor): 400 for a call it
// cannot parse or validate, or a framework or executor it does not know;
// 401 and 403 for credentials or, over the executor socket, a path it does
// not admit (src/slave/slave.cpp, Slave::initialize); 406/415 for a media
// type. 503 (recovering) and 404 (routes not set up yet) pass.
func subscribeRefused(err error) bool {
	var ae *apierrors.Error
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range []apierrors.Code{apierrors.CodeMalformedRequest, apierrors.CodeNotAuthenticated,
		apierrors.CodeUnsubscribed, apierrors.CodeUnsupportedMediaType, apierrors.Code(http.StatusUnsupportedMediaType),
		apierrors.Code(http.StatusMethodNotAllowed)} {
		if c.Matches(ae) {
			return true
		}
	}
	return false
}

// agentAnswered reports whether err is an HTTP answer from the agent, as
// opposed to a connection that could not be made or broke.
func agentAnswered(err error) bool {
	var ae *apierrors.Error
	return errors.As(err, &ae)
}
