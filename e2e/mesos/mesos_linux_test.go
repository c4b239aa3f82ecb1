package mesose2e_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// jobPath is the demo job's classic serverset path (role root, devel, hello).
const jobPath = "/aurora/root/devel/hello"

// TestDemoJobUnderRealMesos is the demo under a real master and agent: the
// stub launches the two-instance job through mesos-master, mesos-agent's
// network/cni isolator attaches each executor's container to both bridge
// networks, and dewar-executor runs the web server. Both instances run;
// the agent's view of the addresses (its CNI results, appended to each
// update's container_status) and the executor's own (its label) agree, in
// the master's and the agent's state and in what the stub stored; the
// serverset members carry those addresses and the assigned ports; every
// address answers HTTP; and the job's kill is clean.
func TestDemoJobUnderRealMesos(t *testing.T) {
	c := newCluster(t)
	s := c.startStub(t, c.job(t, 2, 0))
	started := time.Now()
	latest := c.waitRunning(t, s, 2)
	t.Logf("both instances RUNNING %v after the stub started", time.Since(started).Round(100*time.Millisecond))

	t.Run("the agent's and the executor's views agree", func(t *testing.T) {
		master, agent := c.masterTasks(t), c.agentTasks(t)
		for i, r := range latest {
			mt, ok := master[r.TaskID]
			if !ok || mt.State != "TASK_RUNNING" {
				t.Fatalf("instance %d: the master has task %s as %q, want TASK_RUNNING", i, r.TaskID, mt.State)
			}
			if !hasLabel(mt, scheduler.ExecutorNetworksLabel) {
				t.Errorf("instance %d: no status of task %s carries the executor's label %s", i, r.TaskID, scheduler.ExecutorNetworksLabel)
			}
			mv := mt.views(t)
			c.checkAgentView(t, i, mv)
			if mv.Executor == nil {
				t.Fatalf("instance %d: no executor view in the master's state: %+v", i, mt.Statuses)
			}
			if d := mv.Disagreement(); d != "" {
				t.Errorf("instance %d: the agent and the executor disagree: %s", i, d)
			}
			if got, want := fmt.Sprint(agent[r.TaskID].views(t)), fmt.Sprint(mv); got != want {
				t.Errorf("instance %d: the agent's /state has %s, the master's %s", i, got, want)
			}
			if got, want := fmt.Sprint(r.Views), fmt.Sprint(mv); got != want {
				t.Errorf("instance %d: the stub stored %s, the master has %s", i, got, want)
			}
		}
	})

	t.Run("serverset members carry the CNI addresses and the ports", func(t *testing.T) {
		conn := c.zkConn(t)
		// The classic path holds the primary (first) network's address;
		// <job>@<net> that network's. One member per instance on each.
		paths := map[string]string{jobPath: c.nets[0], jobPath + "@" + c.nets[0]: c.nets[0], jobPath + "@" + c.nets[1]: c.nets[1]}
		for path, nw := range paths {
			members := e2etest.AwaitMembers(t, conn, path, len(latest), 30*time.Second)
			for i, r := range latest {
				addrs := e2etest.AddressesOf(r.Views.Agent, nw)
				k := slices.IndexFunc(members, func(m announcer.Member) bool { return slices.Contains(addrs, m.ServiceEndpoint.Host) })
				if k < 0 {
					t.Errorf("%s: no member for instance %d (its %s addresses %v); members %+v", path, i, nw, addrs, members)
					continue
				}
				m := members[k]
				if m.ServiceEndpoint.Port != int(r.Ports["http"]) {
					t.Errorf("%s: instance %d's member has port %d, want the http port %d", path, i, m.ServiceEndpoint.Port, r.Ports["http"])
				}
				// The job's portmap: "aurora" is the http port.
				if ep, ok := m.AdditionalEndpoints["aurora"]; !ok || ep.Port != int(r.Ports["http"]) || ep.Host != m.ServiceEndpoint.Host {
					t.Errorf("%s: instance %d's aurora endpoint is %+v, want %s:%d", path, i, ep, m.ServiceEndpoint.Host, r.Ports["http"])
				}
				for name, port := range r.Ports {
					if ep, ok := m.AdditionalEndpoints[name]; !ok || ep.Port != int(port) {
						t.Errorf("%s: instance %d's %s endpoint is %+v, want port %d", path, i, name, ep, port)
					}
				}
			}
		}
	})

	t.Run("every instance answers on every address", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.ns), DisableKeepAlives: true}}
		for i, r := range latest {
			for _, nw := range r.Views.Agent {
				for _, a := range nw.Addresses {
					url := "http://" + net.JoinHostPort(a, strconv.Itoa(int(r.Ports["http"]))) + "/"
					body := e2etest.AwaitHTTP(t, client, url, 20*time.Second)
					if !strings.Contains(body, r.TaskID) {
						t.Errorf("instance %d on %s answered %q, want its task id", i, a, body)
					}
				}
			}
		}
	})

	t.Run("a kill is clean", func(t *testing.T) {
		procs := c.taskProcesses()
		if len(procs) < 2*len(latest) {
			t.Fatalf("want an executor and a web server per instance, found processes %v", procs)
		}
		if cg, cni := c.containerCgroups(), c.cniContainers(); len(cg) != len(latest) || len(cni) != len(latest) {
			t.Fatalf("want a container per instance, found freezer cgroups %v and CNI containers %v", cg, cni)
		}
		if out, err := c.killJob(s); err != nil {
			t.Fatalf("dewar-scheduler kill: %v\n%s", err, out)
		}
		select {
		case <-s.p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("the stub did not end within 60s of the kill")
		}
		master := c.masterTasks(t)
		for i, r := range c.latest(t, s) {
			if r.State != "TASK_KILLED" {
				t.Errorf("instance %d: the stub has %s (%s), want TASK_KILLED", i, r.State, r.Message)
			}
			if got := master[r.TaskID].State; got != "TASK_KILLED" {
				t.Errorf("instance %d: the master has %s, want TASK_KILLED", i, got)
			}
		}
		conn := c.zkConn(t)
		for _, path := range []string{jobPath, jobPath + "@" + c.nets[0], jobPath + "@" + c.nets[1]} {
			testenv.WaitUntil(t, 30*time.Second, "no member left in "+path, func() bool {
				entries, err := announcer.ListMembers(conn, path)
				if err != nil {
					t.Fatal(err)
				}
				return len(entries) == 0
			})
		}
		testenv.WaitUntil(t, 30*time.Second, "no executor or task process left", func() bool {
			for _, pid := range procs {
				if syscall.Kill(pid, 0) == nil {
					return false
				}
			}
			return len(c.taskProcesses()) == 0
		})
		testenv.WaitUntil(t, 30*time.Second, "the agent to destroy every container (CNI DEL, cgroups)", func() bool {
			return len(c.cniContainers()) == 0 && len(c.containerCgroups()) == 0
		})
		for _, r := range latest {
			c.checkUpdates(t, s, r.TaskID, "TASK_KILLED")
		}
	})
}

