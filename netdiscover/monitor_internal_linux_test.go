package netdiscover

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/netnstest"
)

// When a subscription dies (the kernel drops messages on a full socket
// with ENOBUFS, and netlink's reader then closes its channel), the monitor
// hints at once, because messages were lost, and subscribes again, so
// later changes still arrive. A real overflow cannot be forced on demand,
// so the test hands run a subscription whose channels it closes itself.
func TestMonitorResubscribes(t *testing.T) {
	name, ns := netnstest.New(t)
	m := &monitor{ns: &ns, log: zaptest.NewLogger(t), hints: chans.NewWake()}
	ctx, cancel := context.WithCancel(t.Context())
	m.cancel = cancel
	dying := &subscription{addrs: make(chan netlink.AddrUpdate), links: make(chan netlink.LinkUpdate), done: make(chan struct{})}
	m.wg.Add(1)
	go m.run(ctx, dying)
	t.Cleanup(m.Close)

	close(dying.addrs)
	close(dying.links)
	waitHint(t, m, "after the subscription died")
	select {
	case <-dying.done:
	default:
		t.Error("the dead subscription was not stopped")
	}

	// A change now must reach the new subscription. Repeat it until it
	// does: the resubscription may still be under way.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no hint for changes in %s within 15s of resubscribing", name)
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr("198.18.0.1/32")
		if i%2 == 1 {
			err = h.AddrDel(lo, a)
		} else {
			err = h.AddrAdd(lo, a)
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-m.hints:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitHint(t *testing.T, m *monitor, when string) {
	t.Helper()
	select {
	case <-m.hints:
	case <-time.After(15 * time.Second):
		t.Fatalf("no hint within 15s %s", when)
	}
}
