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
// A serving server's zxid is kept: it tells whether the ensemble has the
// announcer's members.
func TestParseSrvr(t *testing.T) {
	stats := "Zookeeper version: 3.8.0-debian, built on 2022-11-02 15:04 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x200000004\nMode: %s\nNode count: 5\n"
	const zxid = 0x200000004
	for _, tc := range []struct {
		name, answer string
		want         srvrAnswer
	}{
		{"leader", strings.Replace(stats, "%s", "leader", 1), srvrAnswer{servingYes, zxid, true}},
		{"follower", strings.Replace(stats, "%s", "follower", 1), srvrAnswer{servingYes, zxid, false}},
		{"observer", strings.Replace(stats, "%s", "observer", 1), srvrAnswer{servingYes, zxid, false}},
		{"standalone", strings.Replace(stats, "%s", "standalone", 1), srvrAnswer{servingYes, zxid, true}},
		{"serving, no zxid said", "Zookeeper version: 3.8.0\nMode: leader\n", srvrAnswer{servingYes, noZxid, true}},
		{"serving, garbled zxid", "Zxid: 0xnope\nMode: follower\n", srvrAnswer{servingYes, noZxid, false}},
		{"read-only", strings.Replace(stats, "%s", "read-only", 1), srvrAnswer{serving: servingNo, zxid: noZxid}},
		{"no quorum", "This ZooKeeper instance is not currently serving requests\n", srvrAnswer{serving: servingNo, zxid: noZxid}},
		{"not whitelisted", "srvr is not executed because it is not in the whitelist.\n", srvrAnswer{serving: servingUnknown, zxid: noZxid}},
		{"closed without a word", "", srvrAnswer{serving: servingDown, zxid: noZxid}},
		{"cut short", "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\n", srvrAnswer{serving: servingUnknown, zxid: noZxid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseSrvr(strings.NewReader(tc.answer)); got != tc.want {
				t.Errorf("parseSrvr(%q) = %+v, want %+v", tc.answer, got, tc.want)
			}
		})
	}
}

// An ensemble lacks the announcer's members only when its leader, or a
// majority of its servers, serves and says a zxid older than the members'.
// Only an older epoch (the zxid's high 32 bits) tells lost data for
// certain: servers that lack the members in the same epoch might merely lag
// for a moment.
func TestEnsembleLacks(t *testing.T) {
	const seen = 0x300000010
	for _, tc := range []struct {
		name            string
		v               ensembleView
		n               int
		seen            int64
		lacks, oldEpoch bool
	}{
		{"majority serves, all older: wiped", ensembleView{serving: 2, withZxid: 2, newest: 0x100000003, leader: noZxid}, 3, seen, true, true},
		{"one of the majority has it", ensembleView{serving: 2, withZxid: 2, newest: seen, leader: noZxid}, 3, seen, false, false},
		{"newer epoch: an election since", ensembleView{serving: 3, withZxid: 3, newest: 0x400000000, leader: 0x400000000}, 3, seen, false, false},
		{"same epoch, behind", ensembleView{serving: 3, withZxid: 3, newest: 0x30000000f, leader: 0x30000000f}, 3, seen, true, false},
		{"majority without a leader's answer, older epoch", ensembleView{serving: 2, withZxid: 2, newest: 0x200000009, leader: noZxid}, 3, seen, true, true},
		{"only a minority serves", ensembleView{serving: 1, notServing: 2, withZxid: 1, newest: 0x100000003, leader: noZxid}, 3, seen, false, false},
		{"the leader alone answers, older: wiped", ensembleView{serving: 1, withZxid: 1, newest: 0x100000003, leader: 0x100000003}, 3, seen, true, true},
		{"the leader alone answers, has it", ensembleView{serving: 1, withZxid: 1, newest: seen + 1, leader: seen + 1}, 3, seen, false, false},
		{"majority serves but one said no zxid", ensembleView{serving: 2, withZxid: 1, newest: 0x100000003, leader: noZxid}, 3, seen, false, false},
		{"nothing seen yet", ensembleView{serving: 3, withZxid: 3, newest: 0x100000003, leader: 0x100000003}, 3, 0, false, false},
		{"standalone, wiped, same epoch 0", ensembleView{serving: 1, withZxid: 1, newest: 0x2, leader: 0x2}, 1, 0x8, true, false},
		{"empty database says 0", ensembleView{serving: 3, withZxid: 3, newest: 0, leader: 0}, 3, seen, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.lacks(tc.n, tc.seen); got != tc.lacks {
				t.Errorf("%+v.lacks(%d, %#x) = %v, want %v", tc.v, tc.n, tc.seen, got, tc.lacks)
			}
			if got := tc.v.lostEpoch(tc.n, tc.seen); got != tc.oldEpoch {
				t.Errorf("%+v.lostEpoch(%d, %#x) = %v, want %v", tc.v, tc.n, tc.seen, got, tc.oldEpoch)
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
	if got := askSrvr(ctx, srv.Addr()); got.serving != servingYes || got.zxid == noZxid {
		t.Errorf("srvr of a standalone server: %+v, want %v with its zxid", got, servingYes)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if got, want := askSrvr(ctx, closed), (srvrAnswer{serving: servingDown, zxid: noZxid}); got != want {
		t.Errorf("srvr of a port nobody listens on: %v, want %v", got, want)
	}
	if v := askEnsemble(ctx, []string{closed, srv.Addr()}, false); v.serving != 1 || v.quorum(2) || !v.quorum(1) {
		t.Errorf("one server down, one serving: %+v, want 1 serving: a majority of 1, not of 2", v)
	}
	three := []string{srv.Addr(), srv.Addr(), srv.Addr()}
	if v := askEnsemble(ctx, three, true); v.serving != 2 {
		t.Errorf("a majority of three asked: %d answers, want 2", v.serving)
	}
	if v := askEnsemble(ctx, []string{closed, closed, srv.Addr()}, false); v.serving != 1 {
		t.Errorf("two of three down: %+v, want the third asked too", v)
	}
	if v := askEnsemble(ctx, []string{closed}, false); v != (ensembleView{newest: noZxid, leader: noZxid}) {
		t.Errorf("no server listening: %+v, want no answer", v)
	}
}
