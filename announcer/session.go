package announcer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dewarhq/dewar/internal/chans"
	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// zkConn is one go-zookeeper client and what tells its end.
type zkConn struct {
	*zk.Conn
	// last is the last session state go-zookeeper reported; refused is
	// when (UnixNano) a server first accepted the TCP connection but then
	// closed it during the handshake, since the last session (0: not
	// since). Both are written by onEvent only.
	last     atomic.Int32
	refused  atomic.Int64
	closing  atomic.Bool
	silent   atomic.Bool   // drop go-zookeeper's logs: the connection was abandoned
	done     chan struct{} // closed when the client's loop has stopped
	doneOnce sync.Once
}

// dial opens a connection; go-zookeeper connects (and reconnects) in the
// background.
func (a *Announcer) dial() (*zkConn, error) {
	zc := &zkConn{done: make(chan struct{})}
	zc.last.Store(int32(zk.StateDisconnected))
	conn, _, err := zk.Connect(a.cfg.Ensemble, a.cfg.SessionTimeout,
		zk.WithLogger(zkLogger{a.log, &zc.silent}),
		zk.WithEventCallback(func(ev zk.Event) { a.onEvent(zc, ev) }))
	if err != nil {
		return nil, fmt.Errorf("connect to ZooKeeper ensemble %s: %w; check --announcer-ensemble",
			strings.Join(a.cfg.Ensemble, ","), err)
	}
	zc.Conn = conn
	return zc, nil
}

