package cnie2e_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
)

// launchTimeout bounds a launch (CNI ADD of every network, executor start,
// discovery, first process) and a task's end with its container teardown.
// Generous: the whole suite runs with -race on two cores.
const launchTimeout = 45 * time.Second

// waitingTask records its environment, prints DEWAR_IPS and waits until the
// test creates "stop" in its sandbox.
const waitingTask = `env > "$MESOS_SANDBOX/env.tmp" && mv "$MESOS_SANDBOX/env.tmp" "$MESOS_SANDBOX/env.txt"
echo "DEWAR_IPS=$DEWAR_IPS"
while [ ! -e "$MESOS_SANDBOX/stop" ]; do sleep 0.05; done`

// TestExecutorReportsCNIAddresses is MESOS-6281 end to end: for one network,
// two networks, a dual-stack one and a mix, the addresses dewar-executor
// discovers from inside its container and reports in TASK_RUNNING are
// exactly the ones the CNI plugins assigned (the agent's view, merged behind
// the executor's), network by network in network_infos order, and still in
// TASK_FINISHED (TASK_STARTING, sent at launch, has the agent's alone); they are on the container's
// interfaces; and the task sees them in
// DEWAR_IP, DEWAR_IPV6, DEWAR_IPS and DEWAR_IP[V6]_<NET>. When the task
// ends, its container's namespace and networks are removed.
func TestExecutorReportsCNIAddresses(t *testing.T) {
	t.Parallel()
	node := e2etest.NewNode(t)
	a := node.BridgeNetwork(t, "198.18.61.0/24")
	b := node.BridgeNetwork(t, "198.18.62.0/24")
	dual := node.BridgeNetwork(t, "198.18.63.0/24", "2001:db8:63::/64")
	agent := node.StartAgent(t)

	for _, tc := range []struct {
		name string
		nets []e2etest.Network
	}{
		{"one network", []e2etest.Network{a}},
		{"two networks", []e2etest.Network{a, b}},
		{"dual-stack", []e2etest.Network{dual}},
		{"three networks, dual-stack in the middle", []e2etest.Network{b, dual, a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var infos []mesos.NetworkInfo
			for i, n := range tc.nets {
				infos = append(infos, networkInfo(n.Name, map[string]string{"dewar.test/case": tc.name, "dewar.test/index": fmt.Sprint(i)}))
			}
			run := agent.Launch(t, commandTask("addrs", waitingTask, infos))
			starting := run.WaitFor(t, launchTimeout, "TASK_STARTING", e2etest.InState(mesos.TASK_STARTING))
			running := run.WaitFor(t, launchTimeout, "TASK_RUNNING", e2etest.InState(mesos.TASK_RUNNING))

			ex := run.Executor(t)
			cni := agentView(t, ex)
			checkCNIResults(t, tc.nets, cni)
			for _, u := range []e2etest.Update{starting, running} {
				if u.Status.GetSource() != mesos.SOURCE_EXECUTOR {
					t.Errorf("%s from %s, want SOURCE_EXECUTOR", u.Status.GetState(), u.Status.GetSource())
				}
			}
			// TASK_STARTING goes out at launch, as Thermos sends it, before
			// the executor has discovered anything: only the agent's view.
			if got, want := describe(starting.Status.GetContainerStatus().GetNetworkInfos()), describe(cni); got != want {
				t.Errorf("TASK_STARTING: network_infos %s, want only the agent's CNI results %s", got, want)
			}
			mine, merged := split(t, running, len(infos))
			checkExecutorView(t, "TASK_RUNNING", infos, mine, cni)
			if got, want := describe(merged), describe(cni); got != want {
				t.Errorf("TASK_RUNNING: agent's merged view %s, want its CNI results %s", got, want)
			}

			t.Logf("CNI assigned %s; the executor reports %s", describe(cni), describe(mine))
			ns := agent.ContainerNetNS(t, ex.PID)
			checkInterfaces(t, ns, cni)
			checkTaskEnv(t, ex.Sandbox, tc.nets, cni)

			touch(t, filepath.Join(ex.Sandbox, "stop"))
			finished := run.WaitFor(t, launchTimeout, "TASK_FINISHED", e2etest.InState(mesos.TASK_FINISHED))
			mine, _ = split(t, finished, len(infos))
			checkExecutorView(t, "TASK_FINISHED", infos, mine, cni)
			agent.WaitContainerGone(t, ex.ContainerID, ns, launchTimeout)
		})
	}
}

