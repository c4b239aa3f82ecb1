package netdiscover

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/backoff"
	"github.com/dewarhq/dewar/internal/chans"
)

// Watcher follows the addresses of a task's networks while it runs, so an
// address change reaches the status updates, the serverset members and the
// task without a restart.
type Watcher struct {
	updates chan []NetworkAddrs // cap 1, holds the newest unread state
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// readRetry is how long Watch waits before reading again after a failed
// read.
const readRetry = time.Second

// Watch starts watching the named networks in opt.Namespace. The first
// value on Updates is the state when Watch returned; every later value is
// the full state after a change (an address or an interface appeared or
// vanished, DAD finished). A network whose interface is gone has no
// addresses. Watch never waits for anything and never fails after it
// returned: read errors are logged and retried.
//
// A change is seen within opt.Debounce plus a netlink dump. When the
// reader is slower than the changes, an unread state is replaced by the
// newer one: Updates always ends with the latest state. Updates is closed
// when ctx ends or Close is called.
func Watch(ctx context.Context, nets []Network, opt Options) (*Watcher, error) {
	want := assign(nets)
	log := opt.log()
	h, err := openHandle(opt.Namespace)
	if err != nil {
		return nil, fmt.Errorf("watch addresses: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	mon, err := startMonitor(ctx, opt.Namespace, log)
	if err != nil {
		cancel()
		h.Close()
		return nil, fmt.Errorf("watch addresses: %w", err)
	}
	states, err := read(h, want) // after subscribing: nothing later is missed
	if err != nil {
		cancel()
		mon.Close()
		h.Close()
		return nil, fmt.Errorf("watch addresses: %w", err)
	}
	w := &Watcher{updates: make(chan []NetworkAddrs, 1), cancel: cancel}
	first := results(states)
	w.updates <- clone(first)
	w.wg.Add(1)
	go w.run(ctx, h, mon, want, first, opt.debounce(), log)
	return w, nil
}

// Updates delivers the address states; see Watch. Each value belongs to
// the receiver.
func (w *Watcher) Updates() <-chan []NetworkAddrs { return w.updates }

// Close stops the watch and waits for its goroutines. Idempotent; always
// nil (it returns an error to fit io.Closer).
func (w *Watcher) Close() error {
	w.cancel()
	w.wg.Wait()
	return nil
}

func (w *Watcher) run(ctx context.Context, h *netlink.Handle, mon *monitor, want, last []NetworkAddrs, debounce time.Duration, log *zap.Logger) {
	defer w.wg.Done()
	defer close(w.updates)
	defer h.Close()
	defer mon.Close()
	w.follow(ctx, mon.hints, func() ([]netState, error) { return read(h, want) }, last, debounce, log)
}

// follow is the watch loop, apart from netlink: after a hint it lets the
// burst finish (debounce), reads the whole state and publishes it when it
// changed; a failed read is retried after readRetry.
func (w *Watcher) follow(ctx context.Context, hints chan struct{}, read func() ([]netState, error), last []NetworkAddrs, debounce time.Duration, log *zap.Logger) {
	retry := false
	for {
		if !retry {
			select {
			case <-ctx.Done():
				return
			case <-hints:
			}
		}
		retry = false
		// Let the burst finish. Whatever arrives meanwhile is answered by
		// the read below, which starts after it; drop its hint.
		if !backoff.Sleep(ctx, debounce) {
			return
		}
		select {
		case <-hints:
		default:
		}
		states, err := read()
		if err != nil {
			log.Warn("reading addresses failed; retrying", zap.Error(err), zap.Duration("retry_in", readRetry))
			if !backoff.Sleep(ctx, readRetry) {
				return
			}
			retry = true
			continue
		}
		cur := results(states)
		if equal(cur, last) {
			log.Debug("netlink change left the networks' addresses as they were")
			continue
		}
		for _, n := range cur {
			log.Info("network addresses changed", zap.String("network", n.Name),
				zap.String("interface", n.Interface), zap.Stringers("addrs", n.Addrs))
		}
		last = cur
		w.publish(clone(cur))
	}
}

// publish replaces an unread state with v (only run sends).
func (w *Watcher) publish(v []NetworkAddrs) { chans.SendDropOldest(w.updates, v) }

func clone(nets []NetworkAddrs) []NetworkAddrs {
	out := slices.Clone(nets)
	for i := range out {
		out[i].Addrs = slices.Clone(out[i].Addrs)
		out[i].Labels = maps.Clone(out[i].Labels)
	}
	return out
}
