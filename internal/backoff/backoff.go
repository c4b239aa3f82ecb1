// Package backoff is the retry rule of dewar's long-lived loops (the
// announcer's serverset updates, netdiscover's netlink resubscription):
// wait Min after the first failure, twice as long after each further one,
// never more than Max, and start over after a success.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff hands out the waits between attempts of something that keeps
// failing. The zero value with Min and Max set is ready to use; it is not
// safe for concurrent use (one loop owns it).
//
// Jitter (0 to 1) cuts each wait by a random part of up to that fraction
// of it: with 0.5, a wait of d becomes one drawn from [d/2, d]. Many
// clients that failed together (every announcer of an agent when a
// ZooKeeper server went away) then do not retry together; a cut, never an
// addition, keeps Max the longest wait. Leave it 0 where nobody else
// retries against the same thing.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
	// Rand returns a number in [0, n); nil is math/rand/v2's Int64N.
	// Tests set it to pick the cut.
	Rand func(n int64) int64

	next time.Duration // the wait before jitter; 0: Min
}

// Next returns the wait before the next attempt and doubles the one after
// it, up to Max.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d <= 0 {
		d = b.Min
	}
	b.next = min(2*d, b.Max)
	if cut := int64(float64(d) * min(max(b.Jitter, 0), 1)); cut > 0 {
		rnd := b.Rand
		if rnd == nil {
			rnd = rand.Int64N
		}
		d -= time.Duration(rnd(cut + 1))
	}
	return d
}

// Reset starts over: the next wait is Min again. Call it after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps for Next, or until ctx ends (false).
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d, or until ctx ends (false): every wait of a loop that ctx
// stops.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
