package fakeagent

import (
	"maps"
	"slices"
	"sync"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/internal/chans"
)

// notifier delivers checkpointed updates to the OnUpdate callbacks on one
// goroutine, in checkpoint order. Updates are queued under the agent's lock
// and delivered without it, so a callback may call back into the agent
// (the master launches and kills from its handlers) and the agent never
// waits for a slow callback.
type notifier struct {
	mu sync.Mutex
	// queue and fns are guarded by mu.
	queue  []queued
	fns    map[int]func(frameworkID string, st mesos.TaskStatus)
	nextID int
	kick   chans.Wake
	done   chan struct{}
}

type queued struct {
	fw string
	st mesos.TaskStatus
}

func newNotifier() *notifier {
	return &notifier{fns: map[int]func(string, mesos.TaskStatus){}, kick: chans.NewWake(), done: make(chan struct{})}
}

func (n *notifier) push(fw string, st mesos.TaskStatus) {
	n.mu.Lock()
	n.queue = append(n.queue, queued{fw, st})
	n.mu.Unlock()
	n.kick.Signal()
}

func (n *notifier) add(fn func(string, mesos.TaskStatus)) (remove func()) {
	n.mu.Lock()
	id := n.nextID
	n.nextID++
	n.fns[id] = fn
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.fns, id)
		n.mu.Unlock()
	}
}

// run delivers until stop is closed, then delivers what is still queued.
func (n *notifier) run(stop <-chan struct{}) {
	defer close(n.done)
	for {
		select {
		case <-n.kick:
			n.drain()
		case <-stop:
			n.drain()
			return
		}
	}
}

func (n *notifier) drain() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.mu.Unlock()
			return
		}
		q := n.queue[0]
		n.queue = n.queue[1:]
		ids := slices.Sorted(maps.Keys(n.fns))
		fns := make([]func(string, mesos.TaskStatus), 0, len(ids))
		for _, id := range ids {
			fns = append(fns, n.fns[id])
		}
		n.mu.Unlock()
		for _, fn := range fns {
			fn(q.fw, q.st)
		}
	}
}