// TestAgentRestartMidTask SIGKILLs the agent under a running task of a
// checkpointing framework (the stub checkpoints) and restarts it on the
// same work dir. The task becomes healthy while the agent is down, so the
// executor must hold its TASK_RUNNING until it has subscribed again (within
// --executor_reregistration_timeout of the agent's recovery). Afterwards
// the task still runs (same processes, still answering), no status update
// was lost or duplicated (the agent's checkpointed stream and what the stub
// received agree, every update accepted once and acknowledged once), and a
// kill after the restart is clean.
func TestAgentRestartMidTask(t *testing.T) {
	c := newCluster(t)
	const healthyAfter = 4 * time.Second
	s := c.startStub(t, c.job(t, 1, healthyAfter))
	var taskID string
	testenv.WaitUntil(t, 90*time.Second, "TASK_STARTING acknowledged", func() bool {
		if !s.p.alive() {
			t.Fatalf("the stub exited:\n%s", tail(s.p.output(), 40))
		}
		for _, r := range c.latest(t, s) {
			if r.State == "TASK_STARTING" {
				taskID = r.TaskID
			}
		}
		return taskID != "" && allAcked(c.taskStream(t, taskID))
	})
	// TASK_STARTING goes out before the processes start: wait for them.
	var procs []int
	testenv.WaitUntil(t, 30*time.Second, "the executor and the web server", func() bool {
		procs = c.taskProcesses()
		return len(procs) >= 2
	})

	old := c.agent()
	if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.done
	if c.executorSentRunning(t) {
		t.Fatalf("the executor sent TASK_RUNNING before the agent went down: raise healthyAfter (%v) for this machine", healthyAfter)
	}
	// The task becomes healthy with the agent down: the executor has an
	// update it cannot deliver yet.
	testenv.WaitUntil(t, 30*time.Second, "the executor's TASK_RUNNING while the agent is down", func() bool { return c.executorSentRunning(t) })
	restarted := time.Now()
	a := c.startAgent(t) // returns once re-registered, which is after recovery
	testenv.WaitUntil(t, 30*time.Second, "the agent to finish recovery", func() bool { return strings.Contains(a.output(), "Finished recovery") })
	t.Logf("agent recovered and re-registered %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	log := a.output()
	if !strings.Contains(log, "Received Subscribe request for HTTP executor") {
		t.Errorf("the restarted agent logged no SUBSCRIBE of the executor")
	}
	if strings.Contains(log, "Killing un-reregistered executor") {
		t.Errorf("the restarted agent killed the executor as un-reregistered")
	}
	r := c.waitRunning(t, s, 1)[0]
	if r.TaskID != taskID {
		t.Fatalf("RUNNING is task %s, want %s (no relaunch)", r.TaskID, taskID)
	}
	for _, pid := range procs {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("process %d of the task did not survive the agent's restart: %v", pid, err)
		}
	}
	if got := c.agentTasks(t)[r.TaskID].State; got != "TASK_RUNNING" {
		t.Errorf("after the restart the agent has the task as %q, want TASK_RUNNING", got)
	}
	if got := c.masterTasks(t)[r.TaskID].State; got != "TASK_RUNNING" {
		t.Errorf("after the restart the master has the task as %q, want TASK_RUNNING", got)
	}
	if v := c.masterTasks(t)[r.TaskID].views(t); v.Disagreement() != "" || v.Executor == nil {
		t.Errorf("after the restart the views disagree or the executor's is missing: %+v", v)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.ns), DisableKeepAlives: true}}
	for _, nw := range r.Views.Agent {
		for _, addr := range nw.Addresses {
			e2etest.AwaitHTTP(t, client, "http://"+net.JoinHostPort(addr, strconv.Itoa(int(r.Ports["http"])))+"/", 20*time.Second)
		}
	}
	c.checkUpdates(t, s, r.TaskID, "TASK_RUNNING")

	// An update after the restart goes the whole way too.
	if out, err := c.killJob(s); err != nil {
		t.Fatalf("dewar-scheduler kill: %v\n%s", err, out)
	}
	select {
	case <-s.p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the stub did not end within 60s of the kill")
	}
	testenv.WaitUntil(t, 30*time.Second, "no executor or task process left", func() bool { return len(c.taskProcesses()) == 0 })
	testenv.WaitUntil(t, 30*time.Second, "the agent to destroy the container (CNI DEL, cgroups)", func() bool {
		return len(c.cniContainers()) == 0 && len(c.containerCgroups()) == 0
	})
	c.checkUpdates(t, s, r.TaskID, "TASK_KILLED")
}

