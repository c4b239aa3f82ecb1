package master

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/partitionaware"
)

// subscribe registers (or re-registers, after a failover) a framework and
// queues SUBSCRIBED plus every update it has not acknowledged yet
// (Master::subscribe and Master::_subscribe, src/master/master.cpp; the
// agent's status update manager re-sends what is pending, which the fake
// master does for it). A new SUBSCRIBE takes the stream from the old one
// (Master::failoverFramework; Mesos first sends the old stream an ERROR,
// "Framework failed over", where the fake master only hangs up).
func (m *Master) subscribe(info mesos.FrameworkInfo) (*subscription, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return nil, "", errors.New("master is shutting down")
	}
	id := info.GetID().GetValue()
	if m.tornDown[id] {
		// Master::validateFramework refuses a completed framework.
		return nil, "", errRefused{"Framework has been removed"}
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
		// Master::decline: the offers go back, filtered for
		// refuse_seconds.
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
		// Master::revive clears the framework's filters and resumes its
		// offers; Master::suppress stops them (it keeps the filters, which
		// the next REVIVE clears anyway).
		m.mu.Lock()
		fw := m.frameworks[fwID]
		fw.suppressed = call.Type == scheduler.Call_SUPPRESS
		fw.refuseTill = time.Time{}
		m.mu.Unlock()
		m.kickAllocator()
	default:
		// Ours: Mesos serves them; the fake master answers 202 as Mesos
		// would and does nothing.
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

// accept follows Master::accept and Master::_accept (src/master/master.cpp).
// Offers are checked first; an invalid one voids the whole call: the
// offers go back without the call's filters, every task of a LAUNCH or
// LAUNCH_GROUP gets TASK_DROPPED (TASK_LOST for a framework that is not
// partition-aware), REASON_INVALID_OFFERS, and nothing is launched. With
// valid offers each task is validated against what the offers have left
// and gets TASK_ERROR, REASON_TASK_INVALID when it fails.
func (m *Master) accept(fwID string, acc *scheduler.Call_Accept) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	offered, offerErr := m.validateOffersLocked(fwID, acc.OfferIDs)
	m.removeOffersLocked(fwID, acc.OfferIDs)
	if offerErr != nil {
		m.log.Info("ACCEPT with invalid offers", zap.String("framework", fwID), zap.Error(offerErr))
		state := partitionaware.State(fw.info, mesos.TASK_DROPPED)
		for _, op := range acc.Operations {
			for _, ti := range launchedTasks(op) {
				m.rejectLocked(fw, m.masterStatus(ti.TaskID.Value, state, mesos.REASON_INVALID_OFFERS, "Task launched with invalid offers: "+offerErr.Error()))
			}
		}
		return
	}
	// Mesos applies the call's filters to what the offers had left, and
	// the default refuse_seconds (5) when the call has none; here a call
	// without filters refuses nothing (ours: a single node wants its
	// leftovers back at once).
	if acc.Filters != nil {
		m.refuseLocked(fw, acc.Filters, 0)
	}
	remaining := offered
	for _, op := range acc.Operations {
		switch op.GetType() {
		case mesos.Offer_Operation_LAUNCH:
			for _, ti := range op.GetLaunch().GetTaskInfos() {
				need, err := m.validateTaskLocked(fwID, ti, remaining)
				if err != nil {
					m.rejectLocked(fw, m.masterStatus(ti.TaskID.Value, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, err.Error()))
					continue
				}
				remaining = remaining.Minus(need...)
				m.launchLocked(fw, ti)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			// Ours: Mesos launches task groups; the fake master refuses them.
			for _, ti := range op.GetLaunchGroup().GetTaskGroup().Tasks {
				m.rejectLocked(fw, m.masterStatus(ti.TaskID.Value, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "LAUNCH_GROUP is not supported by the fake master"))
			}
		default:
			m.log.Info("offer operation not supported by the fake master; ignored",
				zap.String("framework", fwID), zap.Stringer("operation", op.GetType()))
		}
	}
}

// rejectLocked tells the framework that a task of its ACCEPT was not
// launched, and does nothing else. Master::accept (invalid offers) and
// Master::_accept (a task failing validation::task::validate) only
// forward(update, UPID(), framework) such an update (src/master/master.cpp):
// the task id may name a task the master already runs (a LAUNCH reusing
// it, or the same id twice in one ACCEPT), and Master::forward changes that
// Task only for an update with a uuid, which these have not. So the known
// task keeps its state and its resources, and nothing waits for an
// acknowledgement.
func (m *Master) rejectLocked(fw *framework, st mesos.TaskStatus) {
	m.sendLocked(fw, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
}

// launchedTasks lists the tasks a LAUNCH or LAUNCH_GROUP operation names.
func launchedTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch op.GetType() {
	case mesos.Offer_Operation_LAUNCH:
		return op.GetLaunch().GetTaskInfos()
	case mesos.Offer_Operation_LAUNCH_GROUP:
		return op.GetLaunchGroup().GetTaskGroup().Tasks
	}
	return nil
}

// validateOffersLocked checks the offers of an ACCEPT as Mesos'
// validation::offer::validate does (src/master/validation.cpp:
// validateUniqueOfferID, validateOfferIds, validateFramework; the agent
// rules hold by construction on one node) and returns what they offer
// together. Master::accept refuses a call without offers ("No offers
// specified").
func (m *Master) validateOffersLocked(fwID string, ids []mesos.OfferID) (mesos.Resources, error) {
	if len(ids) == 0 {
		return nil, errors.New("no offers specified")
	}
	seen := map[string]bool{}
	var offered mesos.Resources
	for _, id := range ids {
		o, ok := m.offers[id.Value]
		switch {
		case seen[id.Value]:
			return nil, fmt.Errorf("duplicate offer %s in offer list", id.Value)
		case !ok:
			return nil, fmt.Errorf("offer %s is no longer valid", id.Value)
		case o.framework != fwID:
			return nil, fmt.Errorf("offer %s has invalid framework %s while framework %s is expected", id.Value, o.framework, fwID)
		}
		seen[id.Value] = true
		offered = offered.Plus(o.resources...)
	}
	return offered, nil
}

// validateTaskLocked checks a task of a LAUNCH as Mesos'
// validation::task::validate does (src/master/validation.cpp; the rules
// the fake master needs: validateTaskID, validateUniqueTaskID,
// validateSlaveID, validateResources, then validateExecutor: "at least one
// (but not both) of CommandInfo or ExecutorInfo", the executor's own
// checks, and the task's resources plus those of an executor not running
// yet within what the offers have left). It returns what the task takes
// from the offers.
func (m *Master) validateTaskLocked(fwID string, ti mesos.TaskInfo, remaining mesos.Resources) (mesos.Resources, error) {
	if ti.TaskID.Value == "" {
		return nil, errors.New("task id is empty")
	}
	if _, ok := m.tasks[taskKey{fwID, ti.TaskID.Value}]; ok {
		return nil, fmt.Errorf("task has duplicate ID: %s", ti.TaskID.Value)
	}
	if agent := m.agentID(); ti.AgentID.Value != agent {
		return nil, fmt.Errorf("task uses invalid agent %s while agent %s is expected", ti.AgentID.Value, agent)
	}
	if err := resources.Validate(ti.Resources...); err != nil {
		return nil, fmt.Errorf("task uses invalid resources: %w", err)
	}
	if (ti.Executor == nil) == (ti.Command == nil) {
		return nil, errors.New("task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
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
	if !resources.ContainsAll(remaining, need) {
		return nil, fmt.Errorf("total resources %s required by task and its executor is more than available %s", mesos.Resources(need), remaining)
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

// kill follows Master::kill (src/master/master.cpp): a task the master
// does not know is answered as an explicit reconciliation of it; a KILL
// naming another agent than the task's is ignored; otherwise the agent is
// told. Ours: a task that ended but whose terminal update is not
// acknowledged yet is not sent to the agent again (Mesos sends it; the
// agent has nothing left to kill).
func (m *Master) kill(fwID string, k *scheduler.Call_Kill) {
	m.mu.Lock()
	defer m.mu.Unlock()
	taskID := k.TaskID.Value
	t, ok := m.tasks[taskKey{fwID, taskID}]
	switch {
	case !ok:
		m.reconcileUnknownLocked(m.frameworks[fwID], taskID, k.AgentID)
		return
	case k.AgentID != nil && k.AgentID.Value != m.agentID():
		m.log.Warn("KILL names another agent than the task's; ignored",
			zap.String("framework", fwID), zap.String("task", taskID), zap.String("agent", k.AgentID.Value))
		return
	case t.done:
		return
	}
	policy := k.KillPolicy
	m.goAgent("kill "+taskID, func(ctx context.Context) error {
		return m.agent.Kill(ctx, fwID, taskID, policy)
	})
}

// acknowledge removes an update from those the framework has not
// acknowledged, so it is no longer re-sent.
func (m *Master) acknowledge(log *zap.Logger, fwID, taskID string, uuid []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	for i, p := range fw.unacked {
		if st := p.status; st.TaskID.Value == taskID && string(st.UUID) == string(uuid) {
			fw.unacked = append(fw.unacked[:i:i], fw.unacked[i+1:]...)
			if isTerminal(st.GetState()) {
				// The framework has seen the task end: Master::acknowledge
				// removes it (removeTask), and the master knows it no more.
				// In Mesos nothing of the task is pending then: the agent's
				// status update manager sends a task's next update only
				// once the previous one is acknowledged, and the master
				// matches the ack against the task's status_update_uuid.
				// The fake forwards them all at once, so the task's earlier
				// updates may still wait here; they go too, or
				// retryUpdates would re-send e.g. RUNNING for a task the
				// master has forgotten.
				fw.unacked = slices.DeleteFunc(fw.unacked, func(p pending) bool { return p.status.TaskID.Value == taskID })
				delete(m.tasks, taskKey{fwID, taskID})
			}
			return
		}
	}
	// Mesos logs and ignores it too (Master::acknowledge).
	log.Info("acknowledgement for an unknown update", zap.String("task", taskID))
}

// reconcile follows Master::reconcile (src/master/master.cpp). Implicit
// (no tasks named): the latest state of every task the master knows.
// Explicit: the latest state of each named task it knows, the others as
// reconcileUnknownLocked says. Answers carry reason REASON_RECONCILIATION
// and no uuid: they need no acknowledgement. Ours: the answer keeps the
// task's last message (Mesos writes "Reconciliation: Latest task state").
func (m *Master) reconcile(fwID string, tasks []scheduler.Call_Reconcile_Task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	if len(tasks) == 0 {
		for key, t := range m.tasks {
			if key.framework == fwID {
				m.sendLocked(fw, reconciled(t.latest))
			}
		}
		return
	}
	for _, rt := range tasks {
		id := rt.TaskID.Value
		if t, ok := m.tasks[taskKey{fwID, id}]; ok {
			m.sendLocked(fw, reconciled(t.latest))
			continue
		}
		m.reconcileUnknownLocked(fw, id, rt.AgentID)
	}
}

// reconcileUnknownLocked answers for a task the master does not know, as
// Master::reconcile's explicit cases (3) and (6): on a known agent,
// TASK_GONE ("Reconciliation: Task is unknown to the agent"); on an
// unknown or unnamed agent, TASK_UNKNOWN ("Reconciliation: Task is
// unknown"); TASK_LOST for both when the framework is not partition-aware.
// (Cases (2), (4) and (5) need agents that are recovering, unreachable or
// gone, which a single node that is up never is.)
func (m *Master) reconcileUnknownLocked(fw *framework, taskID string, agentID *mesos.AgentID) {
	var st mesos.TaskStatus
	if agentID.GetValue() == m.agentID() {
		st = m.masterStatus(taskID, partitionaware.State(fw.info, mesos.TASK_GONE), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent")
	} else {
		st = m.masterStatus(taskID, partitionaware.State(fw.info, mesos.TASK_UNKNOWN), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown")
		st.AgentID = agentID
	}
	m.sendLocked(fw, reconciled(st))
}

// reconciled is st as a reconciliation answer.
func reconciled(st mesos.TaskStatus) *scheduler.Event {
	st.Reason = mesos.REASON_RECONCILIATION.Enum()
	st.UUID = nil
	st.Source = mesos.SOURCE_MASTER.Enum()
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}}
}

// teardown removes the framework at once (its resources become free) and
// asks the agent to shut its executors down (Master::teardown,
// Master::removeFramework: ShutdownFrameworkMessage to every agent).
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
