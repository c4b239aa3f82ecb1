package isolator

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func named(name string) mesos.NetworkInfo { return mesos.NetworkInfo{Name: strp(name)} }

func TestPrepareAssignsAddressesTheContainerHas(t *testing.T) {
	t.Parallel()
	type want struct {
		v4, v6 int // addresses of each family per network
	}
	tests := []struct {
		name string
		nets func(t *testing.T) []netSpec
		want []want
	}{
		{"one network", func(t *testing.T) []netSpec { return []netSpec{newNet(t, "198.18.1.0/24")} }, []want{{1, 0}}},
		{"two networks", func(t *testing.T) []netSpec {
			return []netSpec{newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24")}
		}, []want{{1, 0}, {1, 0}}},
		{"dual-stack", func(t *testing.T) []netSpec {
			return []netSpec{newNet(t, "198.18.3.0/24", "2001:db8:3::/64")}
		}, []want{{1, 1}}},
		{"conflist 1.0.0 and single 0.2.0", func(t *testing.T) []netSpec {
			a := newNet(t, "198.18.4.0/24", "2001:db8:4::/64")
			a.conflist, a.cniVersion = true, "1.0.0"
			return []netSpec{a, newNet(t, "198.18.1.0/24")}
		}, []want{{1, 1}, {1, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nets := tt.nets(t)
			r := newRig(t, nets...)
			var nis []mesos.NetworkInfo
			for _, n := range nets {
				nis = append(nis, named(n.name))
			}
			c := r.mustPrepare("c-"+randHex(t, 4), nis...)

			if !strings.HasPrefix(c.NetNSName, "dewar-c-") || c.NetNSPath != "/var/run/netns/"+c.NetNSName {
				t.Errorf("namespace %q at %q, want dewar-c-* in /var/run/netns", c.NetNSName, c.NetNSPath)
			}
			if len(c.NetworkInfos) != len(nets) {
				t.Fatalf("%d NetworkInfos, want %d", len(c.NetworkInfos), len(nets))
			}
			inside := ifaceAddrs(t, c.NetNSPath)
			for k, n := range nets {
				ni := c.NetworkInfos[k]
				if ni.GetName() != n.name {
					t.Errorf("NetworkInfos[%d] is %q, want %q (request order)", k, ni.GetName(), n.name)
				}
				var v4, v6 int
				for _, a := range ni.IPAddresses {
					ip := net.ParseIP(a.GetIPAddress())
					switch {
					case ip == nil:
						t.Errorf("network %s: %q is not a bare IP", n.name, a.GetIPAddress())
					case ip.To4() != nil && a.GetProtocol() == mesos.IPv4:
						v4++
					case ip.To4() == nil && a.GetProtocol() == mesos.IPv6:
						v6++
					default:
						t.Errorf("network %s: %s has protocol %s", n.name, ip, a.GetProtocol())
					}
					if !inSubnets(ip, n.subnets) {
						t.Errorf("network %s: %s outside %v", n.name, ip, n.subnets)
					}
				}
				if (want{v4, v6}) != tt.want[k] {
					t.Errorf("network %s: %d IPv4 and %d IPv6 addresses, want %+v", n.name, v4, v6, tt.want[k])
				}
				iface := fmt.Sprintf("eth%d", k)
				if got := inside[iface]; !reflect.DeepEqual(got, infoIPs(ni)) {
					t.Errorf("%s inside the container has %v; Prepare reported %v", iface, got, infoIPs(ni))
				}
			}
			if len(inside) != len(nets)+1 {
				t.Errorf("container interfaces %v, want lo and eth0..eth%d", inside, len(nets)-1)
			}

			// Bridges are made in the node, never in the test's (host's) namespace.
			for _, n := range nets {
				if !slicesContainsLink(r.nodeLinks(), n.bridge) {
					t.Errorf("bridge %s not in the node namespace", n.bridge)
				}
				if _, err := netlink.LinkByName(n.bridge); err == nil {
					t.Errorf("bridge %s appeared in the host's namespace", n.bridge)
				}
			}

			if err := r.cleanup(r.iso, c.ID); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			r.assertGone(c)
			if l := r.leases(); len(l) > 0 {
				t.Errorf("host-local leases not released: %v", l)
			}
			if err := r.cleanup(r.iso, c.ID); err != nil {
				t.Errorf("second Cleanup: %v, want nil (idempotent)", err)
			}
		})
	}
}

// assertNoNetNS fails if a namespace of container id exists (tests run in
// parallel, so other tests' namespaces come and go meanwhile).
func assertNoNetNS(t *testing.T, id string) {
	t.Helper()
	prefix := netnsPrefix(id)
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s of container %s exists", e.Name(), id)
		}
	}
}

