package reliability

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// agentRecoveryDelay is the fake agent's 503 phase after each restart
// (the containerizer's recovery, Config.RecoveryDelay). The executors'
// re-registration window after it is Mesos' default, 2 s
// (--executor_reregistration_timeout, src/slave/constants.hpp).
const agentRecoveryDelay = 500 * time.Millisecond

// agentRestarted: the strict fake agent is stopped and started again on
// the same work dir, rounds times, while tasks run under the real
// dewar-executor. Each round launches a task, waits for its TASK_STARTING
// to be checkpointed, stops the agent, lets the task become healthy while
// no agent listens (the executor holds TASK_RUNNING unacknowledged),
// starts the agent again and at once lets the task finish, so that
// TASK_FINISHED meets the agent's 503 phase or its re-registration
// window. A witness task, announced in ZooKeeper, runs through every
// restart. Figures: updates lost (a round's STARTING, RUNNING or FINISHED
// not checkpointed), duplicate updates (a UUID or a state checkpointed
// twice for one task), task interruptions (a task ended other than
// FINISHED by its executor, the witness's executor or process replaced,
// its member re-created or gone). Must hold: 0, 0, 0.
func agentRestarted(t *testing.T, ens *zktest.Ensemble, sc scale) result {
	rounds := sc.agentRestarts
	res := result{
		scenario: fmt.Sprintf("agent restart mid-task ×%d (strict fake agent, %v of 503, then the 2 s re-registration window)", rounds, agentRecoveryDelay),
		must:     "0 updates lost, 0 duplicates, 0 task interruptions",
	}
	n := newFakeNode(t, fakeagent.Config{RecoveryDelay: agentRecoveryDelay})
	zkFlag := []string{"--announcer-ensemble", strings.Join(ens.Addrs(), ",")}

	witness := "witness-" + testenv.RandomHex(4)
	wTask, wEx := n.launch(t, fmt.Sprintf(sleeperJob, witness), witness, zkFlag...)
	n.waitState(t, time.Minute, wTask, mesos.TASK_RUNNING)
	wState := n.executorState(t, wEx)
	r := reader(t, ens)
	member := waitMember(t, r, "/aurora/root/test/"+witness)
	_, before, err := r.Get(member)
	if err != nil {
		t.Fatal(err)
	}
	wProcs := e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + wState.Sandbox)
	slices.Sort(wProcs)

	var tasks []string
	var recovered []time.Duration // restart → the round's TASK_FINISHED checkpointed
	for i := range rounds {
		dir := t.TempDir()
		healthy, done := filepath.Join(dir, "healthy"), filepath.Join(dir, "done")
		name := fmt.Sprintf("gated%d-%s", i, testenv.RandomHex(3))
		id, exID := n.launch(t, e2etest.GatedJob(name, healthy, done), name)
		tasks = append(tasks, id)
		n.waitState(t, time.Minute, id, mesos.TASK_STARTING)
		ex := n.executorState(t, exID)

		n.stop()
		touch(t, healthy)
		// The executor's log (its stderr, in the run dir) is the only
		// witness of an update no agent received.
		execLog := filepath.Join(ex.Sandbox, "stderr")
		testenv.WaitUntil(t, 30*time.Second, "the executor to report TASK_RUNNING with the agent down", func() bool {
			return logHas(execLog, `"task_id":"`+id+`"`, `"state":"TASK_RUNNING"`)
		})
		restarted := time.Now()
		n.start()
		touch(t, done)
		fin := n.waitState(t, time.Minute, id, mesos.TASK_FINISHED)
		recovered = append(recovered, fin.at.Sub(restarted))
		select {
		case <-n.executorDone(exID):
		case <-time.After(time.Minute):
			t.Fatalf("round %d: executor %s still running a minute after TASK_FINISHED", i, exID)
		}
	}

	lost, dups, interrupted := 0, 0, 0
	var notes []string
	for _, id := range tasks {
		l, d, bad := checkUpdates(n.updatesOf(id), []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED})
		lost, dups = lost+l, dups+d
		if bad != "" {
			interrupted++
			notes = append(notes, id+": "+bad)
		}
	}
	// The witness: still RUNNING, the same executor and processes, the
	// same member with the same data.
	_, wd, _ := checkUpdates(n.updatesOf(wTask), []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING})
	dups += wd
	// After the last restart the witness may still be re-subscribing
	// (the agent answers 503, then it waits up to a second): give it the
	// re-registration window, after which the agent has destroyed an
	// executor that did not come back.
	var now fakeagent.ExecutorState
	testenv.WaitUntil(t, time.Minute, "the witness executor to re-subscribe or be destroyed", func() bool {
		now = n.executorState(t, wEx)
		return now.State != "registering"
	})
	procs := e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + wState.Sandbox)
	slices.Sort(procs)
	_, after, err := r.Get(member)
	switch {
	case now.PID != wState.PID || now.State != "subscribed":
		interrupted++
		notes = append(notes, fmt.Sprintf("witness executor: pid %d (%s), was %d", now.PID, now.State, wState.PID))
	case !slices.Equal(procs, wProcs):
		interrupted++
		notes = append(notes, fmt.Sprintf("witness processes %v, were %v", procs, wProcs))
	case err != nil || after.Czxid != before.Czxid || after.Version != before.Version:
		interrupted++
		notes = append(notes, fmt.Sprintf("witness member %s: %v, czxid %d→%d, version %d→%d", member, err, before.Czxid, after.Czxid, before.Version, after.Version))
	}
	n.kill(t, wTask)
	n.waitState(t, time.Minute, wTask, mesos.TASK_KILLED)
	refused := recoveryRefusals(t, n.cfg.WorkDir)
	for _, note := range notes {
		t.Log(note)
	}
	slices.Sort(recovered)
	res.figure = fmt.Sprintf("%d updates lost, %d duplicate updates, %d task interruptions; a round's TASK_FINISHED checkpointed %s after the restart (median; worst %s); the announced witness task kept its executor, processes and member; executors were answered 503 (recovering) %d times",
		lost, dups, interrupted, secs(recovered[len(recovered)/2]), secs(recovered[len(recovered)-1]), refused)
	if interrupted > 0 {
		res.figure = fmt.Sprintf("%d updates lost, %d duplicate updates, %d task interruptions (%s)", lost, dups, interrupted, strings.Join(notes, "; "))
	}
	res.pass = lost == 0 && dups == 0 && interrupted == 0
	return res
}

