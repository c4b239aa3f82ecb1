package e2etest

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// netnsDir is where `ip netns` (and the agent's isolator) pin namespaces.
const netnsDir = "/run/netns"

// The test ranges (RFC 2544 benchmarking, RFC 3849 documentation): nothing
// else may be configured on a CNI network of a test.
var (
	testRange4 = netip.MustParsePrefix("198.18.0.0/15")
	testRange6 = netip.MustParsePrefix("2001:db8::/32")
)

// Node is a node's network namespace and a scratch directory for its CNI
// configs, IPAM leases and the agent's work dir.
type Node struct {
	// Name is the node's network namespace (dewar-t-<hex>, in /run/netns).
	Name string
	// Dir is the node's scratch directory (a t.TempDir).
	Dir string
	// ConfigDir is the agent's --network-cni-config-dir.
	ConfigDir string

	// mu guards the following fields.
	mu       sync.Mutex
	netns    []string // container namespaces seen; none may outlive the test
	bridges  []string // bridges of the node's networks; never in the test's own namespace
	networks []Network
}

// NewNode creates the node's namespace (loopback up) and scratch dir. Its
// last cleanup checks that none of the namespaces the test saw remains.
func NewNode(t *testing.T) *Node {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Missing(t, "nsenter (util-linux) not on PATH")
	}
	n := &Node{Dir: t.TempDir()}
	n.ConfigDir = filepath.Join(n.Dir, "cni")
	if err := os.MkdirAll(n.ConfigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered before the namespace exists, so it runs after every
	// other cleanup of the node, the namespace's deletion included.
	t.Cleanup(func() { n.checkNothingLeft(t) })
	n.Name, _ = netnstest.New(t)
	return n
}

// Network is a CNI network of the node.
type Network struct {
	Name    string         // network name, "dewar-n-<hex>"
	Bridge  string         // its bridge in the node namespace, "dewar-b-<hex>"
	Subnets []netip.Prefix // one host-local range each, in the order given
}

// BridgeNetwork writes the config of a new bridge network with the given
// subnets (each inside 198.18.0.0/15 or 2001:db8::/32) into ConfigDir, in
// the shape the Mesos isolator reads (cniVersion 0.2.0). The bridge is the
// gateway, nothing is masqueraded, and host-local keeps its leases in the
// node's Dir. Start the agent after adding every network.
func (n *Node) BridgeNetwork(t *testing.T, subnets ...string) Network {
	t.Helper()
	if len(subnets) == 0 {
		t.Fatal("BridgeNetwork: no subnet")
	}
	sfx := testenv.RandomHex(3)
	nw := Network{Name: "dewar-n-" + sfx, Bridge: "dewar-b-" + sfx}
	var ranges [][]map[string]string
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatalf("BridgeNetwork: subnet %q: %v", s, err)
		}
		if !inTestRange(p) {
			t.Fatalf("BridgeNetwork: subnet %s is outside the test ranges %s and %s", p, testRange4, testRange6)
		}
		nw.Subnets = append(nw.Subnets, p.Masked())
		ranges = append(ranges, []map[string]string{{"subnet": p.Masked().String()}})
	}
	conf := map[string]any{
		"cniVersion": "0.2.0",
		"name":       nw.Name,
		"type":       "bridge",
		"bridge":     nw.Bridge,
		"isGateway":  true,
		"ipMasq":     false,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": filepath.Join(n.Dir, "ipam"),
			"ranges":  ranges,
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfigDir, nw.Name+".conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.bridges = append(n.bridges, nw.Bridge)
	n.networks = append(n.networks, nw)
	n.mu.Unlock()
	return nw
}

func inTestRange(p netip.Prefix) bool {
	for _, r := range []netip.Prefix{testRange4, testRange6} {
		if r.Contains(p.Addr()) && p.Bits() >= r.Bits() {
			return true
		}
	}
	return false
}

// recordNetNS remembers a container namespace for the final check.
func (n *Node) recordNetNS(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.netns {
		if s == name {
			return
		}
	}
	n.netns = append(n.netns, name)
}

// checkNothingLeft fails the test if a namespace it created or saw is still
// pinned, or a bridge of its networks appeared in the test's own namespace
// (the plugins must have run in the node's).
func (n *Node) checkNothingLeft(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	names := append([]string{n.Name}, n.netns...)
	bridges := append([]string(nil), n.bridges...)
	n.mu.Unlock()
	for _, name := range names {
		if name == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(netnsDir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("network namespace %s is still listed after the test (stat: %v)", name, err)
		}
	}
	for _, br := range bridges {
		if _, err := netlink.LinkByName(br); err == nil {
			t.Errorf("bridge %s exists in the test's own network namespace: the node leaked into the machine's stack", br)
		}
	}
}

// netnsByInode returns the name under /run/netns pinning the namespace
// that /proc/<pid>/ns/net is, or "" if none does.
func netnsByInode(pid int) (string, error) {
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/proc", strconv.Itoa(pid), "ns", "net"), &want); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(netnsDir, e.Name()), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return e.Name(), nil
		}
	}
	return "", nil
}
