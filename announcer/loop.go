package announcer

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/backoff"
)

// retryBackoff is the wait between failed rounds: retryMin, doubling up to
// retryMax, cut by up to half at random (retryJitter). Every announcer of
// a cluster sees the same ZooKeeper failure at the same moment (a server
// goes away, a leader is elected); without the jitter they would all come
// back in step, a thundering herd on the servers that are left.
func retryBackoff() *backoff.Backoff {
	return &backoff.Backoff{Min: retryMin, Max: retryMax, Jitter: retryJitter}
}

// loop is the run goroutine's timing, apart from ZooKeeper: it runs round
// when kick fires (the desired state or a session changed), when a failed
// round's retry falls due (b), or when round asked to be woken (its first
// result; 0: not), until stop closes. A success resets b. A kick runs a
// round at once, whatever retry is pending.
func loop(stop, kick <-chan struct{}, b *backoff.Backoff, round func() (time.Duration, error), log *zap.Logger) {
	var retry, wake <-chan time.Time
	for {
		select {
		case <-stop:
			return
		case <-kick:
		case <-retry:
		case <-wake:
		}
		retry, wake = nil, nil
		d, err := round()
		if d > 0 {
			wake = time.After(d)
		}
		if err == nil {
			b.Reset()
			continue
		}
		wait := b.Next()
		if !errors.Is(err, errNoSession) {
			log.Warn("serverset update failed; retrying", zap.Error(err), zap.Duration("retry_in", wait))
		}
		retry = time.After(wait)
	}
}
