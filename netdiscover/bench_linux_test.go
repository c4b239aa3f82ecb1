package netdiscover_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/netdiscover"
)

// BenchmarkDiscover measures a whole Discover (open a netlink socket in the
// namespace, dump links and addresses, map them to networks) in a namespace
// with 1, 10 and 100 attached networks, and beside it, in the same run and
// namespace, the floor it cannot beat: one raw netlink address dump on an
// already open socket (netlink.Handle.AddrList).
func BenchmarkDiscover(b *testing.B) {
	testenv.NeedRoot(b)
	for _, count := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("interfaces=%d", count), func(b *testing.B) {
			n := newNS(b)
			nets := make([]netdiscover.Network, count)
			for i := range count {
				ifname := netdiscover.InterfaceName(i)
				nets[i] = netdiscover.Network{Name: fmt.Sprintf("net%d", i)}
				n.veth(ifname, true)
				n.addAddr(ifname, fmt.Sprintf("198.18.%d.2/24", i))
				n.addAddr(ifname, fmt.Sprintf("2001:db8:%x::2/64", i))
			}
			opt := netdiscover.Options{Namespace: &n.handle, Log: zap.NewNop()}

			var discover, dump time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				got, err := netdiscover.Discover(b.Context(), nets, opt)
				discover += time.Since(start)
				if err != nil || len(got) != count {
					b.Fatalf("Discover = %d networks, %v", len(got), err)
				}

				start = time.Now()
				addrs, err := n.nl.AddrList(nil, netlink.FAMILY_ALL)
				dump += time.Since(start)
				if err != nil || len(addrs) == 0 {
					b.Fatalf("AddrList = %d addresses, %v", len(addrs), err)
				}
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
			b.ReportMetric(per(discover), "discover-us/op")
			b.ReportMetric(per(dump), "addrdump-us/op")
			b.ReportMetric(float64(discover)/float64(max(dump, 1)), "discover/addrdump")
		})
	}
}
