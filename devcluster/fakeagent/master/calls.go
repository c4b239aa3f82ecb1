package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// subscribe registers (or re-registers, after a failover) a framework and
// queues SUBSCRIBED plus every update it has not acknowledged yet.
func (m *Master) subscribe(info mesos.FrameworkInfo) (*subscription, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return nil, "", errors.New("master is shutting down")
	}
	id := info.GetID().GetValue()
	if m.tornDown[id] {
		return nil, "", fmt.Errorf("framework %s has been torn down; subscribe without an id to register anew", id)
	}
	if id == "" {
		id = newID()
		info.ID = &mesos.FrameworkID{Value: id}
	}
	fw, ok := m.frameworks[id]
	if !ok {
		fw = &framework{id: id, idOnly: true}
		m.frameworks[id] = fw
	}
	if !fw.idOnly {
		if err := m.keepImmutableLocked(fw, &info); err != nil {
			return nil, "", err
		}
	}
	m.dropSubscriptionLocked(fw)
	fw.info = info
	fw.idOnly = false
	fw.refuseTill = time.Time{}
	fw.suppressed = false
	fw.sub = newSubscription()
	hb := m.cfg.Heartbeat.Seconds()
	fw.sub.Send(&scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID:              &mesos.FrameworkID{Value: id},
		HeartbeatIntervalSeconds: &hb,
	}})
	now := time.Now()
	for i := range fw.unacked {
		fw.unacked[i].sent = now
		fw.sub.Send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: fw.unacked[i].status}})
	}
	m.kickAllocator()
	return fw.sub, id, nil
}

// errRefused is a SUBSCRIBE that Mesos answers with an ERROR event on the
// stream (a FrameworkErrorMessage) rather than an HTTP error.
type errRefused struct{ msg string }

func (e errRefused) Error() string { return e.msg }

// keepImmutableLocked applies Mesos' rules for a known framework that
// subscribes again (Master::_subscribe): user and checkpoint are put back
// to the registered values, with a warning, never changed
// (src/master/validation.cpp, framework::preserveImmutableFields;
// MESOS-703); then a changed principal refuses the subscription
// (framework::validateUpdate: "Changing framework's principal is not
// allowed."). validateUpdate refuses a changed user or checkpoint too, but
// on SUBSCRIBE they were already put back; it bites for UPDATE_FRAMEWORK,
// which the fake master does not serve.
func (m *Master) keepImmutableLocked(fw *framework, info *mesos.FrameworkInfo) error {
	old := fw.info
	if info.User != old.User {
		m.log.Warn("cannot update FrameworkInfo.user; keeping the registered one (MESOS-703)",
			zap.String("framework", fw.id), zap.String("user", old.User), zap.String("asked", info.User))
		info.User = old.User
	}
	if info.GetCheckpoint() != old.GetCheckpoint() {
		m.log.Warn("cannot update FrameworkInfo.checkpoint; keeping the registered one (MESOS-703)",
			zap.String("framework", fw.id), zap.Bool("checkpoint", old.GetCheckpoint()))
		info.Checkpoint = old.Checkpoint
	}
	if info.Principal == nil != (old.Principal == nil) || info.GetPrincipal() != old.GetPrincipal() {
		return errRefused{"Changing framework's principal is not allowed."}
	}
	return nil
}

// handleCall runs a non-SUBSCRIBE call of a subscribed framework. An error
// is a malformed call (400).
func (m *Master) handleCall(fwID string, call *scheduler.Call) error {
	log := m.log.With(zap.String("framework", fwID), zap.Stringer("call", call.Type))
	switch call.Type {
	case scheduler.Call_ACCEPT:
		if call.Accept == nil {
			return errors.New("expecting 'accept' to be present")
		}
		m.accept(fwID, call.Accept)
	case scheduler.Call_DECLINE:
		if call.Decline == nil {
			return errors.New("expecting 'decline' to be present")
		}
		m.mu.Lock()
		m.removeOffersLocked(fwID, call.Decline.OfferIDs)
		m.refuseLocked(m.frameworks[fwID], call.Decline.Filters, m.cfg.DefaultRefuse)
		m.mu.Unlock()
	case scheduler.Call_KILL:
		if call.Kill == nil {
			return errors.New("expecting 'kill' to be present")
		}
		m.kill(fwID, call.Kill)
	case scheduler.Call_ACKNOWLEDGE:
		ack := call.Acknowledge
		if ack == nil {
			return errors.New("expecting 'acknowledge' to be present")
		}
		m.acknowledge(log, fwID, ack.TaskID.Value, ack.UUID)
	case scheduler.Call_RECONCILE:
		if call.Reconcile == nil {
			return errors.New("expecting 'reconcile' to be present")
		}
		m.reconcile(fwID, call.Reconcile.Tasks)
	case scheduler.Call_TEARDOWN:
		m.teardown(fwID)
	case scheduler.Call_REVIVE, scheduler.Call_SUPPRESS:
		m.mu.Lock()
		fw := m.frameworks[fwID]
		fw.suppressed = call.Type == scheduler.Call_SUPPRESS
		fw.refuseTill = time.Time{}
		m.mu.Unlock()
		m.kickAllocator()
	default:
		log.Info("call not supported by the fake master; accepted and ignored")
	}
	return nil
}