// waitRunning polls the stub's store until n instances are RUNNING; a task
// ending or the stub exiting fails at once.
func (c *cluster) waitRunning(t *testing.T, s *stub, n int) map[int]scheduler.TaskRecord {
	t.Helper()
	var latest map[int]scheduler.TaskRecord
	testenv.WaitUntil(t, 90*time.Second, fmt.Sprintf("%d instances RUNNING", n), func() bool {
		if !s.p.alive() {
			t.Fatalf("the stub exited:\n%s", tail(s.p.output(), 40))
		}
		latest = c.latest(t, s)
		running := 0
		for i, r := range latest {
			switch r.State {
			case "TASK_RUNNING":
				running++
			case "TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_KILLED", "TASK_FINISHED":
				t.Fatalf("instance %d: %s %s (%s)", i, r.State, r.Reason, r.Message)
			}
		}
		return running == n
	})
	return latest
}

func (c *cluster) latest(t *testing.T, s *stub) map[int]scheduler.TaskRecord {
	t.Helper()
	store, err := scheduler.OpenStore(s.db)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := store.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	return scheduler.Latest(recs)
}

// checkAgentView checks the agent's CNI results: both networks, each
// address inside its network's ranges, both families on the second.
func (c *cluster) checkAgentView(t *testing.T, instance int, v scheduler.Views) {
	t.Helper()
	if len(v.Agent) != 2 {
		t.Fatalf("instance %d: agent view %+v, want both networks", instance, v.Agent)
	}
	ranges := map[string][]string{c.nets[0]: {subnetA}, c.nets[1]: {subnetB, subnetB6}}
	for _, nw := range v.Agent {
		want, ok := ranges[nw.Name]
		if !ok {
			t.Errorf("instance %d: unexpected network %q", instance, nw.Name)
			continue
		}
		if len(nw.Addresses) != len(want) {
			t.Errorf("instance %d: %s has addresses %v, want one in each of %v", instance, nw.Name, nw.Addresses, want)
		}
		for _, a := range nw.Addresses {
			if !inSubnets(a, want...) {
				t.Errorf("instance %d: %s address %s is outside %v", instance, nw.Name, a, want)
			}
		}
	}
}

