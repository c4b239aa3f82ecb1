package announcer

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/zktest"
)

// What ZooKeeper 3.8 answers to srvr (StatCommand), and what the announcer
// makes of it: only a serving server may lead to a fresh connection, and
// an answer that says nothing leaves the decision to the refusals alone.
func TestParseSrvr(t *testing.T) {
	stats := "Zookeeper version: 3.8.0-debian, built on 2022-11-02 15:04 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x200000004\nMode: %s\nNode count: 5\n"
	for _, tc := range []struct {
		name, answer string
		want         serving
	}{
		{"leader", strings.Replace(stats, "%s", "leader", 1), servingYes},
		{"follower", strings.Replace(stats, "%s", "follower", 1), servingYes},
		{"observer", strings.Replace(stats, "%s", "observer", 1), servingYes},
		{"standalone", strings.Replace(stats, "%s", "standalone", 1), servingYes},
		{"read-only", strings.Replace(stats, "%s", "read-only", 1), servingNo},
		{"no quorum", "This ZooKeeper instance is not currently serving requests\n", servingNo},
		{"not whitelisted", "srvr is not executed because it is not in the whitelist.\n", servingUnknown},
		{"closed without a word", "", servingDown},
		{"cut short", "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\n", servingUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseSrvr(strings.NewReader(tc.answer)); got != tc.want {
				t.Errorf("parseSrvr(%q) = %v, want %v", tc.answer, got, tc.want)
			}
		})
	}
}

// A real server answers srvr as parseSrvr expects; a port nobody listens
// on is down.
func TestAskSrvrRealServer(t *testing.T) {
	srv := zktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got := askSrvr(ctx, srv.Addr()); got != servingYes {
		t.Errorf("srvr of a standalone server: %v, want %v", got, servingYes)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if got, want := askSrvr(ctx, closed), servingDown; got != want {
		t.Errorf("srvr of a port nobody listens on: %v, want %v", got, want)
	}
	if v := askEnsemble(ctx, []string{closed, srv.Addr()}); v.serving != 1 || v.quorum(2) || !v.quorum(1) {
		t.Errorf("one server down, one serving: %+v, want 1 serving: a majority of 1, not of 2", v)
	}
	if v := askEnsemble(ctx, []string{closed}); v != (ensembleView{}) {
		t.Errorf("no server listening: %+v, want no answer", v)
	}
}
