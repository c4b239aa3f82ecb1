package isolator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestPrepareTwiceIsRefused(t *testing.T) {
	t.Parallel()
	n := newNet(t, "198.18.1.0/24")
	r := newRig(t, n)
	c := r.mustPrepare("c-"+randHex(t, 4), named(n.name))
	_, err := r.prepare(r.iso, c.ID, named(n.name))
	if err == nil || !strings.Contains(err.Error(), "already prepared") {
		t.Fatalf("second Prepare = %v, want an already-prepared error", err)
	}
	// The refused call left the first one intact.
	if got := ifaceAddrs(t, c.NetNSPath)["eth0"]; len(got) != 1 {
		t.Errorf("eth0 of the prepared container has %v after the refused Prepare", got)
	}
}

func TestPrepareWithDoneContextCreatesNothing(t *testing.T) {
	t.Parallel()
	n := newNet(t, "198.18.1.0/24")
	r := newRig(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := "c-" + randHex(t, 4)
	err := r.inNode(func() error {
		_, err := r.iso.Prepare(ctx, id, []mesos.NetworkInfo{named(n.name)})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare = %v, want context.Canceled", err)
	}
	assertNoNetNS(t, id)
	if ids, _ := r.iso.Prepared(); len(ids) > 0 {
		t.Errorf("state written for %v", ids)
	}
}

// TestCleanupWhenTheNamespaceIsGone: the namespace may vanish before the
// agent cleans up (removed by hand, or pinned only in a mount namespace that
// died with an old agent process). DEL still runs, with CNI_NETNS empty, so
// host-local's leases are released, and the state is removed.
func TestCleanupWhenTheNamespaceIsGone(t *testing.T) {
	t.Parallel()
	n := newNet(t, "198.18.1.0/24", "2001:db8:1::/64")
	r := newRig(t, n)
	c := r.mustPrepare("c-"+randHex(t, 4), named(n.name))
	if err := removeNetNS(c.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if len(r.leases()) != 2 {
		t.Fatalf("leases %v before Cleanup, want 2", r.leases())
	}
	if err := r.cleanup(r.iso, c.ID); err != nil {
		t.Fatalf("Cleanup without the namespace: %v", err)
	}
	if l := r.leases(); len(l) > 0 {
		t.Errorf("leases not released: %v", l)
	}
	// The kernel frees an unused namespace, and with it the veth pair,
	// asynchronously: poll for the host side to go.
	deadline := time.Now().Add(20 * time.Second)
	for len(r.nodeVeths()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r.assertGone(c)
}
