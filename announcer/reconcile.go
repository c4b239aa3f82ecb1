package announcer

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// slot is one member a task should have: serverset path and shard.
type slot struct {
	path  string
	shard int
}

// owned is a member znode this announcer created (or adopted).
type owned struct {
	node    string // full path, .../member_0000000007
	data    []byte
	session int64
}

// attempt records creates whose outcome is unknown: the connection went
// away before the reply, so the node may exist. Sequential names are chosen
// by the server, so the only way to find it is to look for a member owned by
// the session with the data we sent. (go-zookeeper's "protected" create
// solves this with a name prefix, which serverset readers would not parse.)
type attempt struct {
	session int64
	datas   [][]byte
}

// state is the run goroutine's own view of ZooKeeper.
type state struct {
	owned    map[slot]owned
	attempts map[slot]*attempt
	parents  map[string]bool // paths known to exist
	// seen is the newest zxid of a member of session seenSID the
	// announcer has read (its creation or last change; 0: none). The
	// session's connection has seen at least that much, and resends its
	// newest zxid on every reconnect (see rescue): servers that serve
	// without it lost the data (ensembleView.lacks).
	seen, seenSID int64
}

// saw records a member's stat.
func (st *state) saw(stat *zk.Stat) {
	if stat != nil {
		st.seen = max(st.seen, stat.Czxid, stat.Mzxid)
	}
}

const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
	// retryJitter: see retryBackoff.
	retryJitter = 0.5
	// multiBatch bounds one multi request (members are a few hundred
	// bytes; ZooKeeper's jute.maxbuffer is 1 MiB).
	multiBatch = 100
)

var errNoSession = errors.New("no ZooKeeper session")

// run owns the session: it reconciles whenever the desired state or the
// session changes, and retries with backoff while it fails.
func (a *Announcer) run() {
	defer a.wg.Done()
	st := &state{owned: map[slot]owned{}, attempts: map[slot]*attempt{}, parents: map[string]bool{}}
	var rs rescue
	defer func() {
		if rs.probe != nil {
			a.retire(rs.probe)
		}
	}()
	loop(a.stop, a.kick, retryBackoff(), func() (time.Duration, error) {
		wake := a.keepSession(st, &rs)
		desired, gen := a.snapshot()
		err := a.reconcile(st, desired)
		a.setResult(gen, err)
		return wake, err
	}, a.log)
}

// reconcile makes ZooKeeper hold exactly the desired members of this
// session.
func (a *Announcer) reconcile(st *state, desired map[slot][]byte) error {
	if !a.cur.Load().serves() {
		return errNoSession
	}
	sid := a.conn().SessionID()
	a.forgetOtherSessions(st, sid)
	if st.seenSID != sid {
		st.seen, st.seenSID = 0, sid
	}
	var errs []error
	for sl, at := range st.attempts {
		if err := a.settle(st, sid, sl, at, desired); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, a.updateOwned(st, desired)...)
	if err := a.createMissing(st, sid, desired); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if a.conn().SessionID() != sid {
		return errNoSession // the session changed under us: go again
	}
	return nil
}

// forgetOtherSessions drops what belonged to an earlier session: the server
// deleted those members when the session expired.
func (a *Announcer) forgetOtherSessions(st *state, sid int64) {
	lost := 0
	for sl, o := range st.owned {
		if o.session != sid {
			delete(st.owned, sl)
			lost++
		}
	}
	for sl, at := range st.attempts {
		if at.session != sid {
			delete(st.attempts, sl)
		}
	}
	if lost > 0 {
		a.log.Info("members lost with the old session; re-creating", zap.Int("members", lost),
			zap.String("session", fmt.Sprintf("%#x", sid)))
	}
}

// updateOwned deletes the members nobody wants any more and sets new data on
// the ones whose addresses changed, in place.
func (a *Announcer) updateOwned(st *state, desired map[slot][]byte) []error {
	var errs []error
	for sl, o := range st.owned {
		data, want := desired[sl]
		switch {
		case !want:
			err := a.conn().Delete(o.node, -1)
			if err != nil && !errors.Is(err, zk.ErrNoNode) {
				errs = append(errs, fmt.Errorf("withdraw %s: %w", o.node, err))
				continue
			}
			a.log.Info("withdrew member", zap.String("node", o.node))
			delete(st.owned, sl)
		case !bytes.Equal(data, o.data):
			stat, err := a.conn().Set(o.node, data, -1)
			if errors.Is(err, zk.ErrNoNode) {
				delete(st.owned, sl) // someone deleted our member: create it again
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("update %s: %w", o.node, err))
				continue
			}
			a.log.Info("updated member", zap.String("node", o.node))
			st.saw(stat)
			o.data = data
			st.owned[sl] = o
		}
	}
	return errs
}

