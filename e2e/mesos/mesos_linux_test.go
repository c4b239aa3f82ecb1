package mesose2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/mesostest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/observer"
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
	c := mesostest.New(t)
	s := c.StartStub(t, c.Job(t, 2, 0))
	started := time.Now()
	latest := c.WaitRunning(t, s, 2)
	t.Logf("both instances RUNNING %v after the stub started", time.Since(started).Round(100*time.Millisecond))

	t.Run("the agent's and the executor's views agree", func(t *testing.T) {
		master, agent := c.MasterTasks(t), c.AgentTasks(t)
		for i, r := range latest {
			mt, ok := master[r.TaskID]
			if !ok || mt.State != "TASK_RUNNING" {
				t.Fatalf("instance %d: the master has task %s as %q, want TASK_RUNNING", i, r.TaskID, mt.State)
			}
			if !hasLabel(mt, scheduler.ExecutorNetworksLabel) {
				t.Errorf("instance %d: no status of task %s carries the executor's label %s", i, r.TaskID, scheduler.ExecutorNetworksLabel)
			}
			mv := mt.Views(t)
			checkAgentView(t, c, i, mv)
			if mv.Executor == nil {
				t.Fatalf("instance %d: no executor view in the master's state: %+v", i, mt.Statuses)
			}
			if d := mv.Disagreement(); d != "" {
				t.Errorf("instance %d: the agent and the executor disagree: %s", i, d)
			}
			if got, want := fmt.Sprint(agent[r.TaskID].Views(t)), fmt.Sprint(mv); got != want {
				t.Errorf("instance %d: the agent's /state has %s, the master's %s", i, got, want)
			}
			if got, want := fmt.Sprint(r.Views), fmt.Sprint(mv); got != want {
				t.Errorf("instance %d: the stub stored %s, the master has %s", i, got, want)
			}
		}
	})

	t.Run("the observer shows the agent's view beside the executor's", func(t *testing.T) {
		srv, err := observer.NewServer(observer.Options{Root: c.AgentWork, TTL: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		for i, r := range latest {
			var doc map[string]struct {
				Agent observer.AgentView `json:"agent_view"`
			}
			resp, err := http.Get(hs.URL + "/j/task/" + r.TaskID)
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			av := doc[r.TaskID].Agent
			var got []string
			for _, n := range av.Networks {
				for _, a := range n.Addresses {
					got = append(got, n.Name+"="+a.IP)
				}
			}
			var want []string
			for _, n := range r.Views.Agent {
				for _, a := range n.Addresses {
					want = append(want, n.Name+"="+a)
				}
			}
			// The agent lists networks in its own order (the stub sorts).
			slices.Sort(got)
			slices.Sort(want)
			if !av.Agrees || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("instance %d: the observer's agent view %v (agrees with the executor: %v, %s), want %v as the stub received it", i, got, av.Agrees, av.Note, want)
			}
		}
	})

	t.Run("serverset members carry the CNI addresses and the ports", func(t *testing.T) {
		conn := c.ZKConn(t)
		// The classic path holds the primary (first) network's address;
		// <job>@<net> that network's. One member per instance on each.
		paths := map[string]string{jobPath: c.Nets[0], jobPath + "@" + c.Nets[0]: c.Nets[0], jobPath + "@" + c.Nets[1]: c.Nets[1]}
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
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.NS), DisableKeepAlives: true}}
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
		procs := c.TaskProcesses()
		if len(procs) < 2*len(latest) {
			t.Fatalf("want an executor and a web server per instance, found processes %v", procs)
		}
		if cg, cni := c.ContainerCgroups(), c.CNIContainers(); len(cg) != len(latest) || len(cni) != len(latest) {
			t.Fatalf("want a container per instance, found freezer cgroups %v and CNI containers %v", cg, cni)
		}
		c.EndJob(t, s)
		master := c.MasterTasks(t)
		for i, r := range c.Latest(t, s) {
			if r.State != "TASK_KILLED" {
				t.Errorf("instance %d: the stub has %s (%s), want TASK_KILLED", i, r.State, r.Message)
			}
			if got := master[r.TaskID].State; got != "TASK_KILLED" {
				t.Errorf("instance %d: the master has %s, want TASK_KILLED", i, got)
			}
		}
		conn := c.ZKConn(t)
		for _, path := range []string{jobPath, jobPath + "@" + c.Nets[0], jobPath + "@" + c.Nets[1]} {
			c.WaitFor(t, 30*time.Second, "no member left in "+path, func() bool {
				entries, err := announcer.ListMembers(conn, path)
				if err != nil {
					t.Fatal(err)
				}
				return len(entries) == 0
			})
		}
		c.WaitFor(t, 30*time.Second, "no executor or task process left", func() bool {
			for _, pid := range procs {
				if syscall.Kill(pid, 0) == nil {
					return false
				}
			}
			return len(c.TaskProcesses()) == 0
		})
		c.WaitFor(t, 30*time.Second, "the agent to destroy every container (CNI DEL, cgroups)", func() bool {
			return len(c.CNIContainers()) == 0 && len(c.ContainerCgroups()) == 0
		})
		for _, r := range latest {
			c.CheckUpdates(t, s, r.TaskID, "TASK_KILLED")
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
	c := mesostest.New(t)
	const healthyAfter = 4 * time.Second
	s := c.StartStub(t, c.Job(t, 1, healthyAfter))
	var taskID string
	c.WaitFor(t, 90*time.Second, "TASK_STARTING acknowledged", func() bool {
		if !s.P.Alive() {
			t.Fatalf("the stub exited:\n%s", mesostest.Tail(s.P.Output(), 40))
		}
		for _, r := range c.Latest(t, s) {
			if r.State == "TASK_STARTING" {
				taskID = r.TaskID
			}
		}
		return taskID != "" && mesostest.AllAcked(c.TaskStream(t, taskID))
	})
	// TASK_STARTING goes out before the processes start: wait for them.
	var procs []int
	c.WaitFor(t, 30*time.Second, "the executor and the web server", func() bool {
		procs = c.TaskProcesses()
		return len(procs) >= 2
	})

	old := c.Agent()
	if err := old.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.Done
	if c.ExecutorSentRunning(t) {
		t.Fatalf("the executor sent TASK_RUNNING before the agent went down: raise healthyAfter (%v) for this machine", healthyAfter)
	}
	// The task becomes healthy with the agent down: the executor has an
	// update it cannot deliver yet.
	c.WaitFor(t, 30*time.Second, "the executor's TASK_RUNNING while the agent is down", func() bool { return c.ExecutorSentRunning(t) })
	restarted := time.Now()
	a := c.StartAgent(t) // returns once re-registered, which is after recovery
	c.WaitFor(t, 30*time.Second, "the agent to finish recovery", func() bool { return strings.Contains(a.Output(), "Finished recovery") })
	t.Logf("agent recovered and re-registered %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	log := a.Output()
	if !strings.Contains(log, "Received Subscribe request for HTTP executor") {
		t.Errorf("the restarted agent logged no SUBSCRIBE of the executor")
	}
	if strings.Contains(log, "Killing un-reregistered executor") {
		t.Errorf("the restarted agent killed the executor as un-reregistered")
	}
	r := c.WaitRunning(t, s, 1)[0]
	if r.TaskID != taskID {
		t.Fatalf("RUNNING is task %s, want %s (no relaunch)", r.TaskID, taskID)
	}
	for _, pid := range procs {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("process %d of the task did not survive the agent's restart: %v", pid, err)
		}
	}
	if got := c.AgentTasks(t)[r.TaskID].State; got != "TASK_RUNNING" {
		t.Errorf("after the restart the agent has the task as %q, want TASK_RUNNING", got)
	}
	if got := c.MasterTasks(t)[r.TaskID].State; got != "TASK_RUNNING" {
		t.Errorf("after the restart the master has the task as %q, want TASK_RUNNING", got)
	}
	if v := c.MasterTasks(t)[r.TaskID].Views(t); v.Disagreement() != "" || v.Executor == nil {
		t.Errorf("after the restart the views disagree or the executor's is missing: %+v", v)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.NS), DisableKeepAlives: true}}
	for _, nw := range r.Views.Agent {
		for _, addr := range nw.Addresses {
			e2etest.AwaitHTTP(t, client, "http://"+net.JoinHostPort(addr, strconv.Itoa(int(r.Ports["http"])))+"/", 20*time.Second)
		}
	}
	c.CheckUpdates(t, s, r.TaskID, "TASK_RUNNING")

	// An update after the restart goes the whole way too.
	c.EndJob(t, s)
	c.WaitFor(t, 30*time.Second, "no executor or task process left", func() bool { return len(c.TaskProcesses()) == 0 })
	c.WaitFor(t, 30*time.Second, "the agent to destroy the container (CNI DEL, cgroups)", func() bool {
		return len(c.CNIContainers()) == 0 && len(c.ContainerCgroups()) == 0
	})
	c.CheckUpdates(t, s, r.TaskID, "TASK_KILLED")
}

// checkAgentView checks the agent's CNI results: both networks, each
// address inside its network's ranges, both families on the second.
func checkAgentView(t *testing.T, c *mesostest.Cluster, instance int, v scheduler.Views) {
	t.Helper()
	if len(v.Agent) != 2 {
		t.Fatalf("instance %d: agent view %+v, want both networks", instance, v.Agent)
	}
	ranges := map[string][]string{c.Nets[0]: {mesostest.SubnetA}, c.Nets[1]: {mesostest.SubnetB, mesostest.SubnetB6}}
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
			if !mesostest.InSubnets(a, want...) {
				t.Errorf("instance %d: %s address %s is outside %v", instance, nw.Name, a, want)
			}
		}
	}
}

func hasLabel(tk mesostest.StateTask, key string) bool {
	for _, s := range tk.Statuses {
		for _, l := range s.Labels {
			if l.Key == key {
				return true
			}
		}
	}
	return false
}