// TestAddressChangeReported: an address added to or removed from a running
// container's interface (netlink, inside the container's namespace) reaches
// the agent in a new TASK_RUNNING "addresses changed" within a second, for
// IPv4 and IPv6. The time runs from just before the netlink request to the
// update's arrival at the test, which reads it from the agent after its
// checkpoint: an upper bound of the time to the agent.
func TestAddressChangeReported(t *testing.T) {
	node := e2etest.NewNode(t)
	n := node.BridgeNetwork(t, "198.18.64.0/24", "2001:db8:64::/64")
	agent := node.StartAgent(t)
	infos := []mesos.NetworkInfo{networkInfo(n.Name, map[string]string{"dewar.test/case": "change"})}
	run := agent.Launch(t, commandTask("change", waitingTask, infos))
	run.WaitFor(t, launchTimeout, "TASK_RUNNING", e2etest.InState(mesos.TASK_RUNNING))
	ex := run.Executor(t)
	ns := agent.ContainerNetNS(t, ex.PID)

	for _, tc := range []struct {
		name string
		addr string
	}{
		{"IPv4", "198.18.64.200/24"},
		{"IPv6", "2001:db8:64::c8/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tc.addr)
			ip := p.Addr().String()
			has := func(u e2etest.Update) bool {
				mine, _ := split(t, u, 1)
				return slices.Contains(addrsOf(mine[0]), ip)
			}
			change := func(verb string, want bool) {
				t.Helper()
				addr := &netlink.Addr{IPNet: prefixNet(p)}
				if p.Addr().Is6() {
					// Without DAD the address is usable at once; with it the
					// executor rightly waits for DAD, which takes longer than
					// the second measured here.
					addr.Flags = unix.IFA_F_NODAD
				}
				t0 := netnstest.ChangeAddr(t, ns, "eth0", *addr, want)
				u := run.WaitFor(t, 10*time.Second, fmt.Sprintf("TASK_RUNNING after %s %s", verb, ip), func(u e2etest.Update) bool {
					return u.Status.GetState() == mesos.TASK_RUNNING && has(u) == want
				})
				// The executor stamps the update when it makes it: that is
				// when the change "shows up in a new TASK_RUNNING". Its
				// arrival at the agent adds the agent's disk checkpoint,
				// which a loaded CI machine may stretch; it is only logged.
				lat := time.Duration((u.Status.GetTimestamp() - float64(t0.UnixNano())/1e9) * float64(time.Second))
				t.Logf("%s %s: TASK_RUNNING made by the executor after %v, at the agent after %v", verb, ip,
					lat.Round(time.Millisecond), u.At.Sub(t0).Round(time.Millisecond))
				if lat > time.Second {
					t.Errorf("%s %s: the executor reported it after %v, want within 1s", verb, ip, lat)
				}
				if !strings.HasPrefix(u.Status.GetMessage(), "addresses changed") {
					t.Errorf("update after %s %s says %q, want \"addresses changed: ...\"", verb, ip, u.Status.GetMessage())
				}
				if u.Status.GetSource() != mesos.SOURCE_EXECUTOR {
					t.Errorf("update after %s %s from %s, want SOURCE_EXECUTOR", verb, ip, u.Status.GetSource())
				}
			}
			change("adding", true)
			change("removing", false)
		})
	}

	touch(t, filepath.Join(ex.Sandbox, "stop"))
	run.WaitFor(t, launchTimeout, "TASK_FINISHED", e2etest.InState(mesos.TASK_FINISHED))
	agent.WaitContainerGone(t, ex.ContainerID, ns, launchTimeout)
}