// settle resolves an attempt of this session: adopt the node it made if the
// task still wants it, delete it (and any duplicate) otherwise.
func (a *Announcer) settle(st *state, sid int64, sl slot, at *attempt, desired map[slot][]byte) error {
	children, _, err := a.conn().Children(sl.path)
	if errors.Is(err, zk.ErrNoNode) {
		delete(st.attempts, sl)
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for a member created before the connection dropped in %s: %w", sl.path, err)
	}
	slices.Sort(children)
	_, want := desired[sl]
	for _, child := range children {
		if _, ok := MemberSequence(child); !ok {
			continue
		}
		node := sl.path + "/" + child
		if o, ok := st.owned[sl]; ok && o.node == node {
			continue
		}
		data, stat, err := a.conn().Get(node)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", node, err)
		}
		if stat.EphemeralOwner != sid || !slices.ContainsFunc(at.datas, func(d []byte) bool { return bytes.Equal(d, data) }) {
			continue
		}
		if _, have := st.owned[sl]; want && !have {
			a.log.Info("adopted member created before the connection dropped", zap.String("node", node))
			st.owned[sl] = owned{node: node, data: data, session: sid}
			st.saw(stat)
			continue
		}
		if err := a.conn().Delete(node, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("delete duplicate member %s: %w", node, err)
		}
		a.log.Info("deleted duplicate member", zap.String("node", node))
	}
	delete(st.attempts, sl)
	return nil
}

// createMissing creates the desired members this session does not own, in
// multi batches: one round trip per batch.
func (a *Announcer) createMissing(st *state, sid int64, desired map[slot][]byte) error {
	var todo []slot
	for sl := range desired {
		if _, ok := st.owned[sl]; ok {
			continue
		}
		if _, ok := st.attempts[sl]; ok {
			continue // unsettled: creating now could duplicate
		}
		todo = append(todo, sl)
	}
	slices.SortFunc(todo, func(x, y slot) int {
		if c := cmp.Compare(x.path, y.path); c != 0 {
			return c
		}
		return x.shard - y.shard
	})
	var errs []error
	for len(todo) > 0 {
		batch := todo[:min(multiBatch, len(todo))]
		todo = todo[len(batch):]
		if err := a.createBatch(st, sid, batch, desired); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Announcer) createBatch(st *state, sid int64, batch []slot, desired map[slot][]byte) error {
	ops := make([]any, 0, len(batch))
	for _, sl := range batch {
		if err := a.ensurePath(st, sl.path); err != nil {
			return err
		}
		ops = append(ops, &zk.CreateRequest{
			Path:  sl.path + "/" + MemberPrefix,
			Data:  desired[sl],
			Acl:   a.acl,
			Flags: zk.FlagEphemeral | zk.FlagSequence,
		})
	}
	for _, sl := range batch {
		at := st.attempts[sl]
		if at == nil {
			at = &attempt{session: sid}
			st.attempts[sl] = at
		}
		at.datas = append(at.datas, desired[sl])
	}
	res, err := a.conn().Multi(ops...)
	if err == nil {
		for _, r := range res {
			if r.Error != nil {
				err = r.Error
				break
			}
		}
	}
	if err != nil {
		if !connectionError(err) {
			// A multi is atomic: a refused one created nothing.
			for _, sl := range batch {
				delete(st.attempts, sl)
			}
			if errors.Is(err, zk.ErrNoNode) {
				clear(st.parents) // a parent was deleted behind our back
			}
		}
		return fmt.Errorf("create %d members (first %s): %w", len(batch), batch[0].path, err)
	}
	for i, sl := range batch {
		st.owned[sl] = owned{node: res[i].String, data: desired[sl], session: sid}
		delete(st.attempts, sl)
		a.log.Info("announced member", zap.String("node", res[i].String), zap.Int("shard", sl.shard))
	}
	// A multi's reply carries no stat for a create (go-zookeeper's
	// MultiResponse); one read of a node it made tells the zxid of all.
	// Without it a wipe is found later (rescue), so a failed read is not
	// an error.
	if _, stat, err := a.conn().Exists(res[0].String); err == nil {
		st.saw(stat)
	}
	return nil
}

// ensurePath creates p and its ancestors as persistent nodes with the ACL.
// Exists comes first because ZooKeeper checks CREATE on the parent before it
// reports that a node exists, and a shared root is often not ours to write.
// It looks at p first and goes up only while nodes are missing: a path that
// exists costs one round trip, not one per level (after a wipe, a thousand
// announcers re-create their members under the same few parents at once).
func (a *Announcer) ensurePath(st *state, p string) error {
	if st.parents[p] {
		return nil
	}
	ok, _, err := a.conn().Exists(p)
	if err != nil {
		return fmt.Errorf("check serverset path %s: %w", p, err)
	}
	if !ok {
		if p != "/" {
			if err := a.ensurePath(st, path.Dir(p)); err != nil {
				return err
			}
		}
		_, err := a.conn().Create(p, nil, 0, a.acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create serverset path %s: %w", p, err)
		}
	}
	for q := p; !st.parents[q]; q = path.Dir(q) {
		st.parents[q] = true // and so do its ancestors
		if q == "/" {
			break
		}
	}
	return nil
}

// connectionError reports whether err leaves a request's outcome unknown.
func connectionError(err error) bool {
	for _, e := range []error{zk.ErrConnectionClosed, zk.ErrSessionExpired, zk.ErrNoServer, zk.ErrClosing, zk.ErrSessionMoved} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
