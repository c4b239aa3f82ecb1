package reliability

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// addressFlap: an announced Aurora task runs under the real dewar-agent
// (CNI bridge networks of the reference plugins, in a node namespace of
// the test's own) on two networks, A (primary) and B; ZooKeeper runs in
// the node and the executor reaches it through B. Inside the task's
// network namespace A's address is removed and re-added (netlink), as a
// DHCP lease lost and renewed or an operator's mistake undone would do.
// With no address on A the task has no member on A: its classic member
// and its member of <job>@A are withdrawn, and come back once the address
// is. Figures: time from the netlink request until the agent has the
// executor's TASK_RUNNING without, then with, the address, and until the
// serverset shows it (members gone, then back with the address), worst of
// the rounds. Must
// hold: both updated both ways; never two members of the task in one
// serverset; B's member kept (updated in place, not re-created).
func addressFlap(t *testing.T, _ *zktest.Ensemble, sc scale) result {
	res := result{
		scenario: fmt.Sprintf("netns address flap ×%d: the primary network's address removed and re-added in the task's namespace (netlink)", sc.rounds),
		must:     "TaskStatus and serverset updated both ways; never 2 members of the task in a serverset; the other network's member kept",
	}
	node := e2etest.NewNode(t)
	netA := node.BridgeNetwork(t, "198.18.72.0/24")
	netB := node.BridgeNetwork(t, "198.18.73.0/24")
	agent := node.StartAgent(t)
	srv := zktest.Start(t, zktest.Listen("0.0.0.0"),
		zktest.CommandPrefix("nsenter", "--net=/run/netns/"+node.Name, "--"), zktest.Dial(netnstest.DialIn(node.Name)))
	_, port, _ := net.SplitHostPort(srv.Addr())
	r := zktest.ConnectWith(t, netnstest.DialIn(node.Name), net.JoinHostPort("127.0.0.1", port))

	// B's bridge is the gateway of B: 198.18.73.1.
	gatewayB := "198.18.73.1"
	name := "flap-" + testenv.RandomHex(4)
	run := agent.Launch(t, announcedTask(t, name, net.JoinHostPort(gatewayB, port), netA.Name, netB.Name))
	run.WaitFor(t, 2*time.Minute, "TASK_RUNNING", e2etest.InState(mesos.TASK_RUNNING))
	ns := agent.ContainerNetNS(t, run.Executor(t).PID)

	base := "/aurora/root/test/" + name
	paths := []string{base, base + "@" + netA.Name, base + "@" + netB.Name}
	addr := containerAddr(t, ns, "eth0")
	ip := addr.IP.String()
	testenv.WaitUntil(t, time.Minute, "the task's three members", func() bool {
		s := readServersets(r, paths)
		return s.hosts(base) == ip && s.hosts(paths[1]) == ip && s.count(paths[2]) == 1
	})
	bMember := readServersets(r, paths).nodes[paths[2]][0]
	_, bBefore, err := r.Get(bMember)
	if err != nil {
		t.Fatal(err)
	}
	// A reader polls all three serversets through the flap and keeps the
	// most members it ever saw in one.
	poll := pollServersets(r, paths)

	// The agent merges its own CNI view (which keeps the address) behind
	// the executor's entries: the executor's first entry is A's.
	executorHas := func(u e2etest.Update) bool {
		nis := u.Status.GetContainerStatus().GetNetworkInfos()
		if len(nis) == 0 {
			return false
		}
		for _, a := range nis[0].IPAddresses {
			if a.GetIPAddress() == ip {
				return true
			}
		}
		return false
	}
	type step struct {
		what           string
		present        bool          // added (else removed)
		status, zkTime time.Duration // worst round
	}
	steps := []*step{
		{what: "removed"},
		{what: "re-added", present: true},
	}
	for i := range sc.rounds * len(steps) {
		s := steps[i%len(steps)]
		t0 := netnstest.ChangeAddr(t, ns, "eth0", *addr, s.present)
		u := run.WaitFor(t, 30*time.Second, fmt.Sprintf("TASK_RUNNING with %s %s", ip, s.what), func(u e2etest.Update) bool {
			return u.Status.GetState() == mesos.TASK_RUNNING && executorHas(u) == s.present
		})
		status := u.At.Sub(t0)
		s.status = max(s.status, status)
		testenv.WaitUntil(t, 30*time.Second, "the serversets to show "+ip+" "+s.what, func() bool {
			st := readServersets(r, paths)
			if s.present {
				return st.hosts(base) == ip && st.hosts(paths[1]) == ip
			}
			return st.count(base) == 0 && st.count(paths[1]) == 0
		})
		zkTime := time.Since(t0)
		s.zkTime = max(s.zkTime, zkTime)
		t.Logf("%s %s: TASK_RUNNING at the agent after %v (%q), serversets after %v", ip, s.what, status.Round(time.Millisecond), u.Status.GetMessage(), zkTime.Round(time.Millisecond))
	}
	most := poll.stop()
	_, bAfter, err := r.Get(bMember)
	bKept := err == nil && bAfter.Czxid == bBefore.Czxid && bAfter.Version > bBefore.Version
	res.figure = fmt.Sprintf("(worst round) removed: TaskStatus after %s, serversets (A's members withdrawn) after %s; re-added: TaskStatus after %s, serversets after %s; at most %d member(s) of the task in one serverset; B's member updated in place: %v",
		secs(steps[0].status), secs(steps[0].zkTime), secs(steps[1].status), secs(steps[1].zkTime), most, bKept)
	res.pass = most == 1 && bKept
	return res
}

