package announcer

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestLoopTiming: when the run goroutine runs a round (keepSession, then
// reconcile), on synctest's fake clock, with the round faked: the retry
// backoff between failed rounds, its jitter and cap, the reset after a
// success, kicks and the wake-up keepSession asks for. What a round does
// in ZooKeeper is tested against a real server (announcer_test.go,
// wipe_test.go, quorum_test.go).
func TestLoopTiming(t *testing.T) {
	const ms = time.Millisecond
	maxCut := func(n int64) int64 { return n - 1 } // the shortest wait jitter allows
	noCut := func(int64) int64 { return 0 }
	for _, tc := range []struct {
		name    string
		rand    func(int64) int64
		results string // per round: F failed, N no session, S succeeded; the last repeats
		wake    map[int]time.Duration
		kicks   []time.Duration // when the desired state changes; the first round is a kick at 0
		until   time.Duration
		want    []time.Duration // when rounds run
	}{
		{
			name:    "a failed round is retried after 50ms, then twice as long each time, at most 2s",
			rand:    noCut,
			results: "F",
			until:   10 * time.Second,
			want:    []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 750 * ms, 1550 * ms, 3150 * ms, 5150 * ms, 7150 * ms, 9150 * ms},
		},
		{
			name:    "no session: the same backoff (the session's events also kick)",
			rand:    noCut,
			results: "N",
			until:   2 * time.Second,
			want:    []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 750 * ms, 1550 * ms},
		},
		{
			name:    "jitter cuts each wait by up to half",
			rand:    maxCut,
			results: "F",
			until:   4 * time.Second,
			want:    []time.Duration{0, 25 * ms, 75 * ms, 175 * ms, 375 * ms, 775 * ms, 1575 * ms, 2575 * ms, 3575 * ms},
		},
		{
			name:    "a success starts the backoff over",
			rand:    noCut,
			results: "FFFSF",
			kicks:   []time.Duration{5 * time.Second},
			until:   5200 * ms,
			want:    []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 5 * time.Second, 5050 * ms, 5150 * ms},
		},
		{
			name:    "a kick runs a round at once, without waiting for the pending retry",
			rand:    noCut,
			results: "F",
			kicks:   []time.Duration{time.Second},
			until:   3 * time.Second,
			want:    []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 750 * ms, time.Second, 2600 * ms},
		},
		{
			name:    "a round that asks to be woken is run again then, also after a success",
			rand:    noCut,
			results: "S",
			wake:    map[int]time.Duration{0: 3 * time.Second, 1: time.Second},
			until:   time.Minute,
			want:    []time.Duration{0, 3 * time.Second, 4 * time.Second},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var (
					mu sync.Mutex
					at []time.Duration
				)
				round := func() (time.Duration, error) {
					mu.Lock()
					defer mu.Unlock()
					i := len(at)
					at = append(at, time.Since(start))
					r := tc.results[min(i, len(tc.results)-1)]
					switch r {
					case 'F':
						return tc.wake[i], errors.New("zk: connection closed")
					case 'N':
						return tc.wake[i], errNoSession
					}
					return tc.wake[i], nil
				}
				b := retryBackoff()
				b.Rand = tc.rand
				stop, kick := make(chan struct{}), make(chan struct{}, 1)
				done := make(chan struct{})
				go func() {
					defer close(done)
					loop(stop, kick, b, round, zaptest.NewLogger(t))
				}()
				for _, k := range append([]time.Duration{0}, tc.kicks...) {
					time.Sleep(k - time.Since(start))
					kick <- struct{}{}
				}
				time.Sleep(tc.until - time.Since(start))
				close(stop)
				<-done
				if !slices.Equal(at, tc.want) {
					t.Errorf("rounds at %v,\nwant        %v", at, tc.want)
				}
			})
		})
	}
}
