package reliability

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/zktest"
)

// watcher follows the serverset through announcer.WatchMembers on a
// session of its own, as a Finagle client does, and records the worst it
// ever saw: a wanted member missing, a shard twice.
type watcher struct {
	mu sync.Mutex
	// mu guards the following fields.
	want       map[int]bool
	armed      bool // every wanted shard has been seen
	maxMissing int  // most wanted shards absent from one view after armed
	maxDup     int  // most surplus members in one view
	views      int
}

func watch(t *testing.T, ens *zktest.Ensemble, f *fleet, want []int) *watcher {
	t.Helper()
	w := &watcher{}
	w.setWant(want)
	conn := reader(t, ens)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = announcer.WatchMembers(ctx, conn, f.path, func(es []announcer.Entry) error {
			w.see(es)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(time.Minute)
	for !w.isArmed() {
		if time.Now().After(deadline) {
			t.Fatalf("watcher never saw all %d members of %s", len(want), f.path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w
}

// setWant changes which shards must be present (a task that withdrew is
// no longer missed).
func (w *watcher) setWant(want []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want = map[int]bool{}
	for _, s := range want {
		w.want[s] = true
	}
}

func (w *watcher) see(es []announcer.Entry) {
	count := map[int]int{}
	for _, e := range es {
		if e.Err == nil && e.Member.Shard != nil {
			count[*e.Member.Shard]++
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.views++
	missing, dup := 0, 0
	for s := range w.want {
		if count[s] == 0 {
			missing++
		}
	}
	for _, n := range count {
		dup += max(n-1, 0)
	}
	w.maxDup = max(w.maxDup, dup)
	if missing == 0 {
		w.armed = true
	}
	if w.armed {
		w.maxMissing = max(w.maxMissing, missing)
	}
}

func (w *watcher) isArmed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.armed
}

// worst returns the most members missing from and duplicated in any one
// view since the watcher was armed, and how many views it had.
func (w *watcher) worst() (missing, dup, views int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxMissing, w.maxDup, w.views
}
