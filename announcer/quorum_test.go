package announcer_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// A quorum lost for longer than the session timeout looks, from the client,
// like a wiped ensemble: the server left alone accepts the connection and
// closes it at the handshake. But that server says (srvr) that it does not
// serve, so the announcer must not open a fresh connection: every announcer
// of a cluster would, and a new leader would take on twice the sessions in
// its first seconds. Once quorum is back the old session resumes (a new
// leader gives every session a fresh timeout) and must be kept: same
// session, same members.
func TestQuorumLossKeepsSession(t *testing.T) {
	ens := zktest.StartEnsemble(t)
	a, logs := newAnnouncerOn(t, ens.Addrs(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Join(ctx, twoNetworks()); err != nil {
		t.Fatal(err)
	}
	old := a.SessionID()
	obs, _, err := zk.Connect(ens.Addrs(), 10*time.Second, zk.WithLogger(discard{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Close)
	var before []string
	testenv.WaitUntilState(t, 30*time.Second, "observer reads the members", func() (bool, string) {
		before = before[:0]
		for _, p := range jobPaths {
			n, _, err := obs.Children(p)
			if err != nil {
				return false, err.Error()
			}
			for _, c := range n {
				before = append(before, p+"/"+c)
			}
		}
		return len(before) == len(jobPaths), fmt.Sprint(before)
	})
	leader, err := ens.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	down := []int{leader, (leader + 1) % ens.Size()}
	for _, i := range down {
		ens.Server(i).Stop()
	}
	// The fault: the remaining server refuses the handshake (go-zookeeper
	// logs "authentication failed") for longer than the session timeout,
	// well past the point where a fresh connection would open.
	testenv.WaitUntilState(t, 30*time.Second, "the remaining server refuses the handshake", func() (bool, string) {
		n := logs.FilterMessageSnippet("authentication failed").Len()
		return n > 0, fmt.Sprintf("%d log lines", logs.Len())
	})
	time.Sleep(sessionTimeout + 2*time.Second) // a fault of fixed length
	if n := logs.FilterMessageSnippet("opening a fresh connection").Len(); n > 0 {
		t.Errorf("a fresh connection opened %d times while no server served; want none", n)
	}
	for _, i := range down {
		ens.Server(i).Start()
	}
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	// Join again (the same task: nothing changes) returns once the
	// announcer has a session and its members exist.
	if err := a.Join(ctx, twoNetworks()); err != nil {
		t.Fatal(err)
	}
	if a.SessionID() != old {
		t.Errorf("session %#x after quorum came back; want the old one, %#x", a.SessionID(), old)
	}
	// Past the point where the fresh connection would have replaced the
	// old one: the members stay those of the old session.
	keepsOldSession(t, obs, old, sessionTimeout+3*time.Second)
	if after := allMemberNodes(t, obs); !slices.Equal(before, after) {
		t.Errorf("members changed across the quorum loss: %v, then %v", before, after)
	}
	if n := logs.FilterMessageSnippet("refuses the old session").Len(); n > 0 {
		t.Errorf("the connection was replaced %d times; want the old session kept", n)
	}
	if n := logs.FilterMessageSnippet("opening a fresh connection").Len(); n > 0 {
		t.Errorf("a fresh connection opened %d times across a quorum loss; want none", n)
	}
	// The ensemble came back with its data, at a newer epoch: srvr's
	// zxid is ahead of the members'.
	if n := logs.FilterMessageSnippet("serves without this announcer's members").Len(); n > 0 {
		t.Errorf("the announcer took a quorum loss for lost data %d times", n)
	}
}
