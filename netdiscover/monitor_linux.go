package netdiscover

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/backoff"
	"github.com/dewarhq/dewar/internal/chans"
)

// monitor turns netlink address and link notifications into hints: a
// notification only says "something changed, read the state again".
// Bursts (a CNI plugin adds an interface, a v4 and a v6 address, DAD
// finishes...) collapse into one pending hint, a non-blocking send on a
// 1-slot channel, so the reader re-reads once per burst and never misses
// the last change. The messages themselves are not trusted to be complete:
// the socket may overflow (ENOBUFS), and then the subscription ends, is
// made again, and a hint tells the reader to re-read everything.
type monitor struct {
	ns      *netns.NsHandle
	ownNS   netns.NsHandle // ns when the monitor opened it, else None
	closeNS sync.Once
	log     *zap.Logger
	hints   chans.Wake
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Resubscription backoff after a subscription died.
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 5 * time.Second
)

// startMonitor subscribes before it returns, so a state read after it
// cannot miss a change made after that read.
func startMonitor(ctx context.Context, ns *netns.NsHandle, log *zap.Logger) (*monitor, error) {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{ns: ns, ownNS: netns.None(), log: log, hints: chans.NewWake(), cancel: cancel}
	if ns == nil {
		// "The caller's namespace" is that of the calling thread now;
		// resubscribing later, from another thread, must find it again.
		own, err := netns.Get()
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open the current network namespace: %w", err)
		}
		m.ownNS = own
		m.ns = &m.ownNS
	}
	sub, err := m.subscribe()
	if err != nil {
		cancel()
		m.closeOwnNS()
		return nil, err
	}
	m.wg.Add(1)
	go m.run(ctx, sub)
	return m, nil
}

// Close stops the subscriptions and waits for every goroutine. Idempotent.
func (m *monitor) Close() {
	m.cancel()
	m.wg.Wait()
	m.closeOwnNS()
}

func (m *monitor) closeOwnNS() {
	m.closeNS.Do(func() {
		if m.ownNS.IsOpen() {
			_ = m.ownNS.Close()
		}
	})
}

func (m *monitor) poke() { m.hints.Signal() }

// subscription is one pair of netlink subscriptions. netlink's reader
// goroutines close addrs and links when their socket fails or done closes.
type subscription struct {
	addrs    chan netlink.AddrUpdate
	links    chan netlink.LinkUpdate
	done     chan struct{}
	stopOnce sync.Once
}

func (m *monitor) subscribe() (*subscription, error) {
	s := &subscription{
		addrs: make(chan netlink.AddrUpdate, 64),
		links: make(chan netlink.LinkUpdate, 16),
		done:  make(chan struct{}),
	}
	onErr := func(err error) {
		select {
		case <-s.done: // our own Close makes the reader fail; expected
			m.log.Debug("netlink subscription closed", zap.Error(err))
		default:
			m.log.Warn("netlink subscription failed; resubscribing and re-reading all addresses", zap.Error(err))
		}
	}
	// ListExisting stays false: the caller reads the full state itself.
	err := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
		Namespace: m.ns, ErrorCallback: onErr,
	})
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("subscribe to netlink address updates: %w", err)
	}
	err = netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: m.ns, ErrorCallback: onErr,
	})
	if err != nil {
		close(s.done)
		for range s.addrs { // wait for the address reader to end
		}
		return nil, fmt.Errorf("subscribe to netlink link updates: %w", err)
	}
	return s, nil
}

// stop closes the sockets and drains both channels until netlink's
// readers have closed them, so no reader stays blocked on a send.
func (s *subscription) stop() {
	s.stopOnce.Do(func() { close(s.done) })
	for range s.addrs {
	}
	for range s.links {
	}
}

func (m *monitor) run(ctx context.Context, sub *subscription) {
	defer m.wg.Done()
	for {
		died := m.pump(ctx, sub)
		sub.stop()
		if !died {
			return
		}
		sub = m.resubscribe(ctx, m.subscribe)
		if sub == nil {
			return
		}
		// Messages were lost while no subscription was listening.
		m.poke()
	}
}

// pump turns messages into hints until ctx ends (false) or one of the
// subscriptions dies (true).
func (m *monitor) pump(ctx context.Context, sub *subscription) (died bool) {
	for {
		select {
		case <-ctx.Done():
			return false
		case _, ok := <-sub.addrs:
			if !ok {
				return true
			}
		case _, ok := <-sub.links:
			if !ok {
				return true
			}
		}
		m.poke()
	}
}

// resubscribe retries subscribe with backoff (resubscribeMin, doubling up
// to resubscribeMax; no jitter: only this task's executor subscribes to
// its namespace) until it succeeds or ctx ends (nil). Each call starts
// over at resubscribeMin.
func (m *monitor) resubscribe(ctx context.Context, subscribe func() (*subscription, error)) *subscription {
	b := backoff.Backoff{Min: resubscribeMin, Max: resubscribeMax}
	for {
		if !b.Wait(ctx) {
			return nil
		}
		sub, err := subscribe()
		if err == nil {
			m.log.Info("netlink subscription restored")
			return sub
		}
		m.log.Warn("netlink resubscription failed; retrying", zap.Error(err))
	}
}
