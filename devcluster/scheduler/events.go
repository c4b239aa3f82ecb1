package scheduler

import (
	"context"
	"encoding/hex"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/taskstate"
)

// handle acts on one event; an error ends the subscription.
func (f *Framework) handle(ctx context.Context, ev scheduler.Event) error {
	switch ev.Type {
	case scheduler.Event_SUBSCRIBED:
		return f.onSubscribed(ctx, ev.Subscribed.GetFrameworkID().GetValue())
	case scheduler.Event_OFFERS:
		for _, o := range ev.GetOffers().GetOffers() {
			if err := f.offer(ctx, o); err != nil {
				return err
			}
		}
	case scheduler.Event_UPDATE:
		return f.update(ctx, ev.Update.Status)
	case scheduler.Event_HEARTBEAT:
	default:
		f.log.Info("event ignored", zap.Stringer("type", ev.Type))
	}
	return nil
}

func (f *Framework) call(ctx context.Context, c *scheduler.Call) error {
	f.mu.Lock()
	fwID := f.fwID
	f.mu.Unlock()
	return callAs(ctx, f.caller, fwID, c)
}

// subscribed records the framework id and asks for the state of every task
// the store thinks is alive: after a restart of the stub, those updates are
// how it learns what happened while it was away.
func (f *Framework) onSubscribed(ctx context.Context, fwID string) error {
	f.mu.Lock()
	f.fwID = fwID
	f.subscribed = true
	recon := map[string]string{}
	for _, r := range f.current {
		if !terminalState(r.State) {
			recon[r.TaskID] = r.AgentID
		}
	}
	f.mu.Unlock()
	f.log.Info("subscribed", zap.String("framework", fwID), zap.Int("reconciling", len(recon)))
	// The user and name go with the id: whoever subscribes as this
	// framework later (a restarted `run`, `kill --master`) presents them.
	err := f.cfg.Store.UpdateMeta(func(m *Meta) {
		m.FrameworkID, m.User, m.FrameworkName = fwID, f.cfg.User, f.cfg.FrameworkName
	})
	if err != nil {
		return err
	}
	if len(recon) == 0 {
		// Every instance may have been killed (or a batch job finished)
		// while no `run` was up.
		return f.finishIfDone(ctx)
	}
	return f.call(ctx, calls.Reconcile(calls.ReconcileTasks(recon)))
}

// offer launches every instance that should run and fits, or declines.
func (f *Framework) offer(ctx context.Context, o mesos.Offer) error {
	f.mu.Lock()
	fwID := f.fwID
	pending := f.pendingLocked(time.Now())
	f.mu.Unlock()

	avail := mesos.Resources(o.Resources).Clone()
	var tasks []mesos.TaskInfo
	for _, inst := range pending {
		ti, used, err := f.cfg.Executor.BuildTask(Launch{Job: f.job, JobJSON: f.jobJSON, Instance: inst, FrameworkID: fwID}, o, avail)
		if err != nil {
			f.log.Info("offer too small for an instance", zap.Int("instance", inst), zap.Error(err))
			break
		}
		avail = avail.Minus(used...)
		now := time.Now()
		rec := TaskRecord{TaskID: ti.TaskID.Value, Instance: inst, AgentID: o.AgentID.Value, State: mesos.TASK_STAGING.String(), Launched: now, Updated: now}
		if at, err := aurora.DecodeAssignedTask(ti.Data); err == nil {
			rec.Ports = at.AssignedPorts
		}
		// Persist before ACCEPT: a task the store does not know would be
		// an orphan after a crash.
		if err := f.cfg.Store.PutTask(rec); err != nil {
			return err
		}
		f.mu.Lock()
		f.current[inst] = &rec
		f.mu.Unlock()
		tasks = append(tasks, ti)
		f.log.Info("launching", zap.Int("instance", inst), zap.String("task", ti.TaskID.Value))
	}
	if len(tasks) == 0 {
		refuse := 5 * time.Second
		if len(pending) > 0 {
			refuse = time.Second
		}
		return f.call(ctx, calls.Decline(o.ID).With(calls.RefuseSeconds(refuse)))
	}
	accept := calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(o.ID)).
		With(calls.RefuseSeconds(time.Second))
	return f.call(ctx, accept)
}

