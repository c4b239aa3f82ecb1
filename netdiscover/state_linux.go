package netdiscover

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxDumpAttempts bounds how often a dump is read again when the kernel
// marks it interrupted (NLM_F_DUMP_INTR: the table changed while it was
// being dumped, so the answer may miss or repeat entries). A half-read
// dump is never used; containernetworking's netlinksafe does the same.
const maxDumpAttempts = 10

// link is one interface of the namespace.
type link struct {
	index    int
	name     string
	loopback bool
}

// snapshot is the full address state of a namespace: two consistent dumps.
type snapshot struct {
	links []link                 // by ifindex
	addrs map[int][]netlink.Addr // by ifindex, each in the kernel's order
}

func openHandle(ns *netns.NsHandle) (*netlink.Handle, error) {
	target := netns.None() // the caller's own namespace
	if ns != nil {
		target = *ns
	}
	h, err := netlink.NewHandleAt(target, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open a netlink socket in the network namespace (needs CAP_SYS_ADMIN to enter another namespace): %w", err)
	}
	return h, nil
}

func retryDump[T any](what string, dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range maxDumpAttempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return v, fmt.Errorf("netlink %s dump: %w", what, err)
			}
			return v, nil
		}
	}
	return v, fmt.Errorf("netlink %s dump interrupted %d times in a row (the table keeps changing): %w", what, maxDumpAttempts, err)
}

func readSnapshot(h *netlink.Handle) (snapshot, error) {
	links, err := retryDump("link", h.LinkList)
	if err != nil {
		return snapshot{}, err
	}
	addrs, err := retryDump("address", func() ([]netlink.Addr, error) {
		return h.AddrList(nil, netlink.FAMILY_ALL)
	})
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{addrs: make(map[int][]netlink.Addr)}
	for _, l := range links {
		a := l.Attrs()
		s.links = append(s.links, link{index: a.Index, name: a.Name, loopback: a.RawFlags&unix.IFF_LOOPBACK != 0})
	}
	sort.Slice(s.links, func(i, j int) bool { return s.links[i].index < s.links[j].index })
	for _, a := range addrs {
		s.addrs[a.LinkIndex] = append(s.addrs[a.LinkIndex], a)
	}
	return s, nil
}

func (s snapshot) link(name string) (link, bool) {
	for _, l := range s.links {
		if l.name == name {
			return l, true
		}
	}
	return link{}, false
}

func (s snapshot) linkNames() []string {
	names := make([]string, 0, len(s.links))
	for _, l := range s.links {
		names = append(names, l.name)
	}
	return names
}

// verdict is what an address is good for.
type verdict int

const (
	usable   verdict = iota
	pending          // IPv6 duplicate address detection still running: wait
	unusable         // never announce it
)

// classify decides whether a task may be reached at a. Only global-scope
// unicast addresses are: loopback and link-local ones mean nothing to
// another host (a 169.254/16 address added without "scope link" still has
// global scope, so the address itself is checked too). DAD-failed
// addresses are duplicates and deprecated ones (preferred lifetime over)
// must not be handed to new connections (RFC 4862 5.5.4); neither is waited
// for. Tentative ones become usable when DAD succeeds, so they are.
func classify(a netlink.Addr) (netip.Prefix, verdict, string) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, unusable, "malformed"
	}
	ip = ip.Unmap()
	ones, _ := a.Mask.Size()
	p := netip.PrefixFrom(ip, ones)
	switch {
	case ip.IsLoopback():
		return p, unusable, "loopback"
	case ip.IsLinkLocalUnicast():
		return p, unusable, "link-local"
	case ip.IsUnspecified() || ip.IsMulticast():
		return p, unusable, "not unicast"
	case a.Scope != unix.RT_SCOPE_UNIVERSE:
		return p, unusable, "scope " + scopeName(a.Scope)
	case a.Flags&unix.IFA_F_DADFAILED != 0:
		return p, unusable, "dadfailed"
	case a.Flags&unix.IFA_F_TENTATIVE != 0:
		return p, pending, "tentative"
	case a.Flags&unix.IFA_F_DEPRECATED != 0:
		return p, unusable, "deprecated"
	}
	return p, usable, ""
}

func scopeName(s int) string {
	switch s {
	case unix.RT_SCOPE_SITE:
		return "site"
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "host"
	case unix.RT_SCOPE_NOWHERE:
		return "nowhere"
	}
	return fmt.Sprint(s)
}

// usableAddrs returns the usable addresses of one interface, IPv4 first,
// plus the ones still tentative and a description of the rejected ones.
func (s snapshot) usableAddrs(index int) (addrs, tentative []netip.Prefix, rejected []string) {
	var v6 []netip.Prefix
	for _, a := range s.addrs[index] {
		p, v, why := classify(a)
		switch v {
		case usable:
			if p.Addr().Is4() {
				addrs = append(addrs, p)
			} else {
				v6 = append(v6, p)
			}
		case pending:
			tentative = append(tentative, p)
			rejected = append(rejected, fmt.Sprintf("%s (%s)", p, why))
		default:
			rejected = append(rejected, fmt.Sprintf("%s (%s)", p, why))
		}
	}
	return append(addrs, v6...), tentative, rejected
}

// netState is one network as a snapshot shows it.
type netState struct {
	NetworkAddrs
	missing   bool           // no interface of that name
	tentative []netip.Prefix // IPv6 addresses in DAD
	// found is what the error shows: the interfaces present when this
	// one is missing, else its unusable addresses and why, such as
	// "fe80::1/64 (link-local)".
	found []string
}

// settled: the interface is there, has an address, and nothing is left
// to wait for.
func (n netState) settled() bool {
	return !n.missing && len(n.Addrs) > 0 && len(n.tentative) == 0
}

// evaluate reads the networks' addresses out of the snapshot. want comes
// from assign; the result shares nothing with it.
func (s snapshot) evaluate(want []NetworkAddrs) []netState {
	out := make([]netState, len(want))
	for i, w := range want {
		st := netState{NetworkAddrs: NetworkAddrs{Name: w.Name, Labels: maps.Clone(w.Labels), Interface: w.Interface}}
		if l, ok := s.link(w.Interface); ok {
			st.Addrs, st.tentative, st.found = s.usableAddrs(l.index)
		} else {
			st.missing, st.found = true, s.linkNames()
		}
		out[i] = st
	}
	return out
}

func results(states []netState) []NetworkAddrs {
	out := make([]NetworkAddrs, len(states))
	for i, s := range states {
		out[i] = s.NetworkAddrs
	}
	return out
}
