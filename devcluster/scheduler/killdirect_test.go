package scheduler

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// Killing the whole job marks every instance of the stored job killed
// before it reaches the master, those never launched too: when the kill
// does not get through (here no master answers, and the caller gives up
// at once), a later `run` must not launch instance 1 either.
func TestKillDirectMarksEveryInstanceOfTheJob(t *testing.T) {
	store := newStore(t)
	_, data := loadJob(t, "web_cni.json") // 2 instances
	err := store.UpdateMeta(func(m *Meta) { m.FrameworkID, m.User, m.JobJSON = "fw-1", "root", data })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec := TaskRecord{TaskID: "task-0", Instance: 0, AgentID: "agent-1", State: "TASK_RUNNING", Launched: now, Updated: now}
	if err := store.PutTask(rec); err != nil {
		t.Fatal(err)
	}
	// An address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := KillDirect(ctx, addr, store, -1, zaptest.NewLogger(t)); err == nil {
		t.Fatalf("KillDirect with no master at %s succeeded", addr)
	}
	if meta, _ := store.Meta(); !slices.Equal(meta.Killed, []int{0, 1}) {
		t.Fatalf("killed instances recorded = %v, want [0 1]: a later run would launch instance 1", meta.Killed)
	}
}
