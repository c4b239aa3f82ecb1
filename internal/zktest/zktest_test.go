package zktest_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/internal/zktest"
)

func connect(t *testing.T, addr string) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	conn, events, err := zk.Connect([]string{addr}, 4*time.Second, zk.WithLogger(discard{}))
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	t.Cleanup(conn.Close)
	waitState(t, events, zk.StateHasSession)
	return conn, events
}

func waitState(t *testing.T, events <-chan zk.Event, want zk.State) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %v event within 30s", want)
		}
	}
}

func TestExpireSession(t *testing.T) {
	srv := zktest.Start(t)
	conn, events := connect(t, srv.Addr())
	if _, err := conn.Create("/e", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	_, stat, err := conn.Get("/e")
	if err != nil {
		t.Fatal(err)
	}
	if stat.EphemeralOwner != conn.SessionID() {
		t.Fatalf("EphemeralOwner %#x, session %#x", stat.EphemeralOwner, conn.SessionID())
	}
	old := conn.SessionID()
	if err := srv.ExpireSession(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	waitState(t, events, zk.StateExpired)
	waitState(t, events, zk.StateHasSession)
	if conn.SessionID() == old {
		t.Fatalf("session %#x survived ExpireSession", old)
	}
	if ok, _, err := conn.Exists("/e"); err != nil || ok {
		t.Fatalf("ephemeral node after expiry: exists=%v err=%v", ok, err)
	}
	// A session that is gone cannot be expired twice.
	if err := srv.ExpireSession(context.Background(), old); !errors.Is(err, zktest.ErrNoSession) {
		t.Fatalf("second ExpireSession = %v, want ErrNoSession", err)
	}
}

func TestRestartKeepsDataAndPort(t *testing.T) {
	srv := zktest.Start(t)
	addr := srv.Addr()
	conn, events := connect(t, addr)
	if _, err := conn.Create("/p", []byte("kept"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	waitState(t, events, zk.StateDisconnected)
	srv.Restart()
	if srv.Addr() != addr {
		t.Fatalf("address changed over restart: %s -> %s", addr, srv.Addr())
	}
	waitState(t, events, zk.StateHasSession)
	b, _, err := conn.Get("/p")
	if err != nil || string(b) != "kept" {
		t.Fatalf("after restart Get(/p) = %q, %v", b, err)
	}
}

func TestFourLetterWord(t *testing.T) {
	srv := zktest.Start(t)
	out, err := srv.FourLetterWord(context.Background(), "srvr")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Mode: standalone") {
		t.Fatalf("srvr = %q", out)
	}
}

// discard drops go-zookeeper's log: it logs from goroutines that outlive
// conn.Close, and t.Log after the test ends panics.
type discard struct{}

func (discard) Printf(string, ...any) {}

func TestListenAndCommandPrefix(t *testing.T) {
	// 127.0.0.2 is on lo without configuration; env execs java, so the
	// PID Stop kills is still the JVM's.
	srv := zktest.Start(t, zktest.Listen("127.0.0.2"), zktest.CommandPrefix("env", "ZKTEST_PREFIX=1"))
	if !strings.HasPrefix(srv.Addr(), "127.0.0.2:") {
		t.Fatalf("Addr = %s, want 127.0.0.2:port", srv.Addr())
	}
	connect(t, srv.Addr())
	// Bound to that address only.
	port := srv.Addr()[len("127.0.0.2:"):]
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Fatalf("server also answers on 127.0.0.1:%s", port)
	}
}