func (m *Master) removeOffersLocked(fwID string, ids []mesos.OfferID) {
	for _, id := range ids {
		if o, ok := m.offers[id.Value]; ok && o.framework == fwID {
			delete(m.offers, id.Value)
		}
	}
	m.kickAllocator()
}

// accept validates the offers and each LAUNCH, then launches the valid
// tasks on the agent. Invalid tasks get TASK_ERROR (bad task) or TASK_LOST
// (bad offer), as the Mesos master sends them.
func (m *Master) accept(fwID string, acc *scheduler.Call_Accept) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	var offered mesos.Resources
	var offerErr error
	if len(acc.OfferIDs) == 0 {
		offerErr = errors.New("no offer ids")
	}
	for _, id := range acc.OfferIDs {
		o, ok := m.offers[id.Value]
		switch {
		case !ok:
			offerErr = fmt.Errorf("offer %s is no longer valid", id.Value)
		case o.framework != fwID:
			offerErr = fmt.Errorf("offer %s belongs to another framework", id.Value)
		default:
			offered = offered.Plus(o.resources...)
		}
	}
	m.removeOffersLocked(fwID, acc.OfferIDs)
	if acc.Filters != nil {
		m.refuseLocked(fw, acc.Filters, 0)
	}
	remaining := offered
	for _, op := range acc.Operations {
		switch op.GetType() {
		case mesos.Offer_Operation_LAUNCH:
			for _, ti := range op.GetLaunch().GetTaskInfos() {
				if offerErr != nil {
					m.updateLocked(fwID, m.masterStatus(ti.TaskID.Value, lostState(fw), mesos.REASON_INVALID_OFFERS, offerErr.Error()))
					continue
				}
				need, err := m.validateTaskLocked(fwID, ti)
				if err == nil && !resources.ContainsAll(remaining, need) {
					err = fmt.Errorf("task uses more resources (%s) than the offer has left (%s)", mesos.Resources(need), remaining)
				}
				if err != nil {
					m.updateLocked(fwID, m.masterStatus(ti.TaskID.Value, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, err.Error()))
					continue
				}
				remaining = remaining.Minus(need...)
				m.launchLocked(fw, ti)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			for _, ti := range op.GetLaunchGroup().GetTaskGroup().Tasks {
				m.updateLocked(fwID, m.masterStatus(ti.TaskID.Value, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "LAUNCH_GROUP is not supported by the fake master"))
			}
		default:
			m.log.Info("offer operation not supported by the fake master; ignored",
				zap.String("framework", fwID), zap.Stringer("operation", op.GetType()))
		}
	}
}

// validateTaskLocked returns the resources the task needs from the offer:
// its own plus its executor's when that executor is not running yet.
func (m *Master) validateTaskLocked(fwID string, ti mesos.TaskInfo) (mesos.Resources, error) {
	if ti.TaskID.Value == "" {
		return nil, errors.New("task id is empty")
	}
	if t, ok := m.tasks[taskKey{fwID, ti.TaskID.Value}]; ok && !t.done {
		return nil, fmt.Errorf("task %s is already running", ti.TaskID.Value)
	}
	if agent := m.agentID(); ti.AgentID.Value != agent {
		return nil, fmt.Errorf("task names agent %q, the offer's agent is %q", ti.AgentID.Value, agent)
	}
	if (ti.Executor == nil) == (ti.Command == nil) {
		return nil, errors.New("task must set exactly one of executor and command")
	}
	if err := resources.Validate(ti.Resources...); err != nil {
		return nil, fmt.Errorf("task resources: %w", err)
	}
	need := unallocated(ti.Resources)
	if ex := ti.Executor; ex != nil {
		if ex.ExecutorID.Value == "" {
			return nil, errors.New("executor id is empty")
		}
		if _, running := m.executors[taskKey{fwID, ex.ExecutorID.Value}]; !running {
			need = need.Plus(unallocated(ex.Resources)...)
		}
	}
	return need, nil
}

