package reliability

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// sleeperJob is an Aurora service with one long process and an announce
// section; no health check, so it is RUNNING (and announced) once started.
const sleeperJob = `{
  "name": "%s", "role": "root", "environment": "test", "cluster": "rel",
  "instances": 1, "service": true, "max_task_failures": 1,
  "announce": {"primary_port": "http", "portmap": {"aurora": "http"}},
  "task": {
    "name": "sleeper",
    "processes": [{"name": "sleeper", "cmdline": "sleep 600", "max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5, "final": false}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 30
  }
}`

// realExecutorKilled: the real dewar-executor runs an announced Aurora task
// under the strict fake agent and is SIGKILLed (an OOM kill). Nothing
// withdraws its member: only the session timeout removes it (the
// executor's, announcer.DefaultSessionTimeout, as it has no flag for it).
// Figures: time until the member is gone; time until the agent reports
// the task; processes of the task left alive. Must hold: gone ≤ session
// timeout + 1 s, the task reported terminal, no orphan.
func realExecutorKilled(t *testing.T, ens *zktest.Ensemble, sc scale) result {
	bound := announcer.DefaultSessionTimeout + time.Second
	res := result{
		scenario: "dewar-executor SIGKILLed under the fake agent (announced Aurora task)",
		must:     fmt.Sprintf("member gone ≤ session timeout + 1 s = %s; TASK_FAILED (executor terminated); no orphan process", secs(bound)),
	}
	n := newFakeNode(t, fakeagent.Config{})
	name := "sleeper-" + testenv.RandomHex(4)
	taskID, exID := n.launch(t, fmt.Sprintf(sleeperJob, name), name, "--announcer-ensemble", strings.Join(ens.Addrs(), ","))
	ex := n.executorState(t, exID)
	pid, sandbox := ex.PID, ex.Sandbox
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	r := reader(t, ens)
	path := "/aurora/root/test/" + name
	node := waitMember(t, r, path)
	ok, _, ch, err := r.ExistsW(node)
	if err != nil || !ok {
		t.Fatalf("watch %s: exists=%v, %v", node, ok, err)
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone := waitGone(t, r, node, ch, t0)
	term := n.waitTerminal(t, time.Minute, taskID)
	reported, last := term.at.Sub(t0), term.st
	// The agent kills what the executor left behind once it sees it exit
	// (every task process carries the sandbox as MESOS_DIRECTORY).
	var orphans []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if orphans = e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + sandbox); len(orphans) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("terminal update: %s (%s) %q", last.State, last.GetReason(), last.GetMessage())
	failed := last.GetState() == mesos.TASK_FAILED && last.GetReason() == mesos.REASON_EXECUTOR_TERMINATED
	for _, p := range orphans {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	res.figure = fmt.Sprintf("member gone %s after SIGKILL (session timeout %s); agent reported %s (%s) after %s; %d orphan processes",
		secs(gone), secs(announcer.DefaultSessionTimeout), last.GetState(), last.GetReason(), secs(reported), len(orphans))
	res.pass = gone <= bound && failed && len(orphans) == 0
	return res
}

func isTerminal(s *mesos.TaskState) bool {
	if s == nil {
		return false
	}
	switch *s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST, mesos.TASK_ERROR,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