// pendingLocked lists the instances to launch now: not killed, and without
// a live task (a service instance relaunches RelaunchDelay after its task
// ended; a batch instance runs once).
func (f *Framework) pendingLocked(now time.Time) []int {
	var out []int
	for i := 0; i < max(f.job.Instances, 1); i++ {
		if f.killed[i] {
			continue
		}
		r, ok := f.current[i]
		switch {
		case !ok:
			out = append(out, i)
		case !terminalState(r.State):
		case !f.job.Service:
			// Batch instances run once.
		case now.Sub(r.Updated) >= f.cfg.RelaunchDelay:
			out = append(out, i)
		}
	}
	return out
}

// update stores a status update (state and both address views),
// acknowledges it, and notices when the job has nothing left to do.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) error {
	taskID := st.TaskID.Value
	rec, known, err := recordUpdate(f.cfg.Store, f.log, st)
	if err != nil {
		return err
	}
	if known {
		f.mu.Lock()
		if cur, ok := f.current[rec.Instance]; ok && cur.TaskID == taskID {
			f.current[rec.Instance] = &rec
		}
		f.mu.Unlock()
	}
	if len(st.UUID) > 0 {
		agentID := st.GetAgentID().GetValue()
		if err := f.call(ctx, calls.Acknowledge(agentID, taskID, st.UUID)); err != nil {
			return err
		}
	}
	return f.finishIfDone(ctx)
}

// finishIfDone tears the framework down when nothing will run again,
// leaving no framework behind on the master, and ends Run. The event loop
// calls it after an update, Kill from the control endpoint's goroutine:
// finishMu makes the first that finds the job done the only one to tear
// down, forget the framework and close done.
func (f *Framework) finishIfDone(ctx context.Context) error {
	f.finishMu.Lock()
	defer f.finishMu.Unlock()
	select {
	case <-f.done:
		return nil
	default:
	}
	if !f.checkDone() {
		return nil
	}
	if err := f.call(ctx, &scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		f.log.Warn("teardown", zap.Error(err))
	}
	if err := f.cfg.Store.ForgetFramework(); err != nil {
		return err
	}
	close(f.done)
	return nil
}

// checkDone reports whether no instance runs or will run again.
func (f *Framework) checkDone() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < max(f.job.Instances, 1); i++ {
		r, ok := f.current[i]
		if ok && !terminalState(r.State) {
			return false
		}
		if !f.killed[i] && (!ok || f.job.Service) {
			return false
		}
	}
	f.log.Info("nothing left to run")
	return true
}

// terminalState is taskstate.Terminal for a stored state name, and also
// TASK_UNKNOWN: a task the master no longer knows will send the stub
// nothing more.
func terminalState(s string) bool {
	return s == mesos.TASK_UNKNOWN.String() || taskstate.Terminal(s)
}

// recordUpdate stores a status update: state, message, reason, the agent
// that runs the task, and both address views (an update without addresses
// keeps the last ones). It logs the update and any disagreement between
// the views.
func recordUpdate(store *Store, log *zap.Logger, st mesos.TaskStatus) (TaskRecord, bool, error) {
	taskID := st.TaskID.Value
	log = log.With(zap.String("task", taskID), zap.Stringer("state", st.GetState()))
	views, verr := ViewsOf(st)
	if verr != nil {
		log.Warn("executor addresses unreadable", zap.Error(verr))
	}
	rec, known, err := store.UpdateTask(taskID, func(r *TaskRecord) {
		r.State = st.GetState().String()
		r.Message = st.GetMessage()
		r.Reason = ""
		if st.Reason != nil {
			r.Reason = st.GetReason().String()
		}
		if id := st.GetAgentID().GetValue(); id != "" {
			r.AgentID = id
		}
		r.Updated = time.Now()
		if views.Agent != nil {
			r.Views.Agent = views.Agent
		}
		if views.Executor != nil {
			r.Views.Executor = views.Executor
		}
	})
	if err != nil {
		return rec, known, err
	}
	if !known {
		log.Warn("update for a task this stub did not launch", zap.String("message", st.GetMessage()))
		return rec, false, nil
	}
	// The uuid tells a re-delivery from a new update: Mesos delivers at
	// least once, and a re-registering agent resends its pending update
	// twice (src/slave/slave.cpp, Slave::reregistered and
	// Slave::updateFramework both call TaskStatusUpdateManager::resume).
	log.Info("status update", zap.Int("instance", rec.Instance), zap.String("uuid", hex.EncodeToString(st.UUID)), zap.String("message", st.GetMessage()),
		zap.Any("agent_view", rec.Views.Agent), zap.Any("executor_view", rec.Views.Executor))
	if d := rec.Views.Disagreement(); d != "" {
		log.Warn("the agent and the executor disagree on the task's addresses", zap.String("diff", d))
	}
	return rec, true, nil
}