// checkUpdates compares a task's checkpointed updates with the states it
// must go through, in order: lost counts states missing, dups UUIDs or
// states checkpointed twice, and bad says why the task did not end as the
// last state says (or ran on when it has none) or was filled in for by
// the agent.
func checkUpdates(ups []update, want []mesos.TaskState) (lost, dups int, bad string) {
	uuids := map[string]bool{}
	states := map[mesos.TaskState]int{}
	var got []string
	for _, u := range ups {
		k := hex.EncodeToString(u.st.UUID)
		if uuids[k] {
			dups++
		}
		uuids[k] = true
		states[u.st.GetState()]++
		got = append(got, u.st.GetState().String())
		if u.st.GetSource() != mesos.SOURCE_EXECUTOR && bad == "" {
			bad = fmt.Sprintf("%s from %s (%s): %q", u.st.GetState(), u.st.GetSource(), u.st.GetReason(), u.st.GetMessage())
		}
	}
	for _, s := range want {
		switch c := states[s]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	if bad == "" && len(ups) > 0 {
		last := ups[len(ups)-1].st.GetState()
		if fakeagent.IsTerminal(last) && last != want[len(want)-1] {
			bad = "ended " + strings.Join(got, " ")
		}
	}
	return lost, dups, bad
}

// recoveryRefusals counts the calls the executors under work dir logged
// as answered "503 Agent has not finished recovery" (their logs are the
// run dirs' stderr).
func recoveryRefusals(t *testing.T, work string) int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(work, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range logs {
		if strings.Contains(l, "/latest/") { // a link to a run dir
			continue
		}
		b, _ := os.ReadFile(l)
		n += strings.Count(string(b), "not finished recovery")
	}
	return n
}

// waitMember waits for the one member of a serverset and returns its path.
func waitMember(t *testing.T, r *zk.Conn, path string) string {
	t.Helper()
	var node string
	testenv.WaitUntil(t, time.Minute, "the member of "+path, func() bool {
		kids, _, err := r.Children(path)
		if err == nil && len(kids) == 1 {
			node = path + "/" + kids[0]
			return true
		}
		return false
	})
	return node
}

// logHas says whether one line of the file holds every string.
func logHas(path string, all ...string) bool {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