// checkCNIResults: the agent's view has one entry per network, in order,
// with one address from each of the network's subnets.
func checkCNIResults(t *testing.T, nets []e2etest.Network, cni []mesos.NetworkInfo) {
	t.Helper()
	if len(cni) != len(nets) {
		t.Fatalf("agent reports %d networks (%s), want %d", len(cni), describe(cni), len(nets))
	}
	for i, n := range nets {
		if cni[i].GetName() != n.Name {
			t.Errorf("agent's network %d is %q, want %q", i, cni[i].GetName(), n.Name)
		}
		addrs := addrsOf(cni[i])
		if len(addrs) != len(n.Subnets) {
			t.Errorf("agent's network %s has addresses %v, want one in each of %v", n.Name, addrs, n.Subnets)
			continue
		}
		for _, s := range n.Subnets {
			if !slices.ContainsFunc(addrs, func(a string) bool { return s.Contains(netip.MustParseAddr(a)) }) {
				t.Errorf("agent's network %s has addresses %v, none in %s", n.Name, addrs, s)
			}
		}
	}
}

// checkExecutorView: the executor's own entries name the requested
// networks in order, carry their labels, and hold exactly the CNI
// addresses of each, with the right protocol.
func checkExecutorView(t *testing.T, what string, want, mine, cni []mesos.NetworkInfo) {
	t.Helper()
	for i := range want {
		got := mine[i]
		if got.GetName() != want[i].GetName() {
			t.Errorf("%s: executor's network %d is %q, want %q", what, i, got.GetName(), want[i].GetName())
		}
		if g, w := labelsOf(got), labelsOf(want[i]); !slices.Equal(g, w) {
			t.Errorf("%s: executor's network %s has labels %v, want %v", what, got.GetName(), g, w)
		}
		if g, w := sorted(addrsOf(got)), sorted(addrsOf(cni[i])); !slices.Equal(g, w) {
			t.Errorf("%s: executor reports %v on network %s, CNI assigned %v", what, g, want[i].GetName(), w)
		}
		for _, ip := range got.IPAddresses {
			a := netip.MustParseAddr(ip.GetIPAddress())
			if wantProto := map[bool]mesos.NetworkInfo_Protocol{false: mesos.IPv4, true: mesos.IPv6}[a.Is6()]; ip.GetProtocol() != wantProto {
				t.Errorf("%s: executor reports %s as %s", what, a, ip.GetProtocol())
			}
		}
	}
}

// checkInterfaces: inside the container, eth<i> holds network i's CNI
// addresses and no other global one.
func checkInterfaces(t *testing.T, ns string, cni []mesos.NetworkInfo) {
	t.Helper()
	netnstest.Do(t, ns, func() error {
		for i, n := range cni {
			l, err := netlink.LinkByName(fmt.Sprintf("eth%d", i))
			if err != nil {
				return fmt.Errorf("eth%d of network %s: %w", i, n.GetName(), err)
			}
			as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			var got []string
			for _, a := range as {
				if a.Scope == unix.RT_SCOPE_UNIVERSE {
					got = append(got, a.IP.String())
				}
			}
			if g, w := sorted(got), sorted(addrsOf(n)); !slices.Equal(g, w) {
				t.Errorf("eth%d (network %s) holds %v, CNI assigned %v", i, n.GetName(), g, w)
			}
		}
		return nil
	})
}

