package executore2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestKillLeavesNoProcess: a framework KILLs a task whose shell
// double-forks a `sleep` into a session of its own (so neither its process
// group nor the agent's session-kill can reach it) next to a foreground
// `sleep`. After TASK_KILLED no process of the task is left: the executor,
// a child subreaper, adopted the orphan and killed it too.
func TestKillLeavesNoProcess(t *testing.T) {
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", "3s")
	marker := uniqueSleep()
	killMarkedAtCleanup(t, marker)

	f := subscribeFramework(t, a.URL)
	taskID := newID("double-fork")
	// Only the sleeps' command lines hold the marker, not bash's; `; true`
	// keeps bash from exec'ing the last sleep.
	agentID := f.launchCommand(taskID, fmt.Sprintf("(setsid sleep %s &) ; sleep %s; true", shellWord(marker), shellWord(marker)))
	f.Update(mesos.TASK_STARTING)
	f.Update(mesos.TASK_RUNNING)
	ex := a.Executor(t, f.ID, taskID)
	killExecutorAtCleanup(t, ex.PID)

	// Both sleeps run before the kill, one of them outside the task's
	// process group and session.
	testenv.WaitUntil(t, 20*time.Second, "both sleeps running", func() bool { return len(processesWith(marker)) == 2 })
	orphans := 0
	for _, pid := range processesWith(marker) {
		sid, ppid := statOf(t, pid)
		t.Logf("before KILL: pid %d parent %d session %d: %s", pid, ppid, sid, cmdline(pid))
		if sid == ex.PID {
			t.Fatalf("sleep %d is in the executor's session: the agent's session kill would reach it, the test proves nothing", pid)
		}
		if ppid == ex.PID {
			orphans++ // re-parented to the executor, the child subreaper
		}
	}
	if orphans != 1 {
		t.Fatalf("want the double-forked sleep orphaned and adopted by the executor (pid %d); %d sleeps are its children", ex.PID, orphans)
	}

	f.Call(calls.Kill(taskID, agentID))
	st := f.Update(mesos.TASK_KILLED)
	if st.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_KILLED from %s (%s), want from the executor", st.GetSource(), st.GetMessage())
	}
	// TASK_KILLED is reported once the task's processes are gone: checked
	// at once, not polled.
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("after TASK_KILLED, task processes still run: %v", left)
	}
	// The executor then exits, once its updates are acknowledged.
	testenv.WaitUntil(t, 20*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(ex.PID) })
}