func (m *Master) launchLocked(fw *framework, ti mesos.TaskInfo) {
	m.addTaskLocked(fw.id, ti.Executor, ti)
	info := fw.info
	fwID, taskID := fw.id, ti.TaskID.Value
	m.goAgent("launch "+taskID, func(ctx context.Context) error {
		err := m.agent.Launch(ctx, info, ti.Executor, ti)
		if err != nil {
			// Launch failures are the master's to report: the agent has no
			// executor to speak for the task.
			m.Update(fwID, m.masterStatus(taskID, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, err.Error()))
		}
		return err
	})
}

func (m *Master) kill(fwID string, k *scheduler.Call_Kill) {
	m.mu.Lock()
	defer m.mu.Unlock()
	taskID := k.TaskID.Value
	t, ok := m.tasks[taskKey{fwID, taskID}]
	if !ok || t.done {
		if !ok {
			m.updateLocked(fwID, m.masterStatus(taskID, lostState(m.frameworks[fwID]), mesos.REASON_RECONCILIATION, "task is unknown to the master"))
		}
		return
	}
	policy := k.KillPolicy
	m.goAgent("kill "+taskID, func(ctx context.Context) error {
		return m.agent.Kill(ctx, fwID, taskID, policy)
	})
}

func (m *Master) acknowledge(log *zap.Logger, fwID, taskID string, uuid []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	for i, p := range fw.unacked {
		if st := p.status; st.TaskID.Value == taskID && string(st.UUID) == string(uuid) {
			fw.unacked = append(fw.unacked[:i:i], fw.unacked[i+1:]...)
			return
		}
	}
	log.Info("acknowledgement for an unknown update", zap.String("task", taskID))
}

// reconcile answers with the latest state of the named tasks (unknown ones
// as lost), or of every task the framework has not seen end (implicit).
func (m *Master) reconcile(fwID string, tasks []scheduler.Call_Reconcile_Task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	answer := func(taskID string, st mesos.TaskStatus) {
		st.Reason = mesos.REASON_RECONCILIATION.Enum()
		st.UUID = nil // reconciliation updates need no acknowledgement
		st.Source = mesos.SOURCE_MASTER.Enum()
		m.sendLocked(fw, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	if len(tasks) == 0 {
		for key, t := range m.tasks {
			if key.framework == fwID && (!t.done || m.unackedLocked(fw, key.id)) {
				answer(key.id, t.latest)
			}
		}
		return
	}
	for _, rt := range tasks {
		id := rt.TaskID.Value
		if t, ok := m.tasks[taskKey{fwID, id}]; ok {
			answer(id, t.latest)
			continue
		}
		answer(id, m.masterStatus(id, lostState(fw), mesos.REASON_RECONCILIATION, "task is unknown to the master"))
	}
}

func (m *Master) unackedLocked(fw *framework, taskID string) bool {
	for _, p := range fw.unacked {
		if p.status.TaskID.Value == taskID {
			return true
		}
	}
	return false
}

// teardown removes the framework at once (its resources become free) and
// asks the agent to shut its executors down.
func (m *Master) teardown(fwID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	m.dropSubscriptionLocked(fw)
	delete(m.frameworks, fwID)
	m.tornDown[fwID] = true
	for key, t := range m.tasks {
		if key.framework == fwID && !t.done {
			m.releaseLocked(key, t)
		}
	}
	m.log.Info("framework torn down", zap.String("framework", fwID))
	m.goAgent("shutdown framework "+fwID, func(ctx context.Context) error {
		return m.agent.ShutdownFramework(ctx, fwID)
	})
}

// lostState is what Mesos reports for a task it cannot find: TASK_UNKNOWN
// for partition-aware frameworks, TASK_LOST for the others.
func lostState(fw *framework) mesos.TaskState {
	if fw != nil {
		for _, c := range fw.info.Capabilities {
			if c.GetType() == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
				return mesos.TASK_UNKNOWN
			}
		}
	}
	return mesos.TASK_LOST
}
