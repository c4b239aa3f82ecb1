package taskrun

import (
	"context"
	"sync"
	"time"

	"github.com/dewarhq/dewar/internal/chans"
	"go.uber.org/zap"
)

// announcing runs the task's ZooKeeper operations one at a time on a
// goroutine of their own: the supervise loop never waits on ZooKeeper, and
// a withdrawal is never overtaken by an earlier join or update. A nil
// *announcing (no announce section, or no ensemble) does nothing.
type announcing struct {
	ann     membership
	closeZK func() // ends the session
	log     *zap.Logger

	wake chans.Wake // 1-slot: ops were queued
	stop chan struct{}
	done chan struct{}

	// mu guards the following fields.
	mu       sync.Mutex
	queue    []annOp
	cancelOp context.CancelFunc // cancels the operation in flight
	left     bool               // a leave was queued: later joins and updates are dropped
}

type annOp struct {
	kind    string // "join", "update", "leave"
	facts   Facts
	timeout time.Duration
	result  chan error // buffered 1; nil: nobody waits
}

func startAnnouncing(ann membership, closeZK func(), log *zap.Logger) *announcing {
	if ann == nil {
		return nil
	}
	a := &announcing{ann: ann, closeZK: closeZK, log: log, wake: chans.NewWake(), stop: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

func (a *announcing) enqueue(op annOp, preempt bool) {
	a.mu.Lock()
	if a.left && op.kind != "leave" {
		a.mu.Unlock()
		if op.result != nil {
			op.result <- errWithdrawn
		}
		return
	}
	if op.kind == "leave" {
		// Nothing queued before a withdrawal matters any more, and one
		// in flight (a join stuck on an unreachable ensemble) must not
		// delay it.
		a.left = true
		for _, q := range a.queue {
			if q.result != nil {
				q.result <- errWithdrawn
			}
		}
		a.queue = nil
		if preempt && a.cancelOp != nil {
			a.cancelOp()
		}
	}
	a.queue = append(a.queue, op)
	a.mu.Unlock()
	a.wake.Signal()
}

// join announces f; the result arrives on the returned channel.
func (a *announcing) join(f Facts, timeout time.Duration) <-chan error {
	ch := make(chan error, 1)
	a.enqueue(annOp{kind: "join", facts: f, timeout: timeout, result: ch}, false)
	return ch
}

// update sets the members' data to f's addresses; failures are logged (the
// announcer keeps converging in the background).
func (a *announcing) update(f Facts) {
	if a != nil {
		a.enqueue(annOp{kind: "update", facts: f, timeout: 5 * time.Second}, false)
	}
}

// leave withdraws every member within timeout; the returned channel says
// when it is done. Closing the session at the end removes them anyway.
func (a *announcing) leave(timeout time.Duration) <-chan error {
	ch := make(chan error, 1)
	if a == nil {
		ch <- nil
		return ch
	}
	a.enqueue(annOp{kind: "leave", timeout: timeout, result: ch}, true)
	return ch
}

// close stops the worker after the queued operations and ends the session.
func (a *announcing) close() {
	if a == nil {
		return
	}
	close(a.stop)
	<-a.done
	a.closeZK()
}

func (a *announcing) loop() {
	defer close(a.done)
	for {
		a.mu.Lock()
		if len(a.queue) == 0 {
			a.mu.Unlock()
			select {
			case <-a.wake:
				continue
			case <-a.stop:
				return
			}
		}
		op := a.queue[0]
		a.queue = a.queue[1:]
		ctx, cancel := context.WithTimeout(context.Background(), op.timeout)
		a.cancelOp = cancel
		a.mu.Unlock()

		var err error
		switch op.kind {
		case "join":
			err = a.ann.join(ctx, &op.facts)
		case "update":
			err = a.ann.update(ctx, &op.facts)
		case "leave":
			err = a.ann.leave(ctx)
		}
		cancel()
		a.mu.Lock()
		a.cancelOp = nil
		a.mu.Unlock()
		if err != nil {
			a.log.Warn("serverset operation failed", zap.String("op", op.kind), zap.Error(err))
		}
		if op.result != nil {
			op.result <- err
		}
	}
}
