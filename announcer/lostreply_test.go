package announcer_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/zktest"
)

// replyDropper is a TCP proxy in front of ZooKeeper that, once armed, lets
// the next multi request (the announcer's batched member creates) reach the
// server and then cuts the connection before the reply comes back: the
// create happened, the client cannot know.
type replyDropper struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	dropped chan struct{}
	wg      sync.WaitGroup
}

const opMulti = 14

func newReplyDropper(t *testing.T, target string) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{ln: ln, target: target, dropped: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *replyDropper) addr() string { return p.ln.Addr().String() }

func (p *replyDropper) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.wg.Add(2)
		go func() { // server -> client, verbatim
			defer p.wg.Done()
			_, _ = io.Copy(client, server)
			client.Close()
		}()
		go func() { // client -> server, frame by frame
			defer p.wg.Done()
			defer server.Close()
			defer client.Close()
			first := true
			for {
				var size [4]byte
				if _, err := io.ReadFull(client, size[:]); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(client, body); err != nil {
					return
				}
				// Frames after the connect request start with xid, opcode.
				if !first && len(body) >= 8 && int32(binary.BigEndian.Uint32(body[4:8])) == opMulti && p.armed.CompareAndSwap(true, false) {
					// Cut the client off first, so the reply has nowhere
					// to go, then let the server apply the request.
					client.Close()
					_, _ = server.Write(append(size[:], body...))
					time.Sleep(200 * time.Millisecond)
					close(p.dropped)
					return
				}
				first = false
				if _, err := server.Write(append(size[:], body...)); err != nil {
					return
				}
			}
		}()
	}
}

func TestCreateWithLostReplyIsAdoptedNotDuplicated(t *testing.T) {
	srv := zktest.Start(t)
	proxy := newReplyDropper(t, srv.Addr())
	a := newAnnouncer(t, srv, func(c *announcer.Config) {
		c.Ensemble = []string{proxy.addr()}
		// Long enough that the reconnect lands in the same session: that
		// is the case where the nodes survive and must be adopted.
		c.SessionTimeout = 20 * time.Second
	})
	obs := observer(t, srv)
	session := a.SessionID()
	proxy.armed.Store(true)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.dropped:
	default:
		t.Fatal("the proxy never saw the create; the test staged nothing")
	}
	if a.SessionID() != session {
		t.Fatalf("session changed (%#x -> %#x); the reconnect should have resumed it", session, a.SessionID())
	}
	for _, p := range jobPaths {
		nodes := memberNodes(t, obs, p)
		// member_0000000000 is the node made by the create whose reply was
		// lost; a second create would have made member_0000000001.
		if len(nodes) != 1 || nodes[0] != p+"/member_0000000000" {
			t.Fatalf("%s: members %v, want only the adopted member_0000000000", p, nodes)
		}
		_, stat, err := obs.Get(nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		if stat.EphemeralOwner != session {
			t.Errorf("%s owned by %#x, want session %#x", nodes[0], stat.EphemeralOwner, session)
		}
	}
	// The adopted members are ours to withdraw.
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range jobPaths {
		if n := memberNodes(t, obs, p); len(n) != 0 {
			t.Errorf("%s after Leave: %v", p, n)
		}
	}
}
