package netdiscover_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/benchtab"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/netdiscover"
)

// BenchmarkDiscover measures a whole Discover (open a netlink socket in the
// namespace, dump links and addresses, map them to networks) in a namespace
// with 1, 10 and 100 attached networks, many times after a warm-up, and
// beside it, in the same run and namespace, the floor it cannot beat: one
// raw netlink address dump on an already open socket
// (netlink.Handle.AddrList).
func BenchmarkDiscover(b *testing.B) {
	const warm, samples = 10, 200
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
			for b.Loop() {
				discover, dump := benchtab.Pair(b, warm, samples, func() (time.Duration, error) {
					start := time.Now()
					got, err := netdiscover.Discover(b.Context(), nets, opt)
					d := time.Since(start)
					if err == nil && len(got) != count {
						err = fmt.Errorf("Discover found %d networks, want %d", len(got), count)
					}
					return d, err
				}, func() (time.Duration, error) {
					start := time.Now()
					addrs, err := n.nl.AddrList(nil, netlink.FAMILY_ALL)
					d := time.Since(start)
					if err == nil && len(addrs) == 0 {
						err = errors.New("AddrList found no address")
					}
					return d, err
				})
				benchtab.Report(b, fmt.Sprintf("netdiscover: Discover, %d networks (%d addresses)", count, 2*count), "discover", discover,
					"one netlink address dump (open socket)", dump)
			}
		})
	}
}
