package isolator

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestConcurrentPrepare starts several containers on one network at once, as
// an agent launching a job's instances does: the first ADDs race to create
// the bridge, and every container must still get its own address.
func TestConcurrentPrepare(t *testing.T) {
	t.Parallel()
	n := newNet(t, "198.18.5.0/24", "2001:db8:5::/64")
	r := newRig(t, n)
	const count = 4
	ids := make([]string, count)
	for k := range ids {
		ids[k] = fmt.Sprintf("c%d-%s", k, randHex(t, 4))
	}
	containers := make([]*Container, count)
	errc := make(chan error, count)
	for k := range ids {
		go func() {
			c, err := r.prepare(r.iso, ids[k], named(n.name))
			containers[k] = c
			errc <- err
		}()
	}
	for range ids {
		if err := <-errc; err != nil {
			t.Errorf("concurrent Prepare: %v", err)
		}
	}
	if t.Failed() {
		return
	}
	seen := map[string]string{}
	for k, c := range containers {
		for _, ip := range infoIPs(c.NetworkInfos[0]) {
			if other, dup := seen[ip]; dup {
				t.Errorf("%s given to both %s and %s", ip, other, ids[k])
			}
			seen[ip] = ids[k]
		}
		if got := ifaceAddrs(t, c.NetNSPath)["eth0"]; !reflect.DeepEqual(got, infoIPs(c.NetworkInfos[0])) {
			t.Errorf("%s: eth0 has %v, Prepare reported %v", ids[k], got, infoIPs(c.NetworkInfos[0]))
		}
	}
	if len(seen) != 2*count {
		t.Errorf("%d distinct addresses, want %d", len(seen), 2*count)
	}
}

// BenchmarkPrepareCleanup measures one container joining one network (a
// bridge ADD with host-local IPAM) and leaving it again.
func BenchmarkPrepareCleanup(b *testing.B) {
	n := newNet(b, "198.18.7.0/24")
	r := newRig(b, n)
	var prep, clean time.Duration
	for k := 0; b.Loop(); k++ {
		id := fmt.Sprintf("bench%d-%s", k, randHex(b, 3))
		start := time.Now()
		if _, err := r.prepare(r.iso, id, named(n.name)); err != nil {
			b.Fatal(err)
		}
		prep += time.Since(start)
		start = time.Now()
		if err := r.cleanup(r.iso, id); err != nil {
			b.Fatal(err)
		}
		clean += time.Since(start)
	}
	b.ReportMetric(float64(prep.Milliseconds())/float64(b.N), "prepare-ms/op")
	b.ReportMetric(float64(clean.Milliseconds())/float64(b.N), "cleanup-ms/op")
}
