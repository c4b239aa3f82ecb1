package announcer

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strings"
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

// srvrTimeout bounds one srvr exchange: the command is answered by the
// server's connection thread without a quorum round, in milliseconds even
// on a loaded server.
const srvrTimeout = time.Second

// askSrvr sends ZooKeeper's "srvr" four-letter command to addr. The server
// answers it before, and independently of, any session: "This ZooKeeper
// instance is not currently serving requests" while it has no quorum or
// has not finished syncing with its leader (StatCommand.commandRun,
// AbstractFourLetterCommand.ZK_NOT_SERVING), otherwise its statistics with
// a "Mode: leader|follower|observer|standalone" line. srvr is the one
// command ZooKeeper whitelists by default (4lw.commands.whitelist); a
// server that refuses it answers "srvr is not executed because it is not in
// the whitelist.", which says nothing (servingUnknown).
func askSrvr(ctx context.Context, addr string) serving {
	ctx, cancel := context.WithTimeout(ctx, srvrTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return servingDown
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, "srvr"); err != nil {
		return servingDown
	}
	return parseSrvr(io.LimitReader(c, 64<<10))
}

// parseSrvr classifies a srvr answer. No answer at all (a server that
// closes the connection while it starts or stops) is servingDown: only a
// server that says something else tells that srvr is of no use there.
func parseSrvr(r io.Reader) serving {
	sc := bufio.NewScanner(r)
	said := false
	for sc.Scan() {
		said = true
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "not currently serving requests") {
			return servingNo
		}
		mode, ok := strings.CutPrefix(line, "Mode: ")
		if !ok {
			continue
		}
		switch mode {
		case "leader", "follower", "observer", "standalone":
			return servingYes
		default: // "read-only": refuses the announcer's read-write session
			return servingNo
		}
	}
	if !said {
		return servingDown
	}
	return servingUnknown
}

// ensembleView is what the servers of an ensemble said to srvr.
type ensembleView struct {
	serving, notServing, unknown int // servers that answered so
}

// quorum: a majority of the ensemble's n servers serves, as it does once
// a leader and enough followers to commit have synced; a follower that
// syncs late must not hold up the announcers of a rebuilt ensemble.
func (v ensembleView) quorum(n int) bool { return 2*v.serving > n }

// askEnsemble asks every server, in random order (so that a thousand
// announcers do not all ask the same one first).
func askEnsemble(ctx context.Context, servers []string) ensembleView {
	var v ensembleView
	for _, i := range rand.Perm(len(servers)) {
		if ctx.Err() != nil {
			break
		}
		switch askSrvr(ctx, servers[i]) {
		case servingYes:
			v.serving++
		case servingNo:
			v.notServing++
		case servingUnknown:
			v.unknown++
		}
	}
	return v
}
