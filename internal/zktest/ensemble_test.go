package zktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/internal/zktest"
)

func TestEnsembleFailover(t *testing.T) {
	ens := zktest.StartEnsemble(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, events, err := zk.Connect(ens.Addrs(), 4*time.Second, zk.WithLogger(discard{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	waitState(t, events, zk.StateHasSession)
	if _, err := conn.Create("/q", []byte("replicated"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	leader, err := ens.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int{}
	for i := 0; i < ens.Size(); i++ {
		m, err := ens.Server(i).Mode(ctx)
		if err != nil {
			t.Fatal(err)
		}
		modes[m]++
	}
	if modes["leader"] != 1 || modes["follower"] != 2 {
		t.Fatalf("modes %v, want one leader and two followers", modes)
	}

	// The leader dies: the other two elect a new one, the data is there
	// and the session survives.
	sid := conn.SessionID()
	ens.Server(leader).Stop()
	next, err := ens.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next == leader {
		t.Fatalf("server %d still leads after it was killed", leader)
	}
	waitState(t, events, zk.StateHasSession)
	if b, _, err := conn.Get("/q"); err != nil || string(b) != "replicated" {
		t.Fatalf("after failover Get(/q) = %q, %v", b, err)
	}
	if conn.SessionID() != sid {
		t.Errorf("session changed over failover: %#x -> %#x", sid, conn.SessionID())
	}
	ens.Server(leader).Start()
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}

	// Two of three down: the last one stops serving; back, a leader again.
	a, b := (next+1)%ens.Size(), (next+2)%ens.Size()
	ens.Server(a).Stop()
	ens.Server(b).Stop()
	waitMode(t, ens.Server(next), "")
	ens.Server(a).Start()
	ens.Server(b).Start()
	if _, err := ens.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}

	// A frozen server answers nothing; thawed, it serves again.
	f := ens.Server(a)
	f.Freeze()
	if _, err := f.FourLetterWord(ctx, "srvr"); err == nil {
		t.Errorf("frozen server %d answered srvr", a)
	}
	f.Thaw()
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	if f.PID() == 0 {
		t.Fatal("PID of a running server is 0")
	}
}

func waitMode(t *testing.T, s *zktest.Server, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := s.Mode(context.Background())
		if err == nil && m == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: mode %q (%v), want %q", s.Addr(), m, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
