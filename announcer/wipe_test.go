package announcer_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// A server restarted with an empty database (disaster recovery) refuses the
// announcer's connection forever: go-zookeeper resends the zxid it has seen,
// which is ahead of the server's. The announcer must notice, open a new
// connection and announce again, once. It notices from what the server
// says (srvr: serving, at a zxid older than its members'), not by waiting
// for refusals to last.
func TestWipedZooKeeperMembersComeBack(t *testing.T) {
	srv := zktest.Start(t)
	a, logs := newAnnouncerOn(t, []string{srv.Addr()}, nil)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	old := a.SessionID()
	srv.Stop()
	srv.WipeData()
	srv.Restart()
	restarted := time.Now()
	// A new client: an old one would be refused like the announcer.
	obs := observer(t, srv)
	testenv.WaitUntilState(t, 30*time.Second, "members back after the wipe", func() (bool, string) {
		owners, state := memberOwners(t, obs)
		for _, p := range jobPaths {
			if len(owners[p]) != 1 || owners[p][0] == old || owners[p][0] != a.SessionID() {
				return false, state
			}
		}
		return true, state
	})
	t.Logf("members back %v after the server restarted empty", time.Since(restarted))
	if logs.FilterMessageSnippet("serves without this announcer's members").Len() == 0 {
		t.Error("the announcer did not tell from srvr that the ensemble lost its data")
	}
	if n := logs.FilterMessageSnippet("keep refusing the session").Len(); n > 0 {
		t.Errorf("the fresh connection opened on the refusal timer (%d times), not on what srvr said", n)
	}
	// Never two: watch for a while longer (the old connection is retired,
	// the new one must not announce twice).
	deadline := time.Now().Add(2 * sessionTimeout)
	for time.Now().Before(deadline) {
		owners, state := memberOwners(t, obs)
		for _, p := range jobPaths {
			if len(owners[p]) != 1 {
				t.Fatalf("%s: want exactly one member, have %s", p, state)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Changes still work on the new connection.
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if owners, state := memberOwners(t, obs); len(owners) != 0 {
		t.Fatalf("members after Leave: %s", state)
	}
}

// An outage longer than the session timeout opens a fresh connection, but
// when the server comes back with its data the old session resumes (the
// server gives the sessions it loads a fresh timeout) and must be kept: same
// session, same member nodes, never a second member.
func TestOutageKeepsSessionThatResumes(t *testing.T) {
	const timeout = 4 * time.Second
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, func(c *announcer.Config) { c.SessionTimeout = timeout })
	obs := observer(t, srv)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	old := a.SessionID()
	before := allMemberNodes(t, obs)
	srv.Stop()
	time.Sleep(timeout + time.Second) // the fault: longer than the session timeout
	srv.Restart()
	obs = observer(t, srv)
	testenv.WaitUntilState(t, 30*time.Second, "session back", func() (bool, string) {
		id := a.SessionID()
		return id == old, fmt.Sprintf("session %#x, want %#x", id, old)
	})
	// Past the point where a fresh connection would have replaced the old
	// one: the members stay those of the old session.
	keepsOldSession(t, obs, old, timeout+3*time.Second)
	if after := allMemberNodes(t, obs); !slices.Equal(before, after) {
		t.Errorf("members changed across the outage: %v, then %v", before, after)
	}
	if id := a.SessionID(); id != old {
		t.Errorf("session %#x after the outage, want the old %#x", id, old)
	}
}

// A server restored from an older copy of its database still knows the
// announcer's session and its members, but refuses the connection (the
// client has seen newer zxids). The members of the old session must not be
// joined by new ones while they exist: never two per task, and the members
// come back in a new session once the old one is gone.
func TestRestoredZooKeeperNoDuplicates(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	old := a.SessionID()
	srv.Stop()
	restore := srv.SaveData()
	srv.Restart()
	// A change after the backup: the client sees newer zxids than the
	// backup holds.
	s := twoNetworks()
	s.Networks[1].Addrs = []netip.Addr{netip.MustParseAddr("198.19.0.3")}
	if err := a.UpdateNetworks(ctxT(t), s.Networks); err != nil {
		t.Fatal(err)
	}
	if id := a.SessionID(); id != old {
		t.Fatalf("session %#x after a short restart, want %#x", id, old)
	}
	srv.Stop()
	restore()
	srv.Restart()
	restarted := time.Now()
	obs := observer(t, srv)
	var sawOld bool
	testenv.WaitUntilState(t, 30*time.Second, "members back in a new session", func() (bool, string) {
		owners, state := memberOwners(t, obs)
		back := true
		for _, p := range jobPaths {
			if len(owners[p]) > 1 {
				t.Fatalf("%s: more than one member: %s", p, state)
			}
			if len(owners[p]) == 1 && owners[p][0] == old {
				sawOld = true
			}
			if len(owners[p]) != 1 || owners[p][0] == old || owners[p][0] != a.SessionID() {
				back = false
			}
		}
		return back, state
	})
	t.Logf("members back %v after the restore (members of the old session seen meanwhile: %v)", time.Since(restarted), sawOld)
	// The new members carry the data of after the backup.
	nodes := memberNodes(t, obs, job+"@net-b")
	data, _, err := obs.Get(nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "198.19.0.3") {
		t.Errorf("member %s after the restore: %s; want the address set after the backup", nodes[0], data)
	}
}