// checkUpdates compares what the stub received for taskID with the agent's
// checkpointed stream: every update the executor sent was accepted once and
// acknowledged once, and the stub received each of them, in order, and no
// other; the last is in state last. Mesos delivers at least once: the
// same update (same UUID) may reach the stub twice, which is logged, not an
// error (a re-registering agent resends its pending update from both
// Slave::reregistered and Slave::updateFramework, src/slave/slave.cpp).
func (c *cluster) checkUpdates(t *testing.T, s *stub, taskID, last string) {
	t.Helper()
	var recs []streamRecord
	testenv.WaitUntil(t, 30*time.Second, "every update of "+taskID+" acknowledged", func() bool {
		recs = c.taskStream(t, taskID)
		return allAcked(recs)
	})
	checkpointed := checkStream(t, taskID, recs)
	var want []string
	for _, r := range recs {
		if !r.Ack {
			want = append(want, r.Status.GetState().String()+" "+r.UUID)
		}
	}
	var got []string
	seen := map[string]bool{}
	for _, u := range s.updates(t) {
		if u.Task != taskID {
			continue
		}
		if u.UUID == "" {
			t.Errorf("task %s: the stub received %s without a UUID (not from the executor)", taskID, u.State)
			continue
		}
		if seen[u.UUID] {
			t.Logf("task %s: Mesos delivered %s %s again (at-least-once delivery)", taskID, u.State, u.UUID)
			continue
		}
		seen[u.UUID] = true
		got = append(got, u.State+" "+u.UUID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("task %s: the stub received %v, the agent checkpointed %v:\n%s", taskID, got, want, describe(recs))
	}
	if len(checkpointed) == 0 || checkpointed[len(checkpointed)-1] != last {
		t.Errorf("task %s: updates %v, want the last %s", taskID, checkpointed, last)
	}
	t.Logf("task %s: updates %v: each accepted and acknowledged once, all received by the stub in order", taskID, checkpointed)
}

func hasLabel(tk stateTask, key string) bool {
	for _, s := range tk.Statuses {
		for _, l := range s.Labels {
			if l.Key == key {
				return true
			}
		}
	}
	return false
}
