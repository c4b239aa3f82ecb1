package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/aurora"
)

// KillDirect kills instance (every instance when instance < 0) without a
// running stub: after `run` was stopped its tasks keep running, and only
// the framework may kill them. It subscribes as the framework recorded in
// store, presenting it as `run` registered it (a failover, as Mesos
// allows), sends KILL, records the updates
// until every targeted task has ended and, when the whole job is gone,
// tears the framework down. Never use it while `run` is up: the master
// gives the stream to the newest subscriber.
func KillDirect(ctx context.Context, master string, store *Store, instance int, log *zap.Logger) ([]string, error) {
	meta, err := store.Meta()
	if err != nil {
		return nil, err
	}
	if meta.FrameworkID == "" {
		return nil, errors.New("no framework recorded in the database: nothing to kill")
	}
	recs, err := store.Tasks()
	if err != nil {
		return nil, err
	}
	targets := map[string]TaskRecord{}
	var msgs []string
	latest := Latest(recs)
	for i, r := range latest {
		if instance >= 0 && i != instance {
			continue
		}
		if terminalState(r.State) {
			msgs = append(msgs, fmt.Sprintf("instance %d: task %s already %s", i, r.TaskID, r.State))
			continue
		}
		targets[r.TaskID] = r
	}
	if instance >= 0 {
		if _, ok := latest[instance]; !ok {
			return nil, fmt.Errorf("instance %d: no task recorded", instance)
		}
	}
	wholeJob := instance < 0
	killed := []int{instance}
	if wholeJob {
		if killed, err = jobInstances(meta.JobJSON, latest); err != nil {
			return nil, err
		}
	}
	// Recorded first: a `run` started after this must not relaunch them.
	if err := store.MarkKilled(killed); err != nil {
		return nil, fmt.Errorf("record the kill: %w", err)
	}
	if len(targets) == 0 && !wholeJob {
		return msgs, nil
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	caller := newCaller(master)
	sub, ctx, err := subscribe(ctx, caller, master, recordedIdentity(meta))
	if err != nil {
		return msgs, err
	}
	defer sub.Close()
	call := func(c *scheduler.Call) error { return callAs(ctx, caller, meta.FrameworkID, c) }
	for {
		if len(targets) == 0 {
			break
		}
		ev, err := sub.next()
		if merr, ok := errors.AsType[*MasterError](err); ok {
			if err, removed := forgetRemoved(store, "framework "+meta.FrameworkID, merr); removed {
				return msgs, fmt.Errorf("%w: nothing is left to kill", err)
			}
		}
		if err != nil {
			return msgs, fmt.Errorf("while killing: %w", err)
		}
		switch ev.Type {
		case scheduler.Event_SUBSCRIBED:
			for id, r := range targets {
				msgs = append(msgs, fmt.Sprintf("instance %d: killing task %s", r.Instance, id))
				if err := call(calls.Kill(id, r.AgentID)); err != nil {
					return msgs, err
				}
			}
		case scheduler.Event_OFFERS:
			for _, o := range ev.Offers.Offers {
				if err := call(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Minute))); err != nil {
					return msgs, err
				}
			}
		case scheduler.Event_UPDATE:
			st := ev.Update.Status
			if _, _, err := recordUpdate(store, log, st); err != nil {
				return msgs, err
			}
			if len(st.UUID) > 0 {
				if err := call(calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID)); err != nil {
					return msgs, err
				}
			}
			if terminalState(st.GetState().String()) {
				delete(targets, st.TaskID.Value)
			}
		}
	}
	if wholeJob {
		if err := call(&scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
			return msgs, fmt.Errorf("teardown: %w", err)
		}
		if err := store.ForgetFramework(); err != nil {
			return msgs, err
		}
		msgs = append(msgs, "framework "+meta.FrameworkID+" torn down")
	}
	return msgs, nil
}

// recordedIdentity is the framework as `run` registered it. A database
// written before the user was recorded falls back to what `run` used then.
func recordedIdentity(meta Meta) identity {
	id := identity{ID: meta.FrameworkID, User: meta.User, Name: meta.FrameworkName}
	if id.User == "" {
		id.User = currentUser()
	}
	if id.Name == "" {
		id.Name = defaultFrameworkName
	}
	return id
}

// jobInstances lists every instance of the stored job, 0..Instances-1 as
// `run` launches them, with those that have a task recorded: an instance
// whose task was never launched (no offer fitted it yet) must be marked
// killed too, or a `run` after a kill that did not finish launches it.
// A database written before the job was stored gives the recorded ones.
func jobInstances(jobJSON []byte, latest map[int]TaskRecord) ([]int, error) {
	set := map[int]bool{}
	for i := range latest {
		set[i] = true
	}
	if len(jobJSON) > 0 {
		job, err := aurora.ParseJob(jobJSON)
		if err != nil {
			return nil, fmt.Errorf("the job stored in the database: %w", err)
		}
		for i := range max(job.Instances, 1) {
			set[i] = true
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}
