package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap/zaptest"
)

// An ERROR from the master ends Run instead of re-subscribing forever:
// here the framework was torn down while no `run` was up, so the master
// answers the next SUBSCRIBE with "Framework has been removed"
// (Master::validateFramework). Run forgets the framework and says that a
// new run registers a new one.
func TestRunEndsWhenFrameworkWasRemoved(t *testing.T) {
	addr, store := removedFramework(t)

	r := startStub(t, addr, store, "web_cni.json")
	err := r.ended(t, "the master answered that the framework was removed")
	if merr, ok := errors.AsType[*MasterError](err); !ok || merr.Message != "Framework has been removed" ||
		!strings.Contains(err.Error(), "run again to register a new framework") {
		t.Fatalf("Run = %v; want the master's ERROR and what to do", err)
	}
	if meta, _ := store.Meta(); meta.FrameworkID != "" {
		t.Fatalf("framework %s still recorded; want it forgotten", meta.FrameworkID)
	}
}

// kill --master of a framework the master has removed forgets it too: its
// tasks are gone with it.
func TestKillDirectForgetsRemovedFramework(t *testing.T) {
	addr, store := removedFramework(t)

	_, err := KillDirect(context.Background(), addr, store, -1, zaptest.NewLogger(t))
	if merr, ok := errors.AsType[*MasterError](err); !ok || merr.Message != "Framework has been removed" ||
		!strings.Contains(err.Error(), "forgot it in the database") {
		t.Fatalf("KillDirect = %v; want the master's ERROR and that the framework was forgotten", err)
	}
	if meta, _ := store.Meta(); meta.FrameworkID != "" {
		t.Fatalf("framework %s still recorded; want it forgotten", meta.FrameworkID)
	}
}

// removedFramework runs the job until both instances run, stops `run` and
// removes its framework from the master, as an operator or another
// scheduler would: subscribed as it, which the master asks for before any
// other call. It returns the master's address and the stub's database.
func removedFramework(t *testing.T) (string, *Store) {
	t.Helper()
	_, addr := startMaster(t)
	store := newStore(t)
	runUntilRunning(t, addr, store)
	meta, err := store.Meta()
	if err != nil || meta.FrameworkID == "" {
		t.Fatalf("meta %+v, %v; want a framework recorded", meta, err)
	}
	caller := newCaller(addr)
	sub, ctx, err := subscribe(context.Background(), caller, addr, recordedIdentity(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ev, err := sub.next(); err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v, %v; want SUBSCRIBED", ev.Type, err)
	}
	if err := callAs(ctx, caller, meta.FrameworkID, &scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		t.Fatal(err)
	}
	return addr, store
}
