package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// Killing instances that have no task (no offer ever fitted them) leaves
// nothing to run: Run tears the framework down and ends, and the kill
// still gets its answer.
func TestKillOfInstancesWithoutTasksEndsRun(t *testing.T) {
	a, addr := startMaster(t)
	store := newStore(t)
	// An executor larger than the node: every offer is declined.
	r := startStubWith(t, addr, store, "web_cni.json", func(c *Config) { c.Executor.CPUs = 100 })
	testenv.WaitUntil(t, 30*time.Second, "an offer declined", func() bool {
		_, declines := a.counts()
		return declines > 0
	})

	out, err := requestKillWhenSubscribed(t, context.Background(), store, -1)
	if err != nil || !strings.Contains(out, "instance 0: no task; will not be launched") || !strings.Contains(out, "instance 1: no task") {
		t.Fatalf("kill the job = %q, %v; want both instances reported without a task", out, err)
	}
	if err := r.ended(t, "every instance was killed"); err != nil {
		t.Fatalf("Run = %v, want nil: nothing was left to run", err)
	}
	if launches, _ := a.counts(); launches != 0 {
		t.Fatalf("%d launches, want none", launches)
	}
	if meta, _ := store.Meta(); meta.FrameworkID != "" {
		t.Fatalf("framework %s still recorded after the job ended", meta.FrameworkID)
	}
	a.waitTornDown(t)
}
