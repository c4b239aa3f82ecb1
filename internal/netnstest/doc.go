// Package netnstest gives tests a network namespace of their own, so that a
// test which changes networking never touches the machine's own stack
// (README, "Development").
//
// Every namespace is named "dewar-t-<random hex>" and lives in /run/netns
// like one made by `ip netns add`, so `ip netns exec`, nsenter and CNI
// plugins (CNI_NETNS=/run/netns/<name>) can all reach it. It is deleted in
// t.Cleanup, also when the test fails; the suite checks that `ip netns list`
// holds no dewar-t-* name afterwards.
//
//	name, ns := netnstest.New(t)      // fresh namespace, loopback up
//	netnstest.Do(t, name, func() error { // code inside it, on a locked OS thread
//		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"})
//	})
//	out := netnstest.Exec(t, name, "ip", "-br", "addr") // a command inside it
//	cmd := netnstest.Command(ctx, name, "java", ...)      // a long-running one
//
// The CI kernel has no dummy driver: make test interfaces as veth pairs.
//
// The handle New returns suits APIs that take a netns.NsHandle, such as
// netlink.NewHandleAt or netdiscover.Options.Namespace; it is closed in
// t.Cleanup, so do not close it yourself.
//
// All helpers need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); New calls
// testenv.NeedRoot, which skips the test, or fails it under `make test`.
package netnstest