func inSubnets(ip net.IP, subnets []string) bool {
	for _, s := range subnets {
		if _, n, err := net.ParseCIDR(s); err == nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

func slicesContainsLink(links []netlink.Link, name string) bool {
	for _, l := range links {
		if l.Attrs().Name == name {
			return true
		}
	}
	return false
}

// recordedCall is a line the recorder plugin writes.
type recordedCall struct {
	Env      map[string]string `json:"env"`
	Stdin    json.RawMessage   `json:"stdin"`
	Stdout   string            `json:"stdout"`
	ExitCode int               `json:"exitCode"`
}

func readCalls(t *testing.T, file string) []recordedCall {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []recordedCall
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c recordedCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return calls
}

// TestPluginsGetWhatMesosSends checks, with a recording plugin in front of
// bridge, the CNI_* environment and the args["org.apache.mesos"] a plugin
// receives for each network, on ADD and on DEL.
func TestPluginsGetWhatMesosSends(t *testing.T) {
	t.Parallel()
	record := t.TempDir() + "/calls.jsonl"
	n1, n2 := newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24")
	n1.recordFile, n2.recordFile = record, record
	r := newRig(t, n1, n2)

	ni1 := mesos.NetworkInfo{Name: strp(n1.name), Labels: &mesos.Labels{Labels: []mesos.Label{
		{Key: "rack", Value: strp("r1")}, {Key: "env", Value: strp("prod")}, {Key: "flag"},
	}}}
	id := "c-" + randHex(t, 4)
	// The unnamed entry (host network) takes no interface: n2 is eth1.
	c := r.mustPrepare(id, ni1, mesos.NetworkInfo{}, named(n2.name))

	wantArgs := map[string]string{
		n1.name: fmt.Sprintf(`{"network_info":{"name":%q,"labels":{"labels":[{"key":"rack","value":"r1"},{"key":"env","value":"prod"},{"key":"flag"}]}}}`, n1.name),
		n2.name: fmt.Sprintf(`{"network_info":{"name":%q}}`, n2.name),
	}
	check := func(calls []recordedCall, command string, order []string, ifaces []string, netnsPath string) {
		t.Helper()
		if len(calls) != len(order) {
			t.Fatalf("%d %s calls recorded, want %d", len(calls), command, len(order))
		}
		for k, call := range calls {
			var conf struct {
				Name string                     `json:"name"`
				Args map[string]json.RawMessage `json:"args"`
			}
			if err := json.Unmarshal(call.Stdin, &conf); err != nil {
				t.Fatal(err)
			}
			if conf.Name != order[k] {
				t.Errorf("%s call %d for network %q, want %q", command, k, conf.Name, order[k])
			}
			assertSameJSON(t, conf.Args["org.apache.mesos"], []byte(wantArgs[conf.Name]))
			wantEnv := map[string]string{
				"CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_IFNAME": ifaces[k], "CNI_NETNS": netnsPath,
			}
			for key, v := range wantEnv {
				if call.Env[key] != v {
					t.Errorf("%s call %d: %s=%q, want %q", command, k, key, call.Env[key], v)
				}
			}
			if !strings.Contains(call.Env["CNI_PATH"], recorderDir(t)) {
				t.Errorf("%s call %d: CNI_PATH %q lacks the plugin dir", command, k, call.Env["CNI_PATH"])
			}
		}
	}
	adds := readCalls(t, record)
	check(adds, "ADD", []string{n1.name, n2.name}, []string{"eth0", "eth1"}, c.NetNSPath)
	// The plugins answered in the 0.2.0 format the Mesos isolator reads
	// (ip4.ip in CIDR notation), and Prepare reports those addresses.
	for k, call := range adds {
		var res struct {
			CNIVersion string `json:"cniVersion"`
			IP4        struct {
				IP string `json:"ip"`
			} `json:"ip4"`
		}
		if err := json.Unmarshal([]byte(call.Stdout), &res); err != nil || call.ExitCode != 0 {
			t.Fatalf("ADD %d answered %q (exit %d): %v", k, call.Stdout, call.ExitCode, err)
		}
		ip, _, err := net.ParseCIDR(res.IP4.IP)
		if res.CNIVersion != "0.2.0" || err != nil {
			t.Errorf("ADD %d result %s, want a 0.2.0 result with ip4.ip", k, call.Stdout)
		}
		if got := infoIPs(c.NetworkInfos[k]); !reflect.DeepEqual(got, []string{ip.String()}) {
			t.Errorf("network %s: Prepare reported %v, the plugin assigned %s", c.NetworkInfos[k].GetName(), got, ip)
		}
	}
	if got := []string{c.NetworkInfos[0].GetName(), c.NetworkInfos[1].GetName()}; !reflect.DeepEqual(got, []string{n1.name, n2.name}) {
		t.Errorf("NetworkInfos %v, want the named networks in order", got)
	}
	if got := c.NetworkInfos[0].Labels; !reflect.DeepEqual(got, ni1.Labels) {
		t.Errorf("agent NetworkInfo labels %v, want the requested %v", got, ni1.Labels)
	}

	if err := os.Truncate(record, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.cleanup(r.iso, id); err != nil {
		t.Fatal(err)
	}
	// DEL in reverse order, with the same config and args as ADD.
	check(readCalls(t, record), "DEL", []string{n2.name, n1.name}, []string{"eth1", "eth0"}, c.NetNSPath)
	r.assertGone(c)
}

func TestUnknownNetworkCreatesNothing(t *testing.T) {
	t.Parallel()
	a, b := newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24")
	r := newRig(t, a, b)
	id := "c-" + randHex(t, 4)
	_, err := r.prepare(r.iso, id, named(a.name), named("nope"))
	known := []string{a.name, b.name}
	if known[0] > known[1] {
		known[0], known[1] = known[1], known[0]
	}
	want := fmt.Sprintf(`unknown CNI network "nope"; known networks: %s, %s`, known[0], known[1])
	var unknown *UnknownNetworkError
	if !errors.As(err, &unknown) || err.Error() != want {
		t.Fatalf("Prepare error = %v, want %q", err, want)
	}
	assertNoNetNS(t, id)
	if ids, _ := r.iso.Prepared(); len(ids) > 0 {
		t.Errorf("state written for %v", ids)
	}
	if l := r.nodeLinks(); len(l) != 1 {
		t.Errorf("node has links %v, want only lo", l)
	}
}

func TestFailedAddIsUndone(t *testing.T) {
	t.Parallel()
	good, bad := newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24")
	bad.badIPAM = true
	r := newRig(t, good, bad)
	id := "c-" + randHex(t, 4)
	_, err := r.prepare(r.iso, id, named(good.name), named(bad.name))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("CNI ADD of network %q", bad.name)) || !strings.Contains(err.Error(), "eth1") {
		t.Fatalf("Prepare error = %v, want one naming network %s and eth1", err, bad.name)
	}
	assertNoNetNS(t, id)
	if v := r.nodeVeths(); len(v) > 0 {
		t.Errorf("veth of the network that did join left behind: %v", v)
	}
	if l := r.leases(); len(l) > 0 {
		t.Errorf("lease of the network that did join left behind: %v", l)
	}
	if ids, _ := r.iso.Prepared(); len(ids) > 0 {
		t.Errorf("state left for %v", ids)
	}
}

// TestCleanupAfterRestart prepares with one Isolator and cleans up with a new
// one built from the same config, as an agent restarted in between would.
func TestCleanupAfterRestart(t *testing.T) {
	t.Parallel()
	n1, n2 := newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24", "2001:db8:2::/64")
	r := newRig(t, n1, n2)
	id := "c-" + randHex(t, 4)
	c := r.mustPrepare(id, named(n1.name), named(n2.name))

	restarted := r.newIsolator()
	ids, err := restarted.Prepared()
	if err != nil || !reflect.DeepEqual(ids, []string{id}) {
		t.Fatalf("Prepared() = %v, %v; want [%s]", ids, err, id)
	}
	got, err := restarted.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Lookup after restart = %+v\nwant %+v", got, c)
	}
	if len(r.leases()) != 3 {
		t.Errorf("leases %v, want 3 (one IPv4 on %s, IPv4+IPv6 on %s)", r.leases(), n1.name, n2.name)
	}
	if err := r.cleanup(restarted, id); err != nil {
		t.Fatalf("Cleanup from the restarted isolator: %v", err)
	}
	r.assertGone(c)
	if l := r.leases(); len(l) > 0 {
		t.Errorf("leases not released: %v", l)
	}
	if got, err := restarted.Lookup(id); got != nil || err != nil {
		t.Errorf("Lookup after Cleanup = %v, %v; want nil, nil", got, err)
	}
}

func TestHostNetworkCreatesNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, newNet(t, "198.18.1.0/24"))
	c := r.mustPrepare("c-"+randHex(t, 4), mesos.NetworkInfo{})
	if c.NetNSPath != "" || len(c.NetworkInfos) != 0 {
		t.Errorf("host-network container got %+v, want no namespace and no NetworkInfos", c)
	}
	if err := r.cleanup(r.iso, c.ID); err != nil {
		t.Errorf("Cleanup of a host-network container: %v", err)
	}
}

