package announcer_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// A quorum lost for longer than the session timeout looks, from the client,
// like a wiped ensemble: the server left alone accepts the connection and
// closes it at the handshake. The announcer opens a fresh connection then,
// but once quorum is back the old session resumes (a new leader gives every
// session a fresh timeout) and must be kept: same session, same members.
func TestQuorumLossKeepsSession(t *testing.T) {
	ens := zktest.StartEnsemble(t)
	core, logs := zapobserver.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := announcer.New(ctx, announcer.Config{Ensemble: ens.Addrs(), SessionTimeout: sessionTimeout, ConnectTimeout: 30 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
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
	// The fault: the remaining server refuses the handshake for longer
	// than the session timeout (plus go-zookeeper's reconnect pacing).
	testenv.WaitUntilState(t, 30*time.Second, "a fresh connection opened", func() (bool, string) {
		n := logs.FilterMessageSnippet("opening a fresh connection").Len()
		return n > 0, fmt.Sprintf("%d log lines", logs.Len())
	})
	for _, i := range down {
		ens.Server(i).Start()
	}
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntilState(t, 30*time.Second, "fresh connection closed, old session kept", func() (bool, string) {
		n := logs.FilterMessageSnippet("closing the fresh connection").Len()
		return n > 0 && a.SessionID() == old, fmt.Sprintf("session %#x (old %#x)", a.SessionID(), old)
	})
	// Past the point where the fresh connection would have replaced the
	// old one: the members stay those of the old session.
	keepsOldSession(t, obs, old, sessionTimeout+3*time.Second)
	if after := allMemberNodes(t, obs); !slices.Equal(before, after) {
		t.Errorf("members changed across the quorum loss: %v, then %v", before, after)
	}
	if n := logs.FilterMessageSnippet("refuses the old session").Len(); n > 0 {
		t.Errorf("the connection was replaced %d times; want the old session kept", n)
	}
}