// announcedTask is the sleeper job as an Aurora task whose executor joins
// the given CNI networks and announces into ensemble.
func announcedTask(t *testing.T, name, ensemble string, networks ...string) mesos.TaskInfo {
	t.Helper()
	jobJSON := []byte(fmt.Sprintf(sleeperJob, name))
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	taskID := fmt.Sprintf("root-test-%s-0-%d", name, time.Now().UnixNano())
	data, err := aurora.BuildAssignedTask(job, jobJSON, taskID, 0, map[string]int32{"http": 31999})
	if err != nil {
		t.Fatal(err)
	}
	executor := testenv.Binary(t, "dewar-executor")
	noShell := false
	var nis []mesos.NetworkInfo
	for _, n := range networks {
		nis = append(nis, mesos.NetworkInfo{Name: &n})
	}
	return mesos.TaskInfo{
		Name: name, TaskID: mesos.TaskID{Value: taskID}, Data: data,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "thermos-" + taskID},
			Name:       &[]string{aurora.ExecutorName}[0],
			Command: &mesos.CommandInfo{Value: &executor, Shell: &noShell,
				Arguments: []string{executor, "--announcer-ensemble", ensemble}},
			Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum(), NetworkInfos: nis},
		},
	}
}

// containerAddr is the first global IPv4 address of link in the
// namespace.
func containerAddr(t *testing.T, ns, link string) *netlink.Addr {
	t.Helper()
	var out *netlink.Addr
	netnstest.Do(t, ns, func() error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return err
		}
		as, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Scope == unix.RT_SCOPE_UNIVERSE {
				out = &a
				return nil
			}
		}
		return fmt.Errorf("%s has no global IPv4 address: %v", link, as)
	})
	return out
}

// serversets is what a reader saw of some serversets: member nodes and
// their hosts.
type serversets struct {
	nodes map[string][]string // path → member znodes
	host  map[string][]string // path → serviceEndpoint hosts
}

func readServersets(r *zk.Conn, paths []string) serversets {
	s := serversets{nodes: map[string][]string{}, host: map[string][]string{}}
	for _, p := range paths {
		kids, _, err := r.Children(p)
		if err != nil {
			continue
		}
		slices.Sort(kids)
		for _, k := range kids {
			b, _, err := r.Get(p + "/" + k)
			if err != nil {
				continue
			}
			var m announcer.Member
			if json.Unmarshal(b, &m) == nil {
				s.nodes[p] = append(s.nodes[p], p+"/"+k)
				s.host[p] = append(s.host[p], m.ServiceEndpoint.Host)
			}
		}
	}
	return s
}

func (s serversets) count(p string) int    { return len(s.nodes[p]) }
func (s serversets) hosts(p string) string { return strings.Join(s.host[p], ",") }

// poller reads serversets in a loop and keeps the most members it saw in
// any one of them.
type poller struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	most  int // written by the loop until stop returns
}

func pollServersets(r *zk.Conn, paths []string) *poller {
	p := &poller{stopc: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			s := readServersets(r, paths)
			for _, path := range paths {
				p.most = max(p.most, s.count(path))
			}
			select {
			case <-p.stopc:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *poller) stop() int {
	close(p.stopc)
	p.wg.Wait()
	return p.most
}
