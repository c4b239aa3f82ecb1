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
	servingUnknown serving = iota // no usable answer (down, srvr not whitelisted, garbled)
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
		return servingUnknown
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, "srvr"); err != nil {
		return servingUnknown
	}
	return parseSrvr(io.LimitReader(c, 64<<10))
}

// parseSrvr classifies a srvr answer.
func parseSrvr(r io.Reader) serving {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
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
	return servingUnknown
}

// ensembleServes asks the servers, in random order (so that a thousand
// announcers do not all ask the first), until one serves. It says
// servingNo if at least one answered and none serves, servingUnknown if
// none answered usefully.
func ensembleServes(ctx context.Context, servers []string) serving {
	verdict := servingUnknown
	for _, i := range rand.Perm(len(servers)) {
		switch askSrvr(ctx, servers[i]) {
		case servingYes:
			return servingYes
		case servingNo:
			verdict = servingNo
		}
		if ctx.Err() != nil {
			break
		}
	}
	return verdict
}
