package announcer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
)

// ErrClosed is returned by calls on a closed Announcer.
var ErrClosed = errors.New("announcer closed")

// ErrUnreachable is returned by New when no server of the ensemble gave the
// announcer a session within Config.ConnectTimeout.
var ErrUnreachable = errors.New("ZooKeeper ensemble unreachable")

// Announcer keeps serverset members in ZooKeeper.
type Announcer struct {
	cfg Config
	log *zap.Logger
	acl []zk.ACL
	// cur is the connection in use. Only the run goroutine replaces it
	// (keepSession), when the ensemble refuses its session for good.
	cur atomic.Pointer[zkConn]

	kick      chans.Wake // desired state or session changed
	stop      chan struct{}
	connected chan struct{} // closed on the first session
	connOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup

	// mu guards the following fields.
	mu        sync.Mutex
	tasks     map[taskKey]Spec
	members   map[taskKey]map[string][]byte // per task: serverset path -> data
	gen       uint64                        // bumped on every change of members
	applied   uint64                        // members as of gen applied exist in ZooKeeper
	appliedCh chan struct{}                 // closed and replaced when applied moves
	lastErr   error                         // why the last reconcile failed
	closed    bool
}

// taskKey identifies a task: its serverset path and shard.
type taskKey struct {
	base  string
	shard int
}

// New connects to the ensemble and waits for a session, at most
// cfg.ConnectTimeout (an error naming the ensemble after that), then
// authenticates as cfg.Auth says.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Announcer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ensemble := strings.Join(cfg.Ensemble, ",")
	a := &Announcer{
		cfg:       cfg,
		log:       log.With(zap.String("ensemble", ensemble)),
		acl:       cfg.Auth.zkACL(),
		kick:      chans.NewWake(),
		stop:      make(chan struct{}),
		connected: make(chan struct{}),
		tasks:     map[taskKey]Spec{},
		members:   map[taskKey]map[string][]byte{},
		appliedCh: make(chan struct{}),
	}
	zc, err := a.dial()
	if err != nil {
		return nil, err
	}
	a.cur.Store(zc)
	conn := zc.Conn

	timer := time.NewTimer(cfg.ConnectTimeout)
	defer timer.Stop()
	// Giving up: go-zookeeper's Close and its loop can take seconds against
	// a server that accepted the connection but never answers; the caller
	// (a task being killed) must not wait for that.
	select {
	case <-a.connected:
	case <-timer.C:
		zc.silent.Store(true)
		go zc.close()
		return nil, fmt.Errorf("%w: no session from %s within %v; check --announcer-ensemble and that ZooKeeper runs", ErrUnreachable, ensemble, cfg.ConnectTimeout)
	case <-ctx.Done():
		zc.silent.Store(true)
		go zc.close()
		return nil, fmt.Errorf("connect to ZooKeeper ensemble %s: %w", ensemble, ctx.Err())
	}
	if err := a.authenticate(conn); err != nil {
		zc.close()
		return nil, err
	}
	a.log.Info("zookeeper session established", zap.String("session", fmt.Sprintf("%#x", conn.SessionID())))
	a.wg.Add(1)
	go a.run()
	return a, nil
}

// onEvent runs on go-zookeeper's goroutine for connection zc and must not
// block.
func (a *Announcer) onEvent(zc *zkConn, ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	zc.track(ev)
	if ev.State == zk.StateDisconnected && zc.closing.Load() {
		// The client's loop reports this last, after its goroutines
		// have logged their last lines.
		zc.doneOnce.Do(func() { close(zc.done) })
		return
	}
	if zc.closing.Load() {
		return
	}
	current := a.cur.Load() == zc
	switch ev.State {
	case zk.StateDisconnected:
		if current {
			a.log.Info("zookeeper disconnected; reconnecting")
		}
	case zk.StateHasSession:
		a.connOnce.Do(func() { close(a.connected) })
	case zk.StateExpired:
		if current {
			a.log.Warn("zookeeper session expired; members will be re-created in a new session")
		}
	}
	a.poke()
}

func (a *Announcer) poke() { a.kick.Signal() }

