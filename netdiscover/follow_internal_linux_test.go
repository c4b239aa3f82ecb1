package netdiscover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestFollowDebounces: the watch loop's timing on synctest's fake clock,
// with the netlink side faked: a hint is what the monitor sends for each
// netlink message (a non-blocking send on a 1-slot channel, as
// monitor.poke), a read returns the state the test set. The real thing,
// in a network namespace, is watch_linux_test.go.
func TestFollowDebounces(t *testing.T) {
	const debounce = 500 * time.Millisecond
	type event struct {
		at   time.Duration // after the start
		addr int           // the address becomes 198.18.0.<addr>
		fail bool          // the next read fails
	}
	burst := func(n int, every time.Duration) []event {
		var out []event
		for i := range n {
			out = append(out, event{at: time.Duration(i) * every, addr: i + 1})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		events  []event
		reads   []time.Duration // when the loop reads
		updates []int           // the addresses it publishes
	}{
		{
			name:    "a burst of 20 changes within the debounce is read once",
			events:  burst(20, 10*time.Millisecond),
			reads:   []time.Duration{debounce},
			updates: []int{20},
		},
		{
			name:    "a change after the read is read again, a debounce later",
			events:  []event{{at: 0, addr: 1}, {at: 700 * time.Millisecond, addr: 2}},
			reads:   []time.Duration{debounce, 700*time.Millisecond + debounce},
			updates: []int{1, 2},
		},
		{
			name:    "a change that leaves the addresses as they were publishes nothing",
			events:  []event{{at: 0, addr: 0}},
			reads:   []time.Duration{debounce},
			updates: nil,
		},
		{
			name:    "a failed read is retried after readRetry and a debounce",
			events:  []event{{at: 0, addr: 1, fail: true}},
			reads:   []time.Duration{debounce, debounce + readRetry + debounce},
			updates: []int{1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var (
					mu    sync.Mutex
					addr  int // 0: the state the watch began with
					fail  bool
					reads []time.Duration
				)
				state := func(a int) []NetworkAddrs {
					return []NetworkAddrs{{Name: "blue", Interface: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.18.0.%d/24", a))}}}
				}
				read := func() ([]netState, error) {
					mu.Lock()
					defer mu.Unlock()
					reads = append(reads, time.Since(start))
					if fail {
						fail = false
						return nil, errors.New("netlink dump interrupted")
					}
					return []netState{{NetworkAddrs: state(addr)[0]}}, nil
				}
				hints := make(chan struct{}, 1)
				w := &Watcher{updates: make(chan []NetworkAddrs, 1)}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					w.follow(ctx, hints, read, state(0), debounce, zaptest.NewLogger(t))
				}()
				var updates []int
				collected := make(chan struct{})
				go func() {
					defer close(collected)
					for u := range w.updates {
						var a int
						fmt.Sscanf(u[0].Addrs[0].Addr().String(), "198.18.0.%d", &a)
						updates = append(updates, a)
					}
				}()

				for _, ev := range tc.events {
					time.Sleep(ev.at - time.Since(start))
					mu.Lock()
					addr, fail = ev.addr, ev.fail
					mu.Unlock()
					select {
					case hints <- struct{}{}:
					default:
					}
				}
				time.Sleep(time.Minute) // everything settles
				cancel()
				<-done
				close(w.updates)
				<-collected
				if !slices.Equal(reads, tc.reads) {
					t.Errorf("reads at %v, want %v", reads, tc.reads)
				}
				if !slices.Equal(updates, tc.updates) {
					t.Errorf("published 198.18.0.%v, want %v", updates, tc.updates)
				}
			})
		})
	}
}
