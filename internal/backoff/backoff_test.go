package backoff_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dewarhq/dewar/internal/backoff"
)

const ms = time.Millisecond

// TestWaits: the waits a loop sees, measured on synctest's fake clock.
// Each step is an attempt: true succeeded (the loop calls Reset), false
// failed (the loop waits before the next one).
func TestWaits(t *testing.T) {
	maxCut := func(n int64) int64 { return n - 1 }
	noCut := func(int64) int64 { return 0 }
	for _, tc := range []struct {
		name  string
		b     backoff.Backoff
		steps []bool
		want  []time.Duration // the waits after each failure
	}{
		{
			name:  "doubles from Min after each failure, capped at Max",
			b:     backoff.Backoff{Min: 100 * ms, Max: 5 * time.Second},
			steps: []bool{false, false, false, false, false, false, false, false},
			want:  []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms},
		},
		{
			name:  "a success starts over at Min",
			b:     backoff.Backoff{Min: 50 * ms, Max: 2 * time.Second},
			steps: []bool{false, false, false, true, false, false},
			want:  []time.Duration{50 * ms, 100 * ms, 200 * ms, 50 * ms, 100 * ms},
		},
		{
			name:  "jitter cuts each wait by up to its fraction",
			b:     backoff.Backoff{Min: 50 * ms, Max: 2 * time.Second, Jitter: 0.5, Rand: maxCut},
			steps: []bool{false, false, false, false, false, false, false},
			want:  []time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms},
		},
		{
			name:  "jitter never lengthens a wait: the least cut is none",
			b:     backoff.Backoff{Min: 50 * ms, Max: 2 * time.Second, Jitter: 0.5, Rand: noCut},
			steps: []bool{false, false, false, false, false, false, false},
			want:  []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := tc.b
				var waits []time.Duration
				for _, ok := range tc.steps {
					if ok {
						b.Reset()
						continue
					}
					start := time.Now()
					if !b.Wait(t.Context()) {
						t.Fatal("Wait returned false with a live context")
					}
					waits = append(waits, time.Since(start))
				}
				if !slices.Equal(waits, tc.want) {
					t.Errorf("waits %v, want %v", waits, tc.want)
				}
			})
		})
	}
}

// With the real random source, every wait lies in [(1-Jitter)·d, d], and
// they are not all d: the jitter is there.
func TestJitterIsRandom(t *testing.T) {
	b := backoff.Backoff{Min: time.Second, Max: time.Second, Jitter: 0.5}
	uncut := 0
	for range 50 {
		d := b.Next()
		if d < 500*ms || d > time.Second {
			t.Fatalf("wait %v outside [500ms, 1s]", d)
		}
		if d == time.Second {
			uncut++
		}
	}
	if uncut == 50 {
		t.Error("50 waits of exactly 1s: no jitter")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		b := backoff.Backoff{Min: time.Minute, Max: time.Hour}
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		start := time.Now()
		if b.Wait(ctx) {
			t.Error("Wait returned true after its context ended")
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Wait returned %v after the start, want 1s (when the context ended)", d)
		}
	})
}