// SessionID is the current ZooKeeper session (0 while there is none); the
// EphemeralOwner of every member.
func (a *Announcer) SessionID() int64 { return a.cur.Load().SessionID() }

// conn is the connection in use.
func (a *Announcer) conn() *zk.Conn { return a.cur.Load().Conn }

// Join announces the task: it records the members the task should have and
// waits until they exist. Joining the same task (same path and shard) again
// replaces its announcement. A Spec that cannot be announced (custom path not
// allowed, primary port not allocated, unknown primary network) is an error
// before anything changes. If ctx ends first the members are still created
// in the background until Leave or Close.
func (a *Announcer) Join(ctx context.Context, s Spec) error {
	base, err := s.basePath(a.cfg)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	m, err := s.members(a.cfg)
	if err != nil {
		return fmt.Errorf("announce %s: %w", base, err)
	}
	key := taskKey{base, s.Shard}
	gen, err := a.change(func() error {
		a.tasks[key] = s
		a.members[key] = m
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.wait(ctx, gen); err != nil {
		return fmt.Errorf("announce %s: %w", base, err)
	}
	return nil
}

// UpdateNetworks replaces the networks of every joined task and waits until
// the members carry the new addresses: data is set in place, members of
// networks that appeared are created, members of networks that went away are
// deleted.
func (a *Announcer) UpdateNetworks(ctx context.Context, nets []Network) error {
	gen, err := a.change(func() error {
		next := make(map[taskKey]map[string][]byte, len(a.tasks))
		for key, s := range a.tasks {
			s.Networks = nets
			m, err := s.members(a.cfg)
			if err != nil {
				return fmt.Errorf("update networks of %s: %w", key.base, err)
			}
			next[key] = m
		}
		for key, m := range next {
			s := a.tasks[key]
			s.Networks = nets
			a.tasks[key] = s
			a.members[key] = m
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.wait(ctx, gen)
}

// Leave withdraws every member and returns when they are gone from
// ZooKeeper. If ctx ends first, Close still removes them by ending the
// session.
func (a *Announcer) Leave(ctx context.Context) error {
	gen, err := a.change(func() error {
		clear(a.tasks)
		clear(a.members)
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.wait(ctx, gen); err != nil {
		return fmt.Errorf("withdraw from serversets: %w", err)
	}
	return nil
}

// Close ends the session, which removes every member at once, and waits for
// the announcer's goroutines. It is idempotent.
func (a *Announcer) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.stop)
		// Closing fails requests in flight with ErrClosing, so run
		// returns; it closes a fresh connection it was trying itself.
		a.cur.Load().close()
		a.wg.Wait()
		// run may have replaced the connection meanwhile; close is
		// idempotent.
		a.cur.Load().close()
	})
	return nil
}

// change applies fn to the desired state under mu and wakes the goroutine.
func (a *Announcer) change(fn func() error) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, ErrClosed
	}
	if err := fn(); err != nil {
		return 0, err
	}
	a.gen++
	a.poke()
	return a.gen, nil
}

// wait returns once the desired state of generation gen exists in
// ZooKeeper.
func (a *Announcer) wait(ctx context.Context, gen uint64) error {
	for {
		a.mu.Lock()
		applied, ch, lastErr, closed := a.applied, a.appliedCh, a.lastErr, a.closed
		a.mu.Unlock()
		if applied >= gen {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-a.stop:
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w (last ZooKeeper error: %v)", ctx.Err(), lastErr)
			}
			return ctx.Err()
		}
	}
}

// snapshot returns the desired members by slot and their generation.
func (a *Announcer) snapshot() (map[slot][]byte, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[slot][]byte{}
	for key, m := range a.members {
		for p, data := range m {
			out[slot{p, key.shard}] = data
		}
	}
	return out, a.gen
}

func (a *Announcer) setResult(gen uint64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err
	if err == nil && gen > a.applied {
		a.applied = gen
		close(a.appliedCh)
		a.appliedCh = make(chan struct{})
	}
}

// Members returns the members the Announcer keeps (or is creating) for
// every joined task: serverset path -> member data. Empty after Leave.
func (a *Announcer) Members() map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]byte{}
	for _, m := range a.members {
		for p, d := range m {
			out[p] = d
		}
	}
	return out
}
