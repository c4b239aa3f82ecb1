package netdiscover

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestResubscribeBacksOff: when netlink refuses the new subscription, the
// monitor tries again 100 ms later, then twice as long after each
// failure, never waiting more than 5 s; each resubscription starts over.
// On synctest's fake clock, with subscribe faked; the real resubscription
// in a network namespace is TestMonitorResubscribes.
func TestResubscribeBacksOff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		failures []int // per resubscription: how many attempts fail before one succeeds
		want     [][]time.Duration
	}{
		{
			name:     "doubling from 100ms, capped at 5s",
			failures: []int{7},
			want:     [][]time.Duration{{100 * ms, 300 * ms, 700 * ms, 1500 * ms, 3100 * ms, 6300 * ms, 11300 * ms, 16300 * ms}},
		},
		{
			name:     "a later resubscription starts over at 100ms",
			failures: []int{3, 1},
			want:     [][]time.Duration{{100 * ms, 300 * ms, 700 * ms, 1500 * ms}, {100 * ms, 300 * ms}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := &monitor{log: zaptest.NewLogger(t)}
				for i, fail := range tc.failures {
					start := time.Now()
					var at []time.Duration
					sub := m.resubscribe(t.Context(), func() (*subscription, error) {
						at = append(at, time.Since(start))
						if len(at) <= fail {
							return nil, errors.New("no buffer space available")
						}
						return &subscription{}, nil
					})
					if sub == nil {
						t.Fatal("resubscribe gave up with a live context")
					}
					if !slices.Equal(at, tc.want[i]) {
						t.Errorf("resubscription %d: attempts at %v, want %v", i+1, at, tc.want[i])
					}
				}
			})
		})
	}
}

// A task that ends while netlink keeps refusing ends the retries.
func TestResubscribeStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &monitor{log: zaptest.NewLogger(t)}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		attempts := 0
		sub := m.resubscribe(ctx, func() (*subscription, error) {
			attempts++
			return nil, errors.New("no buffer space available")
		})
		if sub != nil {
			t.Error("resubscribe returned a subscription although every attempt failed")
		}
		if attempts != 4 { // at 0.1, 0.3, 0.7 and 1.5 s
			t.Errorf("%d attempts within 2s, want 4", attempts)
		}
	})
}
