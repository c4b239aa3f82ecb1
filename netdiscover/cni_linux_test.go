package netdiscover_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/netdiscover"
)

// cniResult is the part of a CNI ADD result (spec 1.0) the test reads.
type cniResult struct {
	IPs []struct {
		Address string `json:"address"`
	} `json:"ips"`
}

// cniAdd attaches the container namespace to a bridge network as the
// Mesos isolator does (CNI_IFNAME=ethN), running the real bridge and
// host-local plugins from the node namespace, where the bridge is made.
func cniAdd(t *testing.T, node, container, ifname, conf string) []netip.Prefix {
	t.Helper()
	plugins := testenv.CNIPluginDir(t)
	cmd := netnstest.Command(t.Context(), node, filepath.Join(plugins, "bridge"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND=ADD", "CNI_CONTAINERID="+container, "CNI_NETNS=/run/netns/"+container,
		"CNI_IFNAME="+ifname, "CNI_PATH="+plugins)
	cmd.Stdin = bytes.NewBufferString(conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("CNI ADD %s: %v\n%s%s", ifname, err, out, stderr.Bytes())
	}
	var res cniResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("CNI ADD %s result %s: %v", ifname, out, err)
	}
	var addrs []netip.Prefix
	for _, ip := range res.IPs {
		addrs = append(addrs, netip.MustParsePrefix(ip.Address))
	}
	return addrs
}

func bridgeConf(t *testing.T, name, subnet4, subnet6 string) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ranges := [][]map[string]string{{{"subnet": subnet4}}}
	if subnet6 != "" {
		ranges = append(ranges, []map[string]string{{"subnet": subnet6}})
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": name, "type": "bridge",
		"bridge": "dewarbr" + hex.EncodeToString(b),
		"ipam":   map[string]any{"type": "host-local", "dataDir": t.TempDir(), "ranges": ranges},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(conf)
}

// What Discover finds equals what the real CNI plugins assigned, network
// by network: one IPv4 network and one dual-stack network (whose IPv6
// address goes through DAD).
func TestDiscoverMatchesCNIResults(t *testing.T) {
	testenv.NeedRoot(t)
	node, _ := netnstest.New(t)
	container := newNS(t)
	nets := []netdiscover.Network{
		{Name: "blue", Labels: map[string]string{"tier": "web"}},
		{}, // unnamed: takes no interface
		{Name: "green"},
	}
	want := []netdiscover.NetworkAddrs{
		{Name: "blue", Labels: nets[0].Labels, Interface: "eth0",
			Addrs: cniAdd(t, node, container.name, "eth0", bridgeConf(t, "blue", "198.18.20.0/24", ""))},
		{Name: "green", Interface: "eth1",
			Addrs: cniAdd(t, node, container.name, "eth1", bridgeConf(t, "green", "198.18.21.0/24", "2001:db8:21::/64"))},
	}
	if len(want[1].Addrs) != 2 {
		t.Fatalf("dual-stack CNI result has %v, want an IPv4 and an IPv6 address", want[1].Addrs)
	}
	got, err := netdiscover.Discover(t.Context(), nets, container.options())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover =\n  %+v\nCNI plugins returned\n  %+v", got, want)
	}
}