// TestPluginsRunInTheCallersNamespace pins down what the rig relies on: a
// child started from a goroutine locked to a thread in another network
// namespace runs in that namespace (Go forks from the calling thread).
func TestPluginsRunInTheCallersNamespace(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	var st unix.Stat_t
	if err := unix.Stat("/var/run/netns/"+r.node, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	for range 5 {
		var got []byte
		err := r.inNode(func() (err error) {
			got, err = exec.Command("readlink", "/proc/self/ns/net").Output()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(got)); s != want {
			t.Fatalf("child ran in %s, want the node's %s", s, want)
		}
	}
}

// TestNetworksAreIsolated: A on net1, B on net2, C on both. A reaches C on
// net1, B reaches C on net2, and A cannot reach B: the networks meet only in
// the node, whose forwarding is off. Each bridge is the gateway to
// 198.18.0.0/15 for its containers (isGateway), so the control case — the
// node forwarding — shows A's packets for B do reach the node, and that
// forwarding alone decides.
func TestNetworksAreIsolated(t *testing.T) {
	t.Parallel()
	net1, net2 := newNet(t, "198.18.1.0/24"), newNet(t, "198.18.2.0/24")
	r := newRig(t, net1, net2)
	a := r.mustPrepare("a-"+randHex(t, 4), named(net1.name))
	b := r.mustPrepare("b-"+randHex(t, 4), named(net2.name))
	c := r.mustPrepare("c-"+randHex(t, 4), named(net1.name), named(net2.name))

	ipOf := func(ct *Container, k int) string { return ct.NetworkInfos[k].IPAddresses[0].GetIPAddress() }
	cOnNet1 := listenIn(t, c.NetNSPath, ipOf(c, 0))
	cOnNet2 := listenIn(t, c.NetNSPath, ipOf(c, 1))
	bOnNet2 := listenIn(t, b.NetNSPath, ipOf(b, 0))

	// The bridge plugin turns forwarding on for isGateway; the node decides.
	r.setForwarding(false)
	const reachable, unreachable = 10 * time.Second, time.Second
	if err := dialFrom(a.NetNSPath, cOnNet1, reachable); err != nil {
		t.Errorf("A cannot reach C on net1 (%s): %v", cOnNet1, err)
	}
	if err := dialFrom(b.NetNSPath, cOnNet2, reachable); err != nil {
		t.Errorf("B cannot reach C on net2 (%s): %v", cOnNet2, err)
	}
	if err := dialFrom(a.NetNSPath, bOnNet2, unreachable); err == nil {
		t.Errorf("A reached B (%s) with forwarding off in the node", bOnNet2)
	}

	r.setForwarding(true)
	if err := dialFrom(a.NetNSPath, bOnNet2, reachable); err != nil {
		t.Errorf("control: A cannot reach B (%s) even with the node forwarding: %v", bOnNet2, err)
	}
	r.setForwarding(false)
	if err := dialFrom(a.NetNSPath, bOnNet2, unreachable); err == nil {
		t.Errorf("A reached B (%s) after forwarding was turned off again", bOnNet2)
	}
}

// TestWrapRunsInTheContainer runs a Wrap'ed command and checks where it ran.
func TestWrapRunsInTheContainer(t *testing.T) {
	t.Parallel()
	n := newNet(t, "198.18.6.0/24")
	r := newRig(t, n)
	c := r.mustPrepare("c-"+randHex(t, 4), named(n.name))
	var st unix.Stat_t
	if err := unix.Stat(c.NetNSPath, &st); err != nil {
		t.Fatal(err)
	}
	argv := c.Wrap([]string{"readlink", "/proc/self/ns/net"})
	out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("net:[%d]", st.Ino); got != want {
		t.Errorf("wrapped command ran in %s, want the container's %s", got, want)
	}
}
