package zktest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNoSession means the server did not accept the session id: it has
// already expired or was never issued by this server.
var ErrNoSession = errors.New("zktest: session not known to the server")

// ExpireSession ends session id on the server as if it had timed out, the
// classic trick: open a second connection that joins the same session and
// close the session from there. The server then drops every connection of
// the session, and the owner learns on reconnect that it expired
// (go-zookeeper's StateExpired). Its ephemeral nodes are gone when
// ExpireSession returns.
//
// go-zookeeper does not expose the session password, but a standalone
// ZooKeeperServer derives it from the session id (ZooKeeperServer
// .generatePasswd: java.util.Random seeded with id ^ 0xB3415C00, 16 bytes), so
// the id alone is enough; a test can read it from Conn.SessionID or from the
// EphemeralOwner of a node the session created.
func (s *Server) ExpireSession(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := s.opts.dial(ctx, "tcp", s.Addr())
	if err != nil {
		return fmt.Errorf("zktest: expire session %#x: %w", id, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}

	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
	// passwd (length-prefixed), readOnly.
	passwd := sessionPassword(id)
	req := binary.BigEndian.AppendUint32(nil, 0)
	req = binary.BigEndian.AppendUint64(req, 0)
	req = binary.BigEndian.AppendUint32(req, 30000)
	req = binary.BigEndian.AppendUint64(req, uint64(id))
	req = binary.BigEndian.AppendUint32(req, uint32(len(passwd)))
	req = append(req, passwd...)
	req = append(req, 0)
	if err := writeFrame(c, req); err != nil {
		return fmt.Errorf("zktest: expire session %#x: send connect: %w", id, err)
	}
	resp, err := readFrame(c)
	if err != nil {
		// The server closes the socket without a reply for an id it
		// rejects outright.
		return fmt.Errorf("%w: %#x (%v)", ErrNoSession, id, err)
	}
	// ConnectResponse: protocolVersion, timeOut, sessionId, passwd. A zero
	// timeout is the server's way of saying "expired or wrong password".
	if len(resp) < 16 || binary.BigEndian.Uint32(resp[4:8]) == 0 {
		return fmt.Errorf("%w: %#x", ErrNoSession, id)
	}

	// closeSession: RequestHeader{xid, type=-11}, no body.
	hdr := binary.BigEndian.AppendUint32(nil, 1)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(0xfffffff5)) // -11
	if err := writeFrame(c, hdr); err != nil {
		return fmt.Errorf("zktest: expire session %#x: send closeSession: %w", id, err)
	}
	// ReplyHeader{xid, zxid, err}; the server may also just close.
	for {
		r, err := readFrame(c)
		if err != nil {
			return nil //nolint:nilerr // closing the connection is the server's answer too
		}
		if len(r) >= 16 && binary.BigEndian.Uint32(r[0:4]) == 1 {
			if code := int32(binary.BigEndian.Uint32(r[12:16])); code != 0 {
				return fmt.Errorf("zktest: expire session %#x: closeSession error %d", id, code)
			}
			return nil
		}
	}
}

func writeFrame(w io.Writer, b []byte) error {
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// sessionPassword reproduces ZooKeeperServer.generatePasswd: 16 bytes from
// java.util.Random(id ^ 0xB3415C00).nextBytes.
func sessionPassword(id int64) []byte {
	const (
		multiplier = 0x5DEECE66D
		mask       = 1<<48 - 1
	)
	seed := (id ^ 0xB3415C00 ^ multiplier) & mask
	next32 := func() int32 {
		seed = (seed*multiplier + 0xB) & mask
		return int32(seed >> 16)
	}
	p := make([]byte, 16)
	for i := 0; i < len(p); {
		rnd := next32()
		for n := 0; n < 4 && i < len(p); n++ {
			p[i] = byte(rnd)
			rnd >>= 8
			i++
		}
	}
	return p
}
