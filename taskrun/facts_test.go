package taskrun

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/netdiscover"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestFactsScopeAndEnv: the template variables and the DEWAR_* environment
// for host networking and for one, two and dual-stack CNI networks, as the
// README's "What the task sees" promises.
func TestFactsScopeAndEnv(t *testing.T) {
	base := Facts{TaskID: "web-0-abc", User: "www", Instance: 3, Hostname: "agent1", Sandbox: "/sb",
		Ports: map[string]int{"http": 31000, "health-check": 31001}}
	common := map[string]string{
		"thermos.task_id":             "web-0-abc",
		"thermos.user":                "www",
		"mesos.instance":              "3",
		"mesos.hostname":              "agent1",
		"thermos.ports[http]":         "31000",
		"thermos.ports[health-check]": "31001",
	}
	commonEnv := []string{
		"MESOS_SANDBOX=/sb", "DEWAR_TASK_ID=web-0-abc", "DEWAR_INSTANCE=3", "DEWAR_HOSTNAME=agent1",
		"DEWAR_PORT_HTTP=31000", "DEWAR_PORT_HEALTH_CHECK=31001",
	}
	for _, tt := range []struct {
		name      string
		networks  []netdiscover.NetworkAddrs
		hostAddrs []netip.Prefix
		scope     map[string]string // beyond common
		env       []string          // beyond commonEnv
	}{
		{
			name:      "host networking",
			hostAddrs: prefixes(t, "2001:db8::5/64", "10.1.2.3/24", "10.1.2.4/24"),
			scope:     map[string]string{"mesos.ip": "10.1.2.3", "mesos.ipv6": "2001:db8::5"},
			env:       []string{"DEWAR_IP=10.1.2.3", "DEWAR_IPV6=2001:db8::5"},
		},
		{
			name:  "host networking without addresses",
			scope: map[string]string{},
		},
		{
			name:     "one network",
			networks: []netdiscover.NetworkAddrs{{Name: "blue", Interface: "eth0", Addrs: prefixes(t, "198.18.0.2/24")}},
			scope:    map[string]string{"mesos.ip": "198.18.0.2", "mesos.ips[blue]": "198.18.0.2"},
			env:      []string{"DEWAR_IP=198.18.0.2", "DEWAR_IP_BLUE=198.18.0.2", "DEWAR_IPS=blue=198.18.0.2"},
		},
		{
			// The primary IPv4 address comes from the first network that
			// has one, even when an IPv6-only network is listed first.
			name: "two networks, the first IPv6 only",
			networks: []netdiscover.NetworkAddrs{
				{Name: "blue", Interface: "eth0", Addrs: prefixes(t, "2001:db8:1::2/64")},
				{Name: "green", Interface: "eth1", Addrs: prefixes(t, "198.18.1.2/24", "198.18.1.3/24")},
			},
			scope: map[string]string{
				"mesos.ip": "198.18.1.2", "mesos.ipv6": "2001:db8:1::2",
				"mesos.ips[blue]": "2001:db8:1::2", "mesos.ips[green]": "198.18.1.2",
			},
			env: []string{
				"DEWAR_IP=198.18.1.2", "DEWAR_IPV6=2001:db8:1::2",
				"DEWAR_IP_BLUE=2001:db8:1::2", "DEWAR_IPV6_BLUE=2001:db8:1::2", "DEWAR_IP_GREEN=198.18.1.2",
				"DEWAR_IPS=blue=2001:db8:1::2,green=198.18.1.2",
			},
		},
		{
			name: "dual-stack network with a name to escape",
			networks: []netdiscover.NetworkAddrs{
				{Name: "blue-net.1", Interface: "eth0", Addrs: prefixes(t, "198.18.0.7/24", "2001:db8::7/64")},
			},
			scope: map[string]string{
				"mesos.ip": "198.18.0.7", "mesos.ipv6": "2001:db8::7", "mesos.ips[blue-net.1]": "198.18.0.7",
			},
			env: []string{
				"DEWAR_IP=198.18.0.7", "DEWAR_IPV6=2001:db8::7",
				"DEWAR_IP_BLUE_NET_1=198.18.0.7", "DEWAR_IPV6_BLUE_NET_1=2001:db8::7",
				"DEWAR_IPS=blue-net.1=198.18.0.7",
			},
		},
		{
			// A network whose address has not come is listed by nothing.
			name: "network without addresses",
			networks: []netdiscover.NetworkAddrs{
				{Name: "blue", Interface: "eth0"},
				{Name: "green", Interface: "eth1", Addrs: prefixes(t, "198.18.1.2/24")},
			},
			scope: map[string]string{"mesos.ip": "198.18.1.2", "mesos.ips[green]": "198.18.1.2"},
			env:   []string{"DEWAR_IP=198.18.1.2", "DEWAR_IP_GREEN=198.18.1.2", "DEWAR_IPS=green=198.18.1.2"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			f.Networks, f.HostAddrs = tt.networks, tt.hostAddrs
			want := maps.Clone(common)
			maps.Copy(want, tt.scope)
			if got := f.Scope(); !maps.Equal(got, want) {
				t.Errorf("Scope() =\n  %v\nwant\n  %v", got, want)
			}
			wantEnv := slices.Concat(commonEnv, tt.env)
			slices.Sort(wantEnv)
			got := f.Env()
			if !slices.IsSorted(got) {
				t.Errorf("Env() is not sorted: %v", got)
			}
			if !slices.Equal(got, wantEnv) {
				t.Errorf("Env() =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantEnv, "\n  "))
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"http":       "HTTP",
		"blue-net.1": "BLUE_NET_1",
		"Admin Port": "ADMIN_PORT",
		"ünï":        "__N__", // every byte outside [A-Z0-9] after upper-casing (two per accented letter)
		"":           "",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNetworkInfos: what the executor discovered goes into
// container_status.network_infos with name, labels (sorted by key) and
// every address with its protocol.
func TestNetworkInfos(t *testing.T) {
	if got := NetworkInfos(nil); got != nil {
		t.Errorf("NetworkInfos(nil) = %v, want nil (host networking reports none)", got)
	}
	got := NetworkInfos([]netdiscover.NetworkAddrs{
		{Name: "blue", Interface: "eth0", Labels: map[string]string{"zone": "a", "app": "web"},
			Addrs: prefixes(t, "198.18.0.2/24", "2001:db8::2/64")},
		{Name: "green", Interface: "eth1"},
	})
	v4, v6 := mesos.IPv4, mesos.IPv6
	want := []mesos.NetworkInfo{
		{
			Name: ptr("blue"),
			Labels: &mesos.Labels{Labels: []mesos.Label{
				{Key: "app", Value: ptr("web")}, {Key: "zone", Value: ptr("a")},
			}},
			IPAddresses: []mesos.NetworkInfo_IPAddress{
				{Protocol: &v4, IPAddress: ptr("198.18.0.2")},
				{Protocol: &v6, IPAddress: ptr("2001:db8::2")},
			},
		},
		{Name: ptr("green")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d NetworkInfos, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Errorf("NetworkInfos[%d] = %v, want %v", i, got[i].String(), want[i].String())
		}
	}
}
