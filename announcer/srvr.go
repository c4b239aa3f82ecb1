package announcer

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serving is what a server says about itself when asked "srvr".
type serving int

const (
	servingDown    serving = iota // no answer: down, or not listening yet
	servingUnknown                // an answer that says nothing (srvr not whitelisted, garbled)
	servingNo                     // up, but serves no client: no quorum, or still syncing
	servingYes                    // a leader, follower, observer or standalone that serves
)

// srvrAnswer is what one server said: whether it serves and, when it
// said so, the last zxid it has applied (noZxid: not said; an empty
// database says 0).
type srvrAnswer struct {
	serving serving
	zxid    int64
	leads   bool // a leader, or a standalone server: it has every committed transaction
}

const noZxid = -1

// srvrTimeout bounds one srvr exchange: the command is answered by the
// server's connection thread without a quorum round, in milliseconds even
// on a loaded server.
const srvrTimeout = time.Second

// askSrvr sends ZooKeeper's "srvr" four-letter command to addr. The server
// answers it before, and independently of, any session: "This ZooKeeper
// instance is not currently serving requests" while it has no quorum or
// has not finished syncing with its leader (StatCommand.commandRun,
// AbstractFourLetterCommand.ZK_NOT_SERVING), otherwise its statistics with
// a "Mode: leader|follower|observer|standalone" line and a "Zxid: 0x..."
// line, the last transaction the server has applied
// (ServerStats.getLastProcessedZxid). srvr is the one
// command ZooKeeper whitelists by default (4lw.commands.whitelist); a
// server that refuses it answers "srvr is not executed because it is not in
// the whitelist.", which says nothing (servingUnknown).
func askSrvr(ctx context.Context, addr string) srvrAnswer {
	ctx, cancel := context.WithTimeout(ctx, srvrTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return srvrAnswer{serving: servingDown, zxid: noZxid}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, "srvr"); err != nil {
		return srvrAnswer{serving: servingDown, zxid: noZxid}
	}
	return parseSrvr(io.LimitReader(c, 64<<10))
}

// parseSrvr classifies a srvr answer. No answer at all (a server that
// closes the connection while it starts or stops) is servingDown: only a
// server that says something else tells that srvr is of no use there.
func parseSrvr(r io.Reader) srvrAnswer {
	sc := bufio.NewScanner(r)
	said := false
	zxid := int64(noZxid)
	for sc.Scan() {
		said = true
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "not currently serving requests") {
			return srvrAnswer{serving: servingNo, zxid: noZxid}
		}
		if hex, ok := strings.CutPrefix(line, "Zxid: 0x"); ok {
			if n, err := strconv.ParseInt(hex, 16, 64); err == nil {
				zxid = n
			}
			continue
		}
		mode, ok := strings.CutPrefix(line, "Mode: ")
		if !ok {
			continue
		}
		switch mode {
		case "leader", "follower", "observer", "standalone":
			// StatCommand prints Zxid before Mode.
			return srvrAnswer{serving: servingYes, zxid: zxid, leads: mode == "leader" || mode == "standalone"}
		default: // "read-only": refuses the announcer's read-write session
			return srvrAnswer{serving: servingNo, zxid: noZxid}
		}
	}
	if !said {
		return srvrAnswer{serving: servingDown, zxid: noZxid}
	}
	return srvrAnswer{serving: servingUnknown, zxid: noZxid}
}

// ensembleView is what the servers of an ensemble said to srvr.
type ensembleView struct {
	serving, notServing, unknown int // servers that answered so
	// withZxid of the serving servers told their zxid; newest is the
	// highest of those, leader the leader's (noZxid: none said).
	withZxid       int
	newest, leader int64
}

// quorum: a majority of the ensemble's n servers serves, as it does once
// a leader and enough followers to commit have synced; a follower that
// syncs late must not hold up the announcers of a rebuilt ensemble.
func (v ensembleView) quorum(n int) bool { return 2*v.serving > n }

// lacks says that the ensemble of n servers serves without the transaction
// seen: its serving leader has not applied seen, or a majority serves and
// says its zxid and none of those has. A leader has every committed
// transaction (ZooKeeper elects the most up-to-date server), and a server
// serves only once it has synced with its leader (Learner.syncWithLeader),
// so that happens when the ensemble lost its data (rebuilt empty, or
// restored from an older backup), or, for a few milliseconds after seen was
// written, when every server asked lags the one that answered the
// announcer. The first is why the old session is refused for good; the
// second costs a fresh connection that keepSession closes when the old
// session comes back (it keeps the old session while its members exist).
// seen 0 (nothing seen) is never lacking.
func (v ensembleView) lacks(n int, seen int64) bool {
	if seen <= 0 {
		return false
	}
	return (v.leader != noZxid && v.leader < seen) || (2*v.withZxid > n && v.newest < seen)
}

// lostEpoch says that the ensemble lacks seen (lacks) and serves in an
// older epoch than the one seen was written in (a zxid's high 32 bits):
// an ensemble that kept its data never goes back to an older epoch (every
// election makes a newer one), so this is lost data, never servers that
// lag for a moment.
func (v ensembleView) lostEpoch(n int, seen int64) bool {
	if !v.lacks(n, seen) {
		return false
	}
	best := v.newest
	if v.leader != noZxid {
		best = v.leader
	}
	return best>>32 < seen>>32
}

// askEnsemble asks a majority of the servers, chosen at random, at once,
// and the others only when that majority does not serve: once a majority
// serves, the others cannot change what the announcer decides (quorum,
// lacks). Asking at once, the answer takes as long as the slowest server
// asked, not the sum (a loaded server may take most of srvrTimeout to
// accept); asking only a majority spares the servers a third of the
// connections when a thousand announcers ask in a rejoin storm, where
// every connection competes for the servers' accept queues with the
// sessions being re-established.
//
// With majorityOnly the others are never asked: enough to see a majority
// that serves (and so whether it lacks the announcer's members), not to
// count the servers that do not. The announcer asks so while refusals may
// still be an election that ends by itself (see untilServed).
func askEnsemble(ctx context.Context, servers []string, majorityOnly bool) ensembleView {
	order := rand.Perm(len(servers))
	first := len(servers)/2 + 1
	v := ensembleView{newest: noZxid, leader: noZxid}
	v.add(askEach(ctx, servers, order[:first]))
	if !majorityOnly && !v.quorum(len(servers)) {
		v.add(askEach(ctx, servers, order[first:]))
	}
	return v
}

// askEach asks servers[i] for each i at once.
func askEach(ctx context.Context, servers []string, which []int) []srvrAnswer {
	answers := make([]srvrAnswer, len(which))
	var wg sync.WaitGroup
	for j, i := range which {
		wg.Go(func() { answers[j] = askSrvr(ctx, servers[i]) })
	}
	wg.Wait()
	return answers
}

// add counts answers into v.
func (v *ensembleView) add(answers []srvrAnswer) {
	for _, ans := range answers {
		switch ans.serving {
		case servingYes:
			v.serving++
			if ans.zxid != noZxid {
				v.withZxid++
				v.newest = max(v.newest, ans.zxid)
				if ans.leads {
					v.leader = ans.zxid
				}
			}
		case servingNo:
			v.notServing++
		case servingUnknown:
			v.unknown++
		}
	}
}
