package taskrun

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/netdiscover"
)

// Facts are what a task learns about itself at run time: the values behind
// the {{thermos.*}} and {{mesos.*}} template variables and the DEWAR_*
// environment.
type Facts struct {
	TaskID   string
	User     string
	Instance int
	Hostname string
	Sandbox  string
	Ports    map[string]int
	// Networks in network_infos order; empty with host networking.
	Networks []netdiscover.NetworkAddrs
	// HostAddrs are the host's addresses, used with host networking.
	HostAddrs []netip.Prefix
}

// PrimaryIP is {{mesos.ip}}: the first IPv4 address of the first network
// that has one (IPv6 if there is no IPv4 anywhere); with host networking,
// the host's first address.
func (f Facts) PrimaryIP() (netip.Addr, bool) {
	if len(f.Networks) > 0 {
		if a, ok := netdiscover.First(f.Networks, false); ok {
			return a, true
		}
		return netdiscover.First(f.Networks, true)
	}
	return firstOf(f.HostAddrs, false)
}

// PrimaryIPv6 is {{mesos.ipv6}}.
func (f Facts) PrimaryIPv6() (netip.Addr, bool) {
	if len(f.Networks) > 0 {
		return netdiscover.First(f.Networks, true)
	}
	return firstOf(f.HostAddrs, true)
}

func firstOf(ps []netip.Prefix, v6 bool) (netip.Addr, bool) {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// networkFirst is {{mesos.ips[NET]}}: that network's first address, IPv4
// before IPv6.
func networkFirst(n netdiscover.NetworkAddrs) (netip.Addr, bool) {
	if a, ok := n.First(false); ok {
		return a, true
	}
	return n.First(true)
}

// Scope returns the template variables, keyed by their full reference as
// written between the braces.
func (f Facts) Scope() map[string]string {
	s := map[string]string{
		"thermos.task_id": f.TaskID,
		"thermos.user":    f.User,
		"mesos.instance":  strconv.Itoa(f.Instance),
		"mesos.hostname":  f.Hostname,
	}
	for name, port := range f.Ports {
		s["thermos.ports["+name+"]"] = strconv.Itoa(port)
	}
	if a, ok := f.PrimaryIP(); ok {
		s["mesos.ip"] = a.String()
	}
	if a, ok := f.PrimaryIPv6(); ok {
		s["mesos.ipv6"] = a.String()
	}
	for _, n := range f.Networks {
		if a, ok := networkFirst(n); ok {
			s["mesos.ips["+n.Name+"]"] = a.String()
		}
	}
	return s
}

// Env returns the task's DEWAR_* environment (see README, "What the task
// sees"), sorted.
func (f Facts) Env() []string {
	env := []string{
		"MESOS_SANDBOX=" + f.Sandbox,
		"DEWAR_TASK_ID=" + f.TaskID,
		"DEWAR_INSTANCE=" + strconv.Itoa(f.Instance),
		"DEWAR_HOSTNAME=" + f.Hostname,
	}
	if a, ok := f.PrimaryIP(); ok {
		env = append(env, "DEWAR_IP="+a.String())
	}
	if a, ok := f.PrimaryIPv6(); ok {
		env = append(env, "DEWAR_IPV6="+a.String())
	}
	var pairs []string
	for _, n := range f.Networks {
		if a, ok := networkFirst(n); ok {
			pairs = append(pairs, n.Name+"="+a.String())
			env = append(env, "DEWAR_IP_"+EnvName(n.Name)+"="+a.String())
		}
		if a, ok := n.First(true); ok {
			env = append(env, "DEWAR_IPV6_"+EnvName(n.Name)+"="+a.String())
		}
	}
	if len(pairs) > 0 {
		env = append(env, "DEWAR_IPS="+strings.Join(pairs, ","))
	}
	for name, port := range f.Ports {
		env = append(env, "DEWAR_PORT_"+EnvName(name)+"="+strconv.Itoa(port))
	}
	sort.Strings(env)
	return env
}

// EnvName turns a network or port name into the tail of a variable name:
// upper case, every character outside [A-Z0-9] becomes '_'
// ("blue-net.1" → "BLUE_NET_1").
func EnvName(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Labels is a NetworkInfo's labels from a map, sorted by key so that the
// same map always gives the same protobuf; nil for none.
func Labels(m map[string]string) *mesos.Labels {
	if len(m) == 0 {
		return nil
	}
	ls := &mesos.Labels{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ls.Labels = append(ls.Labels, mesos.Label{Key: k, Value: ptr(m[k])})
	}
	return ls
}

// NetworkInfos renders discovered addresses as Mesos NetworkInfos (name,
// labels, ip_addresses with protocol) for container_status.
func NetworkInfos(nets []netdiscover.NetworkAddrs) []mesos.NetworkInfo {
	var out []mesos.NetworkInfo
	for _, n := range nets {
		ni := mesos.NetworkInfo{Name: ptr(n.Name), Labels: Labels(n.Labels)}
		for _, p := range n.Addrs {
			proto := mesos.IPv4
			if p.Addr().Is6() {
				proto = mesos.IPv6
			}
			ni.IPAddresses = append(ni.IPAddresses, mesos.NetworkInfo_IPAddress{
				Protocol: proto.Enum(), IPAddress: ptr(p.Addr().String()),
			})
		}
		out = append(out, ni)
	}
	return out
}

func ptr(s string) *string { return &s }

// describe is a one-line summary of the addresses, for logs and messages.
func describe(nets []netdiscover.NetworkAddrs) string {
	var parts []string
	for _, n := range nets {
		var as []string
		for _, p := range n.Addrs {
			as = append(as, p.Addr().String())
		}
		parts = append(parts, fmt.Sprintf("%s(%s)=%s", n.Name, n.Interface, strings.Join(as, "|")))
	}
	return strings.Join(parts, " ")
}
