package netdiscover_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/netdiscover"
)

// testNS is a fresh network namespace standing in for a container, with a
// netlink handle to build its interfaces as the CNI plugins would.
type testNS struct {
	t      testing.TB
	name   string
	handle netns.NsHandle
	nl     *netlink.Handle
	logs   *observer.ObservedLogs
}

func newNS(t testing.TB) *testNS {
	t.Helper()
	name, handle := netnstest.New(t)
	h, err := netlink.NewHandleAt(handle, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return &testNS{t: t, name: name, handle: handle, nl: h}
}

// options points netdiscover at the namespace and logs to the test, and
// to n.logs for tests that wait for a log line.
func (n *testNS) options() netdiscover.Options {
	core, logs := observer.New(zapcore.DebugLevel)
	n.logs = logs
	log := zaptest.NewLogger(n.t, zaptest.Level(zapcore.DebugLevel))
	log = zap.New(zapcore.NewTee(log.Core(), core))
	return netdiscover.Options{Namespace: &n.handle, Log: log, TentativeWait: 20 * time.Second}
}

// veth creates ifname with a peer "p<ifname>" in the same namespace, as the
// CI kernel has no dummy driver. up brings both ends up (the link gets a
// carrier); otherwise both stay down.
func (n *testNS) veth(ifname string, up bool) netlink.Link {
	n.t.Helper()
	peer := "p" + ifname
	if err := n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifname}, PeerName: peer}); err != nil {
		n.t.Fatalf("add veth %s: %v", ifname, err)
	}
	if up {
		n.setUp(ifname)
		n.setUp(peer)
	}
	return n.link(ifname)
}

func (n *testNS) link(ifname string) netlink.Link {
	n.t.Helper()
	l, err := n.nl.LinkByName(ifname)
	if err != nil {
		n.t.Fatalf("link %s: %v", ifname, err)
	}
	return l
}

func (n *testNS) setUp(ifname string) {
	n.t.Helper()
	if err := n.nl.LinkSetUp(n.link(ifname)); err != nil {
		n.t.Fatalf("set %s up: %v", ifname, err)
	}
}

func (n *testNS) delLink(ifname string) {
	n.t.Helper()
	if err := n.nl.LinkDel(n.link(ifname)); err != nil {
		n.t.Fatalf("delete %s: %v", ifname, err)
	}
}

// addrOpt changes an address before it is added.
type addrOpt func(*netlink.Addr)

// dad leaves duplicate address detection on (addAddr adds IPv6 addresses
// with nodad, ready at once, unless told otherwise).
func dad(a *netlink.Addr) { a.Flags &^= unix.IFA_F_NODAD }

func scope(s int) addrOpt { return func(a *netlink.Addr) { a.Scope = s } }

// deprecated adds the address with its preferred lifetime over.
func deprecated(a *netlink.Addr) { a.PreferedLft, a.ValidLft = 0, 600 }

func (n *testNS) addAddr(ifname, cidr string, opts ...addrOpt) {
	n.t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		n.t.Fatalf("parse %s: %v", cidr, err)
	}
	if a.IP.To4() == nil {
		a.Flags |= unix.IFA_F_NODAD
	}
	for _, o := range opts {
		o(a)
	}
	if err := n.nl.AddrAdd(n.link(ifname), a); err != nil {
		n.t.Fatalf("add %s to %s: %v", cidr, ifname, err)
	}
}

func (n *testNS) delAddr(ifname, cidr string) {
	n.t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		n.t.Fatalf("parse %s: %v", cidr, err)
	}
	if err := n.nl.AddrDel(n.link(ifname), a); err != nil {
		n.t.Fatalf("delete %s from %s: %v", cidr, ifname, err)
	}
}

// flags returns the kernel's flags of the address cidr on ifname.
func (n *testNS) flags(ifname, cidr string) int {
	n.t.Helper()
	want := netip.MustParsePrefix(cidr)
	addrs, err := n.nl.AddrList(n.link(ifname), netlink.FAMILY_ALL)
	if err != nil {
		n.t.Fatalf("list addresses of %s: %v", ifname, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == want.Addr() {
			return a.Flags
		}
	}
	n.t.Fatalf("%s not on %s", cidr, ifname)
	return 0
}

// waitLog polls until a log entry with message msg was written.
func (n *testNS) waitLog(msg string, timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for n.logs.FilterMessage(msg).Len() == 0 {
		if time.Now().After(deadline) {
			n.t.Fatalf("no log %q within %s", msg, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
