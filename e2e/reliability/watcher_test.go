package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/zktest"
)

// watcher follows the serverset through announcer.WatchMembers on a
// session of its own, as a Finagle client does, and records the worst it
// ever saw: a wanted member missing, a shard twice, and for how long a
// member was missing before it was back. A member that goes missing and
// never comes back stays "open" (see worst).
type watcher struct {
	mu sync.Mutex
	// mu guards the following fields.
	want       map[int]bool
	armed      bool // every wanted shard has been seen
	maxMissing int  // most wanted shards absent from one view after armed
	maxDup     int  // most surplus members in one view
	views      int
	// gone is when each wanted shard went missing, while it is; gaps is
	// how many times a wanted shard went missing, and longest the
	// longest such absence that ended.
	gone    map[int]time.Time
	gaps    int
	longest time.Duration
}

func watch(t *testing.T, ens *zktest.Ensemble, f *fleet, want []int) *watcher {
	t.Helper()
	w := &watcher{gone: map[int]time.Time{}}
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
	for s := range w.gone {
		if !w.want[s] {
			delete(w.gone, s) // withdrawn: no longer missed
		}
	}
}

func (w *watcher) see(es []announcer.Entry) {
	count := map[int]int{}
	for _, e := range es {
		if e.Err == nil && e.Member.Shard != nil {
			count[*e.Member.Shard]++
		}
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.views++
	missing, dup := 0, 0
	for s := range w.want {
		if count[s] == 0 {
			missing++
		}
	}
	if w.armed {
		for s := range w.want {
			since, gone := w.gone[s]
			switch {
			case count[s] == 0 && !gone:
				w.gone[s] = now
				w.gaps++
			case count[s] > 0 && gone:
				w.longest = max(w.longest, now.Sub(since))
				delete(w.gone, s)
			}
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

// absences says what a reader that watches lived through: how many times
// a wanted member went missing, the longest absence that ended, and how
// many wanted members are missing still (gone for good, as far as this
// watcher knows).
func (w *watcher) absences() (gaps int, longest time.Duration, open int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gaps, w.longest, len(w.gone)
}

// absenceFigure formats absences for a row.
func (w *watcher) absenceFigure() string {
	gaps, longest, open := w.absences()
	return fmt.Sprintf("%d absences seen by the watcher, longest %s, %d still missing", gaps, secs(longest), open)
}