// checkTaskEnv: the task's environment and stdout carry the addresses as
// the README's "What the task sees" says.
func checkTaskEnv(t *testing.T, sandbox string, nets []e2etest.Network, cni []mesos.NetworkInfo) {
	t.Helper()
	env := readEnv(t, filepath.Join(sandbox, "env.txt"))
	want := map[string]string{}
	var pairs []string
	first := func(n mesos.NetworkInfo, v6 bool) string {
		for _, a := range addrsOf(n) {
			if netip.MustParseAddr(a).Is6() == v6 {
				return a
			}
		}
		return ""
	}
	var ip4, ip6 string
	for i, n := range nets {
		v4, v6 := first(cni[i], false), first(cni[i], true)
		primary := v4
		if primary == "" {
			primary = v6
		}
		pairs = append(pairs, n.Name+"="+primary)
		want["DEWAR_IP_"+envName(n.Name)] = primary
		if v6 != "" {
			want["DEWAR_IPV6_"+envName(n.Name)] = v6
		}
		if ip4 == "" {
			ip4 = v4
		}
		if ip6 == "" {
			ip6 = v6
		}
	}
	want["DEWAR_IPS"] = strings.Join(pairs, ",")
	want["DEWAR_IP"] = ip4
	if ip6 != "" {
		want["DEWAR_IPV6"] = ip6
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("task env %s=%q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "DEWAR_IP") && want[k] == "" {
			t.Errorf("task env has %s=%q, which no network explains", k, env[k])
		}
	}
	stdout := waitFile(t, filepath.Join(sandbox, "sandbox", ".logs", "command", "0", "stdout"), "DEWAR_IPS="+want["DEWAR_IPS"]+"\n")
	if !strings.Contains(stdout, "DEWAR_IPS="+want["DEWAR_IPS"]+"\n") {
		t.Errorf("task stdout %q lacks DEWAR_IPS=%s", stdout, want["DEWAR_IPS"])
	}
}

// envName is the README's rule for DEWAR_IP_<NET>: upper case, every
// character other than a letter or digit becomes '_'.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// split cuts an update's container_status.network_infos into the
// executor's own n entries and the agent's CNI results, which the agent
// appends behind them (fakeagent's mergeContainerStatus, as Mesos'
// ContainerStatus merge).
func split(t testing.TB, u e2etest.Update, n int) (mine, agent []mesos.NetworkInfo) {
	t.Helper()
	all := u.Status.GetContainerStatus().GetNetworkInfos()
	if len(all) != 2*n {
		t.Fatalf("%s carries %d network_infos (%s), want %d from the executor then %d from the agent", u.Status.GetState(), len(all), describe(all), n, n)
	}
	return all[:n], all[n:]
}

// TestNothingLeftWhenAbandoned: a test that ends (or fails) while its task
// still runs leaves nothing behind: the cleanup kills the executor by PID,
// the agent tears the container down (CNI DEL, namespace removed), the
// agent stops, and the node namespace with its bridge and veths goes.
func TestNothingLeftWhenAbandoned(t *testing.T) {
	t.Parallel()
	var (
		nodeNS, containerNS, bridge string
		pids                        []int
	)
	t.Run("abandon a running task", func(t *testing.T) {
		node := e2etest.NewNode(t)
		n := node.BridgeNetwork(t, "198.18.65.0/24", "2001:db8:65::/64")
		agent := node.StartAgent(t)
		run := agent.Launch(t, commandTask("abandoned", waitingTask, []mesos.NetworkInfo{networkInfo(n.Name, nil)}))
		run.WaitFor(t, launchTimeout, "TASK_RUNNING", e2etest.InState(mesos.TASK_RUNNING))
		ex := run.Executor(t)
		nodeNS, containerNS, bridge = node.Name, agent.ContainerNetNS(t, ex.PID), n.Bridge
		pids = append(pids, agent.PID, ex.PID)
		netnstest.Do(t, nodeNS, func() error {
			_, err := netlink.LinkByName(bridge)
			return err
		})
	})
	if nodeNS == "" {
		// The subtest skipped (no root or plugins) or failed before it
		// made anything: there is nothing to look for.
		return
	}
	for _, ns := range []string{nodeNS, containerNS} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace %s left behind (stat: %v)", ns, err)
		}
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("process %d still exists (kill 0: %v)", pid, err)
		}
	}
}
