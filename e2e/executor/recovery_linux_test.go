package executore2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestRecoveryTimeout: the agent (a checkpointing framework, recovery
// timeout 2s) stops and never comes back. The executor keeps the task
// running while it tries to re-subscribe, then, MESOS_RECOVERY_TIMEOUT
// after the disconnect, kills the task and exits.
func TestRecoveryTimeout(t *testing.T) {
	const recovery = 2 * time.Second
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--recovery-timeout", recovery.String(), "--subscription-backoff-max", "200ms",
		"--executor-shutdown-grace-period", "2s")
	marker := uniqueSleep()
	killMarkedAtCleanup(t, marker)

	taskID := newID("orphaned")
	l := launch(t, a.URL, commandTask(taskID, "sleep "+shellWord(marker)+"; true"))
	l.await(t, mesos.TASK_STARTING)
	l.await(t, mesos.TASK_RUNNING)
	ex := a.Executor(t, fakeagent.CLIFrameworkID, taskID)
	killExecutorAtCleanup(t, ex.PID)
	if fw := a.State(t).Frameworks[0]; !fw.Checkpoint {
		t.Fatalf("framework %s does not checkpoint: the executor would not wait for the agent at all", fw.ID)
	}
	testenv.WaitUntil(t, 10*time.Second, "the task's sleep", func() bool { return len(processesWith(marker)) == 1 })

	stopped := time.Now()
	a.Stop(t)
	if !e2etest.Alive(ex.PID) || len(processesWith(marker)) != 1 {
		t.Fatal("the executor or its task ended as soon as the agent stopped; with checkpointing both must wait for the agent")
	}
	testenv.WaitUntil(t, recovery+30*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(ex.PID) })
	if took := time.Since(stopped); took < recovery {
		t.Errorf("the executor exited %s after the agent stopped, before MESOS_RECOVERY_TIMEOUT (%s)", took, recovery)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("the executor exited but the task's processes still run: %v", left)
	}
	// The executor says why in its log (stderr in the sandbox).
	b, _ := os.ReadFile(filepath.Join(ex.Sandbox, "stderr"))
	if !strings.Contains(string(b), "MESOS_RECOVERY_TIMEOUT") {
		t.Errorf("the executor's log does not name MESOS_RECOVERY_TIMEOUT as the reason it exited:\n%s", b)
	}
}
