package netdiscover

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// Network is one NetworkInfo of ExecutorInfo.container.network_infos, in
// that order.
type Network struct {
	Name   string
	Labels map[string]string
}

// NetworkAddrs is what was found for one named network.
type NetworkAddrs struct {
	Name      string
	Labels    map[string]string
	Interface string // ethN
	// Addrs are the usable addresses with their prefix length: every IPv4
	// address first, then every IPv6 one, each family in the kernel's
	// order. For IPv4 that is the order they were added in, so the first
	// is the interface's primary address (the CNI result's first IP); for
	// IPv6 the kernel lists the most recently added address first.
	Addrs []netip.Prefix
}

// HostAddrs is what host networking offers a task: Thermos announces the
// agent's hostname, and the host's usable addresses are reported beside it.
type HostAddrs struct {
	Hostname string
	// Addrs are the usable addresses of every interface but loopback ones:
	// IPv4 first, then IPv6, by interface index, each interface in the
	// kernel's order.
	Addrs []netip.Prefix
}

// Options tune Discover, Watch and Host. The zero value is ready to use.
type Options struct {
	// Namespace is the network namespace to look into; nil means the
	// namespace of the calling process. Tests pass a namespace they made.
	// The caller keeps ownership of the handle.
	Namespace *netns.NsHandle
	// TentativeWait bounds how long Discover waits for addresses that are
	// not usable yet: IPv6 addresses in duplicate address detection, and
	// interfaces or addresses not there yet. Zero means DefaultTentativeWait;
	// a negative value means read once and do not wait.
	TentativeWait time.Duration
	// Debounce is how long Watch lets a burst of netlink messages go on
	// before it re-reads the state once for all of them. Zero means
	// DefaultDebounce. It bounds how late a change is seen.
	Debounce time.Duration
	// Log receives what discovery decided and why; nil discards it.
	Log *zap.Logger
}

// Defaults for Options.
const (
	// IPv6 duplicate address detection takes one to two seconds with the
	// kernel's defaults (a random delay below rtr_solicit_delay, then
	// dad_transmits probes one retrans_time apart).
	DefaultTentativeWait = 10 * time.Second
	DefaultDebounce      = 50 * time.Millisecond
)

func (o Options) tentativeWait() time.Duration {
	switch {
	case o.TentativeWait == 0:
		return DefaultTentativeWait
	case o.TentativeWait < 0:
		return 0
	}
	return o.TentativeWait
}

func (o Options) debounce() time.Duration {
	if o.Debounce <= 0 {
		return DefaultDebounce
	}
	return o.Debounce
}

func (o Options) log() *zap.Logger {
	if o.Log == nil {
		return zap.NewNop()
	}
	return o.Log
}

// InterfaceName is the interface the Mesos network/cni isolator gives the
// i-th named network (counting from 0).
func InterfaceName(i int) string { return fmt.Sprintf("eth%d", i) }

// assign maps networks to interfaces as the Mesos network/cni isolator
// does: the N-th NetworkInfo with a name gets ethN; NetworkInfos without a
// name are skipped and take no index.
func assign(nets []Network) []NetworkAddrs {
	out := make([]NetworkAddrs, 0, len(nets))
	for _, n := range nets {
		if n.Name == "" {
			continue
		}
		out = append(out, NetworkAddrs{
			Name:      n.Name,
			Labels:    maps.Clone(n.Labels),
			Interface: InterfaceName(len(out)),
		})
	}
	return out
}

// First returns the first address of the wanted family (IPv6 if v6, else
// IPv4) of the first network that has one, networks in network_infos order.
// It is the task's primary address ({{mesos.ip}}, {{mesos.ipv6}}).
func First(nets []NetworkAddrs, v6 bool) (netip.Addr, bool) {
	for _, n := range nets {
		if a, ok := n.First(v6); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// First returns the network's first IPv6 (if v6) or IPv4 address.
func (n NetworkAddrs) First(v6 bool) (netip.Addr, bool) {
	for _, p := range n.Addrs {
		if p.Addr().Is6() == v6 {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// equal reports whether two results hold the same networks, interfaces
// and addresses in the same order. Labels come from the caller and never
// change between two reads.
func equal(a, b []NetworkAddrs) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Interface != b[i].Interface || !slices.Equal(a[i].Addrs, b[i].Addrs) {
			return false
		}
	}
	return true
}

// Errors a NetworkError wraps, for errors.Is.
var (
	// ErrInterfaceMissing: the network's ethN interface does not exist.
	ErrInterfaceMissing = errors.New("interface missing")
	// ErrNoAddress: the interface exists but holds no usable address.
	ErrNoAddress = errors.New("no usable address")
)

// NetworkError says why one network has no usable address, and what was
// found instead, so the operator can tell a missing attachment from a
// slow DAD from a misconfigured IPAM.
type NetworkError struct {
	Network   string
	Interface string
	Err       error         // ErrInterfaceMissing or ErrNoAddress
	Waited    time.Duration // how long Discover waited for it
	// Found lists the interfaces present (ErrInterfaceMissing) or the
	// addresses on the interface with why each is unusable (ErrNoAddress).
	Found []string
}

func (e *NetworkError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "network %q: interface %s ", e.Network, e.Interface)
	found := strings.Join(e.Found, ", ")
	if found == "" {
		found = "none"
	}
	if errors.Is(e.Err, ErrInterfaceMissing) {
		fmt.Fprintf(&b, "not found; interfaces present: %s", found)
		if e.Waited > 0 {
			fmt.Fprintf(&b, " (waited %s)", e.Waited)
		}
		b.WriteString("; the agent attaches the N-th named network_info as ethN: check that the ExecutorInfo lists the networks the container really joined")
		return b.String()
	}
	b.WriteString("has no usable address")
	if e.Waited > 0 {
		fmt.Fprintf(&b, " after %s", e.Waited)
	}
	fmt.Fprintf(&b, "; addresses present: %s; check the IPAM section of CNI network %q", found, e.Network)
	return b.String()
}

func (e *NetworkError) Unwrap() error { return e.Err }
