// Package chans holds the channel idioms dewar would otherwise write by
// hand in every package: a 1-slot wake-up, a context that ends when a
// channel closes, a send that drops the oldest value instead of waiting,
// and the bounded outbox of a streaming subscriber.
package chans

import (
	"context"
	"sync"
)

// Wake is a 1-slot wake-up: Signal never blocks, and any number of
// signals before the receiver looks collapse into one. It is a hint, not
// a message: the receiver re-reads the whole state after each wake-up
// (CNI's netmon turns bursts into one read the same way). Receive from it
// as from any channel.
type Wake chan struct{}

// NewWake returns a Wake with its one slot.
func NewWake() Wake { return make(Wake, 1) }

// Signal wakes the receiver, or does nothing if a wake-up is already
// pending: the read that one causes covers this one too.
func (w Wake) Signal() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// WithCancelOnClose returns a copy of ctx that is also cancelled when
// done is closed. Call cancel when done with it, as for
// context.WithCancel: that also ends the goroutine that watches done.
func WithCancelOnClose(ctx context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// SendDropOldest sends v on ch without blocking: while ch is full it drops
// the oldest unread value to make room, and it returns how many it
// dropped. For a reader that wants the latest news, never a stale backlog,
// from a sender that must not wait for it. Only one goroutine may send on
// ch, so that making room always succeeds within two rounds.
func SendDropOldest[T any](ch chan T, v T) (dropped int) {
	for {
		select {
		case ch <- v:
			return dropped
		default:
		}
		select {
		case <-ch:
			dropped++
		default:
		}
	}
}

// Outbox queues events for one streaming subscriber (an HTTP SUBSCRIBE
// connection) that a handler drains from C. Send never blocks: a
// subscriber that falls a whole queue behind has lost its stream and is
// closed (Mesos clients subscribe again and catch up).
type Outbox[T any] struct {
	// C holds the queued events, oldest first.
	C    chan T
	done chan struct{}
	once sync.Once
}

// NewOutbox returns an open Outbox that holds up to size events.
func NewOutbox[T any](size int) *Outbox[T] {
	return &Outbox[T]{C: make(chan T, size), done: make(chan struct{})}
}

// Send queues v. It returns false when v was not queued: the outbox was
// closed, or it was full and Send has closed it.
func (o *Outbox[T]) Send(v T) bool {
	select {
	case <-o.done:
		return false
	default:
	}
	select {
	case o.C <- v:
		return true
	default:
		o.Close()
		return false
	}
}

// Close ends the stream; events still queued stay readable from C.
// Idempotent.
func (o *Outbox[T]) Close() { o.once.Do(func() { close(o.done) }) }

// Done is closed by Close.
func (o *Outbox[T]) Done() <-chan struct{} { return o.done }
