package reliability

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/mesostest"
	"github.com/dewarhq/dewar/internal/zktest"
)

// flapAddr is an address of the cluster's first network (SubnetA) that its
// IPAM never hands out in these tests (it allocates from .2 up).
const flapAddr = "198.18.50.250/24"

// mesosAgentRestarted: the real mesos-agent (internal/mesostest: master,
// agent with the network/cni isolator, the scheduler stub, all in a node
// namespace) is SIGKILLed under a running task and restarted on the same
// work dir, rounds times. While it is down, an address is added to (or
// removed from) the task's eth0, so the executor makes an update no agent
// can take: it must hold it and re-send it when it subscribes again.
// Figures: updates lost (made by the executor, per its log, but not in
// the agent's checkpointed stream, or never received by the scheduler),
// duplicate updates (a UUID checkpointed or acknowledged more than once),
// task interruptions (a process of the task replaced, the executor killed
// as un-reregistered, the task not RUNNING at the master). Must hold: 0,
// 0, 0. Mesos itself may deliver an update to the scheduler twice
// (at-least-once; a re-registering agent resends from both
// Slave::reregistered and Slave::updateFramework, src/slave/slave.cpp):
// that is counted apart.
//
// `make test` runs one such restart as e2e/mesos's TestAgentRestartMidTask;
// this repeats it in the full run only.
func mesosAgentRestarted(t *testing.T, _ *zktest.Ensemble, sc scale) result {
	rounds := sc.mesosRestarts
	res := result{
		scenario: fmt.Sprintf("agent restart mid-task ×%d under the real mesos-agent (SIGKILL, restart on the same work dir; an address change while it is down)", rounds),
		must:     "0 updates lost, 0 duplicates, 0 task interruptions",
	}
	c := mesostest.New(t)
	s := c.StartStub(t, c.Job(t, 1, 0))
	taskID := c.WaitRunning(t, s, 1)[0].TaskID
	c.WaitFor(t, 30*time.Second, "every update acknowledged", func() bool { return mesostest.AllAcked(c.TaskStream(t, taskID)) })
	procs := c.TaskProcesses()
	slices.Sort(procs)
	if len(procs) < 2 {
		t.Fatalf("want the executor and the web server, found processes %v", procs)
	}

	var recovered []time.Duration // restart → the held update acknowledged
	for i := range rounds {
		old := c.Agent()
		if err := old.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-old.Done
		made := len(c.ExecutorUpdates(t))
		verb := []string{"add", "del"}[i%2]
		if out, err := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(procs[0])+"/ns/net", "ip", "addr", verb, flapAddr, "dev", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("round %d: ip addr %s %s in the task's namespace: %v: %s", i, verb, flapAddr, err, out)
		}
		c.WaitFor(t, 30*time.Second, "the executor's update with the agent down", func() bool { return len(c.ExecutorUpdates(t)) > made })
		restarted := time.Now()
		a := c.StartAgent(t)
		c.WaitFor(t, 60*time.Second, "the held update checkpointed and acknowledged", func() bool {
			recs := c.TaskStream(t, taskID)
			return mesostest.AllAcked(recs) && updatesIn(recs) == len(c.ExecutorUpdates(t))
		})
		recovered = append(recovered, time.Since(restarted))
		if strings.Contains(a.Output(), "Killing un-reregistered executor") {
			t.Errorf("round %d: the restarted agent killed the executor as un-reregistered", i)
		}
	}

	recs := c.TaskStream(t, taskID)
	lost, dups, redelivered := countStream(recs, c.ExecutorUpdates(t), s.Updates(t))
	interrupted := 0
	now := c.TaskProcesses()
	slices.Sort(now)
	if !slices.Equal(now, procs) {
		interrupted++
		t.Logf("the task's processes are %v, were %v", now, procs)
	}
	if st := c.MasterTasks(t)[taskID].State; st != "TASK_RUNNING" {
		interrupted++
		t.Logf("the master has the task as %s", st)
	}
	for _, a := range c.Agents {
		if strings.Contains(a.Output(), "Killing un-reregistered executor") {
			interrupted++
		}
	}
	t.Logf("checkpointed stream:\n%s", mesostest.DescribeStream(recs))
	slices.Sort(recovered)
	res.figure = fmt.Sprintf("%d updates lost, %d duplicate updates, %d task interruptions; %d updates made with the agent down, each checkpointed and acknowledged %s after the restart (median; worst %s); Mesos re-delivered %d to the scheduler (at-least-once)",
		lost, dups, interrupted, rounds, secs(recovered[len(recovered)/2]), secs(recovered[len(recovered)-1]), redelivered)
	res.pass = lost == 0 && dups == 0 && interrupted == 0
	return res
}

// updatesIn counts the updates (not acknowledgements) of a stream.
func updatesIn(recs []mesostest.StreamRecord) int {
	n := 0
	for _, r := range recs {
		if !r.Ack {
			n++
		}
	}
	return n
}

// countStream compares what the executor made, what the agent
// checkpointed and what the scheduler received: lost counts updates made
// but not checkpointed, or checkpointed but never received; dups UUIDs
// checkpointed or acknowledged more than once; redelivered the scheduler's
// repeats of one UUID.
func countStream(recs []mesostest.StreamRecord, made []mesostest.SentUpdate, got []mesostest.StubUpdate) (lost, dups, redelivered int) {
	updates, acks := map[string]int{}, map[string]int{}
	for _, r := range recs {
		if r.Ack {
			acks[r.UUID]++
		} else {
			updates[r.UUID]++
		}
	}
	received := map[string]int{}
	for _, u := range got {
		received[u.UUID]++
	}
	for _, m := range made {
		if updates[m.UUID] == 0 {
			lost++
		}
	}
	for u, n := range updates {
		dups += n - 1
		dups += max(acks[u]-1, 0)
		switch r := received[u]; {
		case r == 0:
			lost++
		case r > 1:
			redelivered += r - 1
		}
	}
	return lost, dups, redelivered
}