// track records ev for refusedSince. go-zookeeper reports StateConnected
// when the TCP connection is up, then StateHasSession, or
// StateDisconnected when the handshake failed (conn.go, Conn.loop). A
// server without quorum and one that refuses the client's zxid both close
// the connection at the handshake; a server that is down refuses the TCP
// connection and is not counted.
func (zc *zkConn) track(ev zk.Event) {
	prev := zk.State(zc.last.Swap(int32(ev.State)))
	switch ev.State {
	case zk.StateHasSession, zk.StateExpired:
		zc.refused.Store(0) // a server answered the handshake
	case zk.StateDisconnected:
		if prev == zk.StateConnected {
			zc.refused.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
}

// serves says that zc has a session and is not being closed. A connection
// retired while it is still the current one (see keepSession: an ensemble
// that lost its data) may yet get a session from go-zookeeper, whose loop
// notices Close only between connection attempts; that session is about
// to close and must not be used or kept.
func (zc *zkConn) serves() bool {
	return zc.State() == zk.StateHasSession && !zc.closing.Load()
}

// refusedSince is when servers started refusing the handshake (zero: they
// have not since the last session).
func (zc *zkConn) refusedSince() time.Time {
	if n := zc.refused.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// close closes the client and waits for its loop to stop: go-zookeeper's
// Close does not wait for its goroutines, and they log through a.log. It is
// idempotent.
func (zc *zkConn) close() {
	zc.closing.Store(true)
	zc.Conn.Close()
	select {
	case <-zc.done:
	case <-time.After(5 * time.Second):
	}
}

// authenticate adds cfg.Auth's identities to conn, which has a session.
// go-zookeeper resends them on every reconnect of the same Conn.
func (a *Announcer) authenticate(conn *zk.Conn) error {
	if a.cfg.Auth == nil {
		return nil
	}
	for _, au := range a.cfg.Auth.Auth {
		// The credential is a secret: name the scheme only.
		if err := conn.AddAuth(au.Scheme, []byte(au.Credential)); err != nil {
			return fmt.Errorf("authenticate to ZooKeeper %s with scheme %q: %w; check --announcer-zookeeper-auth-config",
				strings.Join(a.cfg.Ensemble, ","), au.Scheme, err)
		}
	}
	return nil
}

// retire abandons zc in the background: silent, so that a finished test's
// logger is not used, and closed. Close waits for it through wg.
func (a *Announcer) retire(zc *zkConn) {
	zc.silent.Store(true)
	zc.closing.Store(true)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		zc.Conn.Close() // at most a second when it has no connection
	}()
}

// rescue is the run goroutine's state for a connection that cannot get its
// session back.
//
// A go-zookeeper Conn sends the highest zxid it has seen in every connect
// request (go-zookeeper conn.go, Conn.authenticate: LastZxidSeen:
// c.lastZxid) and forgets it only when a server says the session expired.
// A server whose database is older than that zxid, as after an ensemble was
// rebuilt with empty (or restored) data, refuses the request before it
// looks at the session (ZooKeeperServer.processConnectRequest: "Refusing
// session request for client ... as it has seen zxid ...") and closes the
// connection; the client reconnects and is refused again, forever. Only a
// new Conn, with lastZxid 0, gets in.
//
// From the client, that refusal looks like a server without quorum (which
// also closes the connection: "ZooKeeperServer not running",
// NIOServerCnxn.readConnectRequest). So the announcer cannot decide from its
// own connection; it opens a second one (the probe) once servers have been
// refusing the handshake for a while (probeAfter): measured from when they
// answer, not from when the session was lost, so that an ensemble merely
// restarting (servers down, then a leader election of a second or two) does
// not open a second connection per announcer in the middle of the rejoin
// storm. Before it opens one, it asks the servers whether they serve at all
// (srvr, see askSrvr): while none does, the refusals are a missing
// quorum (a leader election, a restart of the ensemble), which every
// announcer of a cluster sees at once, and a fresh session per announcer
// would only double the sessions a new leader must take on in its first
// seconds (measured: 1,000 announcers opened 1,000 fresh connections on
// every restart of the ensemble, and 200 on every leader election that
// took longer than probeAfter). The probe opens only once the servers have
// served for a while and the old session is still refused (untilServed),
// or at once when srvr tells nothing (it is not whitelisted there).
//
// srvr also tells each server's zxid. An announcer that has read the zxid
// of its own members (state.seen) asks from the first refusal on, and
// opens the probe as soon as a majority serves without that zxid: the
// ensemble lost its data, and no wait brings the old session back
// (ensembleView.lacks). Measured: a storm of 1,000 announcers after a
// wipe came back 5.47 s after quorum at load 10, against 7.81–12.13 s
// with the wait alone.
//
// A probe that gets a session proves a leader serves. Then:
//
//   - if the old connection gets its session back first, the probe is
//     closed and nothing changes (a quorum loss the session survived: a
//     new leader gives every session it loads a fresh timeout,
//     SessionTrackerImpl, so a client that reconnects within it keeps it);
//   - if no member owned by the old session exists (an ephemeral node
//     lives exactly as long as its session), the old session holds nothing
//     that could be duplicated: the probe replaces the connection at once
//     and reconcile re-creates the members, as after an expiry;
//   - if members of the old session exist but its connection still cannot
//     get in, the session is left to expire: the leader that served the
//     probe expires it at most one session timeout (plus a tick) after it
//     started, unless a client renews it. After that long the probe
//     replaces the connection, and the members still owned by the old
//     session are deleted first, so that no reader ever sees two.
type rescue struct {
	// anyServing and quorumServing are when some server, and a majority
	// of them, was first seen serving (srvr) while the session was
	// refused; nextAsk when to ask again.
	anyServing, quorumServing, nextAsk time.Time
	lostSID                            int64 // the session of the current connection when the probe opened
	probe                              *zkConn
	probeAt                            time.Time // the probe was first seen with a session
	authed                             bool      // cfg.Auth added to the probe
	waiting                            bool      // logged that members of the old session exist
	// lacking: srvr said the ensemble lacks the members (logged);
	// lostEpoch: and serves an older epoch than theirs. Both tell the
	// probe that follows, then go with the reset.
	lacking, lostEpoch bool
}

// probeAfter is how long servers must have refused the handshake before a
// probe opens: a quarter of the session timeout. Opening it is always safe
// (the probe replaces the connection only when the old session provably
// holds nothing, or after it expired); it costs one session per announcer,
// wasted when the old session comes back, so it waits longer than a leader
// election normally takes (ZooKeeper elects in well under a second), but
// not the whole session timeout, which the rejoin after a wipe would add to
// its time (measured: a wiped ensemble refuses from about when it has a
// leader).
func probeAfter(sessionTimeout time.Duration) time.Duration { return sessionTimeout / 4 }

// reconnectPause is go-zookeeper's pause after every round through the
// servers that got no session (conn.go, Conn.connect: time.After of a
// second when the host provider starts over).
const reconnectPause = time.Second

// servedFor is how long a majority must have served while the session is
// still refused before a probe opens: probeAfter, but at least two of
// go-zookeeper's rounds, so that a client that was in its pause when the
// quorum came back has had its turn (with 2 s sessions a quarter is
// 0.5 s, and TestQuorumLossKeepsSession saw the old session come back
// 0.55 s after a majority served, just after the probe opened).
func servedFor(sessionTimeout time.Duration) time.Duration {
	return max(probeAfter(sessionTimeout), 2*reconnectPause)
}

// srvrEvery is how often an announcer whose session is refused asks the
// servers whether they serve; each asks at a random point of the next
// srvrEvery after that, so that the announcers of a cluster do not ask in
// step.
const srvrEvery = time.Second

// untilServed returns how long to wait before a probe may open (0: now),
// servers having refused the handshake since since. See rescue: a probe
// opens once a majority of the servers has served for servedFor, or some
// server for a whole session timeout (by then the leader has expired the
// old session unless it refuses it: a follower that cannot sync must not
// keep a wiped ensemble's announcers out for good), while the session was
// still refused, counted from probeAfter after the first refusal. While no
// server serves (no quorum, all down) a fresh session could not be had
// either.
//
// When the announcer has seen a zxid of its own members (seen), it asks
// from the first refusal on and opens the probe at once if the ensemble
// serves without that zxid (ensembleView.lacks): it lost its data, and
// waiting could not bring the session back.
func (a *Announcer) untilServed(rs *rescue, since time.Time, seen int64, now time.Time) time.Duration {
	early := untilProbe(since, now, a.cfg.SessionTimeout)
	if seen == 0 && early > 0 {
		return early // nothing to ask about yet
	}
	if rs.nextAsk.IsZero() && early > 0 {
		// The first refusals of a cluster's announcers come together
		// (a server that starts, a leader elected): spread their asks.
		rs.nextAsk = now.Add(rand.N(srvrEvery / 2))
	}
	if !now.Before(rs.nextAsk) {
		// Before probeAfter the refusals may be an election that ends by
		// itself: a majority's answers tell a wipe, and the announcers of
		// a cluster spare the electing servers the rest.
		v := a.askServers(early > 0)
		rs.nextAsk = now.Add(srvrEvery + rand.N(srvrEvery))
		n := len(a.cfg.Ensemble)
		if v.lacks(n, seen) {
			older := v.lostEpoch(n, seen)
			a.log.Warn("zookeeper serves without this announcer's members: the ensemble lost its data (rebuilt empty or restored from an older backup)",
				zap.String("members_zxid", fmt.Sprintf("%#x", seen)),
				zap.String("ensemble_zxid", fmt.Sprintf("%#x", v.newest)),
				zap.Bool("older_epoch", older))
			rs.lacking, rs.lostEpoch = true, older
			return 0
		}
		if early == 0 && a.noteServing(rs, v, now) {
			return 0 // srvr says nothing here (not whitelisted): the refusals alone decide
		}
	}
	if early > 0 {
		return min(early, rs.nextAsk.Sub(now))
	}
	if rs.anyServing.IsZero() {
		return rs.nextAsk.Sub(now)
	}
	deadline := rs.anyServing.Add(a.cfg.SessionTimeout)
	if !rs.quorumServing.IsZero() {
		deadline = rs.quorumServing.Add(servedFor(a.cfg.SessionTimeout))
	}
	if wait := deadline.Sub(now); wait > 0 {
		return min(wait, rs.nextAsk.Sub(now))
	}
	return 0
}

// noteServing records when some server and a majority of them were first
// seen serving. It says whether srvr told nothing at all (not whitelisted).
func (a *Announcer) noteServing(rs *rescue, v ensembleView, now time.Time) (silent bool) {
	switch {
	case v.serving == 0 && v.notServing == 0 && v.unknown > 0:
		return true
	case v.serving == 0:
		rs.anyServing, rs.quorumServing = time.Time{}, time.Time{}
	default:
		if rs.anyServing.IsZero() {
			rs.anyServing = now
			a.log.Info("zookeeper serves but still refuses the session; a fresh connection opens if that lasts")
		}
		switch {
		case !v.quorum(len(a.cfg.Ensemble)):
			rs.quorumServing = time.Time{}
		case rs.quorumServing.IsZero():
			rs.quorumServing = now
		}
	}
	return false
}

// askServers runs askEnsemble until Close.
func (a *Announcer) askServers(majorityOnly bool) ensembleView {
	// Close does not wait for the servers' answers.
	ctx, cancel := chans.WithCancelOnClose(context.Background(), a.stop)
	defer cancel()
	return askEnsemble(ctx, a.cfg.Ensemble, majorityOnly)
}

// rescueGrace is added to the session timeout before members of a session
// that cannot reconnect are taken for dead: the server checks deadlines once
// a tick (2 s by default) and may have negotiated a longer timeout.
const rescueGrace = 2 * time.Second

// untilProbe is how long keepSession waits at least before it opens the
// probe, servers having refused the handshake since since: until probeAfter
// has passed since the first refusal (0: it may open now).
func untilProbe(since, now time.Time, sessionTimeout time.Duration) time.Duration {
	return max(since.Add(probeAfter(sessionTimeout)).Sub(now), 0)
}

// lookAgain is how often keepSession looks for the old session's members
// while it waits for that session: the server deletes them the moment it
// expires the session, and the probe may replace it then.
const lookAgain = time.Second

// untilSwitch is keepSession's wait for the old session once the probe has
// had a session since rs.probeAt; alive says that members of the old
// session still exist. look is when to look again, 0 when the probe
// replaces the old connection now: at once when nothing of the old session
// is left, else once the old session must have expired (the session
// timeout plus rescueGrace after probeAt). left is what remains of that.
func (rs *rescue) untilSwitch(alive bool, sessionTimeout time.Duration) (look, left time.Duration) {
	if !alive {
		return 0, 0
	}
	left = max(time.Until(rs.probeAt.Add(sessionTimeout+rescueGrace)), 0)
	return min(left, lookAgain), left
}

// keepSession runs before every reconcile. It returns how long until it
// wants to run again (0: when something changes).
func (a *Announcer) keepSession(st *state, rs *rescue) time.Duration {
	cur := a.cur.Load()
	if cur.serves() {
		if rs.probe != nil {
			a.log.Info("zookeeper session back; closing the fresh connection")
			a.retire(rs.probe)
		}
		*rs = rescue{}
		return 0
	}
	now := time.Now()
	if rs.probe == nil {
		since := cur.refusedSince()
		if since.IsZero() {
			return 0 // the next refusal wakes us (onEvent)
		}
		seen := st.seen
		if st.seenSID != cur.SessionID() {
			seen = 0 // of an earlier session of this Conn, which forgot it
		}
		if wait := a.untilServed(rs, since, seen, now); wait > 0 {
			return wait
		}
		lacking, lostEpoch := rs.lacking, rs.lostEpoch
		probe, err := a.dial()
		if err != nil {
			a.log.Warn("cannot open a fresh ZooKeeper connection; retrying", zap.Error(err))
			return retryMax
		}
		if !lacking {
			a.log.Info("zookeeper servers keep refusing the session; opening a fresh connection in case the ensemble lost its data (a server refuses a client that has seen a newer zxid than its own)",
				zap.Duration("refused_for", now.Sub(since)))
		}
		// go-zookeeper keeps the session id while it reconnects and
		// zeroes it only when told of the expiry.
		*rs = rescue{probe: probe, lostSID: cur.SessionID()}
		if lostEpoch {
			// The old session cannot come back to an ensemble that went
			// back to an older epoch (at most it is told it expired). Its
			// reconnects, a refused handshake on every server each
			// second, would only load the servers the fresh connections
			// of a whole cluster now need: stop them. Its members, if a
			// restored database has some, are handled as below. (Servers
			// that lack the members in the same epoch might only lag: the
			// old connection stays until the probe's session shows what
			// is left of it.)
			a.retire(cur)
		}
		return 0 // its events wake us
	}
	if rs.probe.State() != zk.StateHasSession {
		return 0
	}
	if rs.probeAt.IsZero() {
		rs.probeAt = now
	}
	pc := rs.probe.Conn
	if !rs.authed {
		if err := a.authenticate(pc); err != nil {
			a.log.Warn("fresh ZooKeeper connection", zap.Error(err))
			return retryMax
		}
		rs.authed = true
	}
	alive, err := a.oldMembers(pc, st)
	if err != nil {
		a.log.Warn("cannot look for members of the old session; retrying", zap.Error(err))
		return retryMax
	}
	if look, left := rs.untilSwitch(len(alive) > 0, a.cfg.SessionTimeout); look > 0 {
		if !rs.waiting {
			rs.waiting = true
			a.log.Info("zookeeper serves a fresh connection but not the old session, whose members still exist; waiting for it to reconnect or expire",
				zap.Int("members", len(alive)), zap.Duration("at_most", left))
		}
		return look
	}
	if cur.serves() {
		return 0 // back just now: keep it (next call closes the probe)
	}
	for _, node := range alive {
		if err := pc.Delete(node, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			a.log.Warn("cannot delete a member of the old session; retrying", zap.String("node", node), zap.Error(err))
			return retryMax
		}
		a.log.Info("deleted member of the old session that cannot reconnect", zap.String("node", node))
	}
	a.log.Warn("zookeeper refuses the old session; members will be re-created in a new session",
		zap.String("old_session", fmt.Sprintf("%#x", rs.lostSID)),
		zap.String("session", fmt.Sprintf("%#x", pc.SessionID())),
		zap.Int("old_members_deleted", len(alive)))
	a.cur.Store(rs.probe)
	a.retire(cur)
	clear(st.parents) // what the old connection saw may be gone with the data
	*rs = rescue{}
	return 0
}

// oldMembers returns the members this announcer created (or may have
// created) that still exist and are owned by the session they were created
// in, as conn (another session) sees them.
func (a *Announcer) oldMembers(conn *zk.Conn, st *state) ([]string, error) {
	// A follower may lag its leader; sync first (ZooKeeper's sync).
	if _, err := conn.Sync("/"); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	var out []string
	for _, o := range st.owned {
		ok, stat, err := conn.Exists(o.node)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", o.node, err)
		}
		if ok && stat.EphemeralOwner == o.session {
			out = append(out, o.node)
		}
	}
	for sl, at := range st.attempts {
		children, _, err := conn.Children(sl.path)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sl.path, err)
		}
		for _, child := range children {
			if _, ok := MemberSequence(child); !ok {
				continue
			}
			node := sl.path + "/" + child
			ok, stat, err := conn.Exists(node)
			if err != nil {
				return nil, fmt.Errorf("check %s: %w", node, err)
			}
			if ok && stat.EphemeralOwner == at.session {
				out = append(out, node)
			}
		}
	}
	return out, nil
}
