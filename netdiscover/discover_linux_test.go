package netdiscover_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/netdiscover"
)

func TestDiscover(t *testing.T) {
	testenv.NeedRoot(t)
	blue := netdiscover.Network{Name: "blue", Labels: map[string]string{"env": "test"}}
	red := netdiscover.Network{Name: "red"}
	tests := []struct {
		name  string
		setup func(*testNS)
		nets  []netdiscover.Network
		want  []netdiscover.NetworkAddrs
	}{{
		name: "one network",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
		},
		nets: []netdiscover.Network{blue},
		want: []netdiscover.NetworkAddrs{{Name: "blue", Labels: blue.Labels, Interface: "eth0", Addrs: prefixes("198.18.0.2/24")}},
	}, {
		name: "two networks in network_infos order",
		setup: func(n *testNS) {
			// Created in the opposite order: ifindex must not matter.
			n.veth("eth1", true)
			n.addAddr("eth1", "198.18.1.2/24")
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
		},
		nets: []netdiscover.Network{blue, red},
		want: []netdiscover.NetworkAddrs{
			{Name: "blue", Labels: blue.Labels, Interface: "eth0", Addrs: prefixes("198.18.0.2/24")},
			{Name: "red", Interface: "eth1", Addrs: prefixes("198.18.1.2/24")},
		},
	}, {
		name: "dual stack lists IPv4 first",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "2001:db8::2/64")
			n.addAddr("eth0", "198.18.0.2/24")
		},
		nets: []netdiscover.Network{blue},
		want: []netdiscover.NetworkAddrs{{Name: "blue", Labels: blue.Labels, Interface: "eth0", Addrs: prefixes("198.18.0.2/24", "2001:db8::2/64")}},
	}, {
		name: "kernel order within a family",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
			n.addAddr("eth0", "198.18.0.3/24")
			n.addAddr("eth0", "2001:db8::2/64")
			n.addAddr("eth0", "2001:db8::3/64")
		},
		nets: []netdiscover.Network{blue},
		// IPv4 in the order added (the first is the primary address);
		// IPv6 newest first, as the kernel keeps them.
		want: []netdiscover.NetworkAddrs{{Name: "blue", Labels: blue.Labels, Interface: "eth0",
			Addrs: prefixes("198.18.0.2/24", "198.18.0.3/24", "2001:db8::3/64", "2001:db8::2/64")}},
	}, {
		name: "unnamed network_infos take no interface",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
			n.veth("eth1", true)
			n.addAddr("eth1", "198.18.1.2/24")
		},
		nets: []netdiscover.Network{{}, blue, {Labels: map[string]string{"x": "y"}}, red},
		want: []netdiscover.NetworkAddrs{
			{Name: "blue", Labels: blue.Labels, Interface: "eth0", Addrs: prefixes("198.18.0.2/24")},
			{Name: "red", Interface: "eth1", Addrs: prefixes("198.18.1.2/24")},
		},
	}, {
		name: "only global unicast addresses count",
		setup: func(n *testNS) {
			n.veth("eth0", true) // up: the kernel adds an fe80:: address
			n.addAddr("eth0", "169.254.7.7/16")
			n.addAddr("eth0", "198.18.0.9/32", scope(unix.RT_SCOPE_HOST))
			n.addAddr("eth0", "198.18.0.2/24")
			n.addAddr("eth0", "fe80::7/64")
			n.addAddr("eth0", "2001:db8::dead/64", deprecated)
			n.addAddr("eth0", "2001:db8::2/64")
		},
		nets: []netdiscover.Network{blue},
		want: []netdiscover.NetworkAddrs{{Name: "blue", Labels: blue.Labels, Interface: "eth0", Addrs: prefixes("198.18.0.2/24", "2001:db8::2/64")}},
	}, {
		name:  "no named network",
		setup: func(*testNS) {},
		nets:  []netdiscover.Network{{}},
		want:  []netdiscover.NetworkAddrs{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNS(t)
			tt.setup(n)
			got, err := netdiscover.Discover(t.Context(), tt.nets, n.options())
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Discover =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func TestDiscoverErrors(t *testing.T) {
	testenv.NeedRoot(t)
	nets := []netdiscover.Network{{Name: "blue"}, {Name: "red"}}
	tests := []struct {
		name    string
		setup   func(*testNS)
		wantIs  error
		network string
		iface   string
		text    []string
	}{{
		name: "missing interface",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
		},
		wantIs: netdiscover.ErrInterfaceMissing, network: "red", iface: "eth1",
		text: []string{`network "red": interface eth1 not found; interfaces present: lo, `, "eth0", "peth0"},
	}, {
		name: "no usable address",
		setup: func(n *testNS) {
			n.veth("eth0", true)
			n.addAddr("eth0", "198.18.0.2/24")
			n.veth("eth1", false) // down: DAD cannot start
			n.addAddr("eth1", "169.254.7.7/16")
			n.addAddr("eth1", "2001:db8::2/64", dad)
		},
		wantIs: netdiscover.ErrNoAddress, network: "red", iface: "eth1",
		text: []string{`network "red": interface eth1 has no usable address after `,
			"169.254.7.7/16 (link-local)", "2001:db8::2/64 (tentative)", `CNI network "red"`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNS(t)
			tt.setup(n)
			opt := n.options()
			opt.TentativeWait = 300 * time.Millisecond
			start := time.Now()
			got, err := netdiscover.Discover(t.Context(), nets, opt)
			if err == nil {
				t.Fatalf("Discover = %+v, want an error", got)
			}
			if waited := time.Since(start); waited < opt.TentativeWait {
				t.Errorf("Discover failed after %s, before TentativeWait %s", waited, opt.TentativeWait)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			var ne *netdiscover.NetworkError
			if !errors.As(err, &ne) || ne.Network != tt.network || ne.Interface != tt.iface {
				t.Errorf("error %v: want a NetworkError for %s on %s, got %+v", err, tt.network, tt.iface, ne)
			}
			for _, s := range tt.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if strings.Contains(err.Error(), `"blue"`) {
				t.Errorf("error %q blames network blue, which is fine", err)
			}
		})
	}
}

// An IPv6 address in duplicate address detection is not reported yet, and
// Discover waits for it: here DAD cannot even start until the link has a
// carrier, which the test gives it only once Discover is waiting.
func TestDiscoverWaitsForTentativeAddress(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", false)
	n.setUp("eth0") // up, but no carrier while its peer is down
	n.addAddr("eth0", "198.18.0.2/24")
	n.addAddr("eth0", "2001:db8::2/64", dad)
	if n.flags("eth0", "2001:db8::2/64")&unix.IFA_F_TENTATIVE == 0 {
		t.Fatal("2001:db8::2 is not tentative; the test cannot show waiting")
	}

	opt := n.options()
	type result struct {
		addrs []netdiscover.NetworkAddrs
		err   error
	}
	done := make(chan result, 1)
	go func() {
		a, err := netdiscover.Discover(t.Context(), []netdiscover.Network{{Name: "blue"}}, opt)
		done <- result{a, err}
	}()
	n.waitLog("waiting for addresses", 10*time.Second)
	select {
	case r := <-done:
		t.Fatalf("Discover returned while 2001:db8::2 was tentative: %+v, %v", r.addrs, r.err)
	default:
	}
	n.setUp("peth0") // carrier: DAD runs (about 1-2 s with kernel defaults)

	r := <-done
	if r.err != nil {
		t.Fatalf("Discover: %v", r.err)
	}
	want := []netdiscover.NetworkAddrs{{Name: "blue", Interface: "eth0", Addrs: prefixes("198.18.0.2/24", "2001:db8::2/64")}}
	if !reflect.DeepEqual(r.addrs, want) {
		t.Errorf("Discover = %+v, want %+v", r.addrs, want)
	}
}

// Past TentativeWait, a network with a usable address is reported without
// its tentative ones, and the operator is told.
func TestDiscoverTentativeDeadline(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", false)
	n.setUp("eth0")
	n.addAddr("eth0", "198.18.0.2/24")
	n.addAddr("eth0", "2001:db8::2/64", dad)
	opt := n.options()
	opt.TentativeWait = 300 * time.Millisecond
	start := time.Now()
	got, err := netdiscover.Discover(t.Context(), []netdiscover.Network{{Name: "blue"}}, opt)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if waited := time.Since(start); waited < opt.TentativeWait {
		t.Errorf("Discover returned after %s, before TentativeWait %s", waited, opt.TentativeWait)
	}
	want := []netdiscover.NetworkAddrs{{Name: "blue", Interface: "eth0", Addrs: prefixes("198.18.0.2/24")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %+v, want %+v", got, want)
	}
	if n.logs.FilterMessageSnippet("duplicate address detection").Len() == 0 {
		t.Error("no warning about the tentative address")
	}
}

func TestDiscoverHonoursContext(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t) // no eth0: Discover waits
	ctx, cancel := context.WithCancel(t.Context())
	opt := n.options()
	done := make(chan error, 1)
	go func() {
		_, err := netdiscover.Discover(ctx, []netdiscover.Network{{Name: "blue"}}, opt)
		done <- err
	}()
	n.waitLog("waiting for addresses", 10*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Discover after cancel = %v, want context.Canceled", err)
	}
}

func TestHost(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t) // lo is up: 127.0.0.1 and ::1 must not count
	n.veth("eth0", true)
	n.addAddr("eth0", "2001:db8::2/64")
	n.addAddr("eth0", "198.18.0.2/24")
	n.addAddr("lo", "198.18.9.9/32") // a VIP on loopback is not the host's address
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs := prefixes("198.18.0.2/24", "2001:db8::2/64")
	for _, tt := range []struct{ in, want string }{{"", hostname}, {"agent-7.example.org", "agent-7.example.org"}} {
		got, err := netdiscover.Host(t.Context(), tt.in, n.options())
		if err != nil {
			t.Fatalf("Host(%q): %v", tt.in, err)
		}
		want := netdiscover.HostAddrs{Hostname: tt.want, Addrs: wantAddrs}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Host(%q) = %+v, want %+v", tt.in, got, want)
		}
	}
}

// Options.Namespace nil means the caller's own namespace: the executor
// runs inside the container's. Here the caller is a thread moved into the
// test namespace, whose eth0 the test's own namespace does not have.
func TestDiscoverOwnNamespace(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", false)
	n.addAddr("eth0", "198.18.7.2/24")
	opt := n.options()
	opt.Namespace = nil
	var got []netdiscover.NetworkAddrs
	netnstest.Do(t, n.name, func() error {
		var err error
		got, err = netdiscover.Discover(t.Context(), []netdiscover.Network{{Name: "blue"}}, opt)
		return err
	})
	want := []netdiscover.NetworkAddrs{{Name: "blue", Interface: "eth0", Addrs: prefixes("198.18.7.2/24")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %+v, want %+v", got, want)
	}
}
