package netdiscover_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/netdiscover"
)

// maxLatency is the promise to the executor: an address change shows up in
// a new TASK_RUNNING within a second. Watch's share is the debounce (50 ms
// by default) plus one netlink dump.
const maxLatency = time.Second

func startWatch(t *testing.T, ctx context.Context, n *testNS, nets []netdiscover.Network, opt netdiscover.Options) *netdiscover.Watcher {
	t.Helper()
	w, err := netdiscover.Watch(ctx, nets, opt)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// next waits (generously, to stay clear of CI load) for the next update.
func next(t *testing.T, w *netdiscover.Watcher) []netdiscover.NetworkAddrs {
	t.Helper()
	select {
	case u, ok := <-w.Updates():
		if !ok {
			t.Fatal("Updates closed")
		}
		return u
	case <-time.After(15 * time.Second):
		t.Fatal("no update within 15s")
		return nil
	}
}

// expect checks that the next update is want, seen within maxLatency of
// the change made at changed.
func expect(t *testing.T, w *netdiscover.Watcher, changed time.Time, what string, want []netdiscover.NetworkAddrs) {
	t.Helper()
	got := next(t, w)
	latency := time.Since(changed)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after %s: update\n  %+v\nwant\n  %+v", what, got, want)
	}
	if latency > maxLatency {
		t.Errorf("after %s: update came %s after the change, want < %s", what, latency, maxLatency)
	}
	t.Logf("%s: seen after %s", what, latency.Round(time.Millisecond))
}

func netAddrs(name, iface string, addrs ...string) netdiscover.NetworkAddrs {
	return netdiscover.NetworkAddrs{Name: name, Interface: iface, Addrs: prefixes(addrs...)}
}

func TestWatchReportsEveryChange(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", true)
	n.addAddr("eth0", "198.18.0.2/24")
	nets := []netdiscover.Network{{Name: "blue"}, {Name: "red"}}
	w := startWatch(t, t.Context(), n, nets, n.options())

	first := next(t, w)
	want := []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "198.18.0.2/24"), netAddrs("red", "eth1")}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("first update %+v, want the state at start %+v", first, want)
	}

	steps := []struct {
		what   string
		change func()
		want   []netdiscover.NetworkAddrs
	}{{
		what:   "address added",
		change: func() { n.addAddr("eth0", "2001:db8::2/64") },
		want:   []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "198.18.0.2/24", "2001:db8::2/64"), netAddrs("red", "eth1")},
	}, {
		what:   "address removed",
		change: func() { n.delAddr("eth0", "198.18.0.2/24") },
		want:   []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "2001:db8::2/64"), netAddrs("red", "eth1")},
	}, {
		what: "interface attached",
		change: func() {
			n.veth("eth1", true)
			n.addAddr("eth1", "198.18.1.2/24")
		},
		want: []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "2001:db8::2/64"), netAddrs("red", "eth1", "198.18.1.2/24")},
	}, {
		what:   "interface removed",
		change: func() { n.delLink("eth0") },
		want:   []netdiscover.NetworkAddrs{netAddrs("blue", "eth0"), netAddrs("red", "eth1", "198.18.1.2/24")},
	}}
	for _, s := range steps {
		changed := time.Now()
		s.change()
		expect(t, w, changed, s.what, s.want)
	}
}

// Netlink traffic that leaves the networks' addresses unchanged (another
// interface, a link-local address, an address still tentative) emits
// nothing: the update after it is the next real change.
func TestWatchIgnoresIrrelevantChanges(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", true)
	n.addAddr("eth0", "198.18.0.2/24")
	w := startWatch(t, t.Context(), n, []netdiscover.Network{{Name: "blue"}}, n.options())
	next(t, w)

	n.veth("other0", true)
	n.addAddr("other0", "198.18.5.5/24")
	n.addAddr("eth0", "fe80::7/64")
	n.addAddr("eth0", "2001:db8::dead/64", deprecated)
	// Wait until Watch has read the state after all of those: its
	// "nothing changed" verdict is logged.
	n.waitLog("netlink change left the networks' addresses as they were", 10*time.Second)

	changed := time.Now()
	n.addAddr("eth0", "198.18.0.3/24")
	expect(t, w, changed, "real change after irrelevant ones", []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "198.18.0.2/24", "198.18.0.3/24")})
}

// A burst of changes (as a CNI plugin makes them) is read once, not once
// per netlink message.
func TestWatchCollapsesBursts(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", true)
	opt := n.options()
	// Far longer than the burst takes even on a loaded CI machine.
	opt.Debounce = 500 * time.Millisecond
	w := startWatch(t, t.Context(), n, []netdiscover.Network{{Name: "blue"}}, opt)
	next(t, w)

	const burst = 20
	var all []string
	for i := range burst {
		a := fmt.Sprintf("198.18.0.%d/24", i+1)
		all = append(all, a)
		n.addAddr("eth0", a)
	}
	want := []netip.Prefix(prefixes(all...))
	updates := 0
	for {
		got := next(t, w)
		updates++
		if len(got) == 1 && reflect.DeepEqual(got[0].Addrs, want) {
			break
		}
	}
	t.Logf("%d address changes gave %d update(s)", burst, updates)
	if updates > burst/4 {
		t.Errorf("%d changes gave %d updates; bursts are not collapsed", burst, updates)
	}
}

func TestWatchStops(t *testing.T) {
	testenv.NeedRoot(t)
	for _, tt := range []struct {
		name string
		stop func(context.CancelFunc, *netdiscover.Watcher)
	}{
		{"Close", func(_ context.CancelFunc, w *netdiscover.Watcher) { _ = w.Close(); _ = w.Close() }},
		{"context", func(cancel context.CancelFunc, _ *netdiscover.Watcher) { cancel() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNS(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w := startWatch(t, ctx, n, []netdiscover.Network{{Name: "blue"}}, n.options())
			next(t, w)
			tt.stop(cancel, w)
			select {
			case _, ok := <-w.Updates():
				if ok {
					t.Fatal("an update after stopping, want Updates closed")
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Updates not closed within 15s of stopping")
			}
		})
	}
}

// An IPv6 address Discover had to leave out because DAD was still running
// reaches Watch's reader once DAD succeeds.
func TestWatchReportsAddressAfterDAD(t *testing.T) {
	testenv.NeedRoot(t)
	n := newNS(t)
	n.veth("eth0", false)
	n.setUp("eth0") // no carrier while peth0 is down: DAD waits
	n.addAddr("eth0", "198.18.0.2/24")
	n.addAddr("eth0", "2001:db8::2/64", dad)
	w := startWatch(t, t.Context(), n, []netdiscover.Network{{Name: "blue"}}, n.options())
	if got, want := next(t, w), []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "198.18.0.2/24")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first update %+v, want %+v (2001:db8::2 is tentative)", got, want)
	}
	n.setUp("peth0")
	want := []netdiscover.NetworkAddrs{netAddrs("blue", "eth0", "198.18.0.2/24", "2001:db8::2/64")}
	if got := next(t, w); !reflect.DeepEqual(got, want) {
		t.Fatalf("update after DAD %+v, want %+v", got, want)
	}
}
