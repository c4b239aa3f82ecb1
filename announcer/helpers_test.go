package announcer_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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

var update = flag.Bool("update", false, "rewrite golden files in testdata/serverset")

// sessionTimeout is short so that an outage longer than it is quick to
// stage; ZooKeeper's own minimum (two ticks) is below it.
const sessionTimeout = 2 * time.Second

func newAnnouncer(t testing.TB, srv *zktest.Server, mod func(*announcer.Config)) *announcer.Announcer {
	t.Helper()
	a, _ := newAnnouncerOn(t, []string{srv.Addr()}, mod)
	return a
}

// newAnnouncerOn is newAnnouncer on an ensemble; logs holds its log lines
// of level Info and above (empty for a benchmark).
func newAnnouncerOn(t testing.TB, ensemble []string, mod func(*announcer.Config)) (a *announcer.Announcer, logs *zapobserver.ObservedLogs) {
	t.Helper()
	cfg := announcer.Config{Ensemble: ensemble, SessionTimeout: sessionTimeout, ConnectTimeout: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	core, logs := zapobserver.New(zapcore.InfoLevel)
	log := zap.NewNop() // benchmarks: a line per member would drown the numbers
	if _, bench := t.(*testing.B); !bench {
		log = zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	}
	a, err := announcer.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("announcer.New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a, logs
}

// observer is a second client, as Finagle or Prometheus would be.
func observer(t testing.TB, srv *zktest.Server) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect([]string{srv.Addr()}, 10*time.Second, zk.WithLogger(discard{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(30 * time.Second)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			t.Fatalf("observer: no session with %s", srv.Addr())
		}
	}
	return conn
}

// discard drops the observer's log: go-zookeeper logs from goroutines that
// outlive conn.Close, and t.Log after the test ends panics.
type discard struct{}

func (discard) Printf(string, ...any) {}

// memberNodes lists the member znodes under p (none if p does not exist).
func memberNodes(t testing.TB, conn *zk.Conn, p string) []string {
	t.Helper()
	children, _, err := conn.Children(p)
	if err == zk.ErrNoNode {
		return nil
	}
	if err != nil {
		t.Fatalf("children of %s: %v", p, err)
	}
	var out []string
	for _, c := range children {
		if _, ok := announcer.MemberSequence(c); ok {
			out = append(out, p+"/"+c)
		}
	}
	return out
}

// memberOwners returns, per job path, the member nodes and their owners, as one
// line for failure messages.
func memberOwners(t *testing.T, obs *zk.Conn) (map[string][]int64, string) {
	t.Helper()
	out := map[string][]int64{}
	var state []string
	for _, p := range jobPaths {
		for _, n := range memberNodes(t, obs, p) {
			_, stat, err := obs.Get(n)
			if err == zk.ErrNoNode {
				continue
			}
			if err != nil {
				t.Fatalf("get %s: %v", n, err)
			}
			out[p] = append(out[p], stat.EphemeralOwner)
			state = append(state, fmt.Sprintf("%s owner %#x", n, stat.EphemeralOwner))
		}
	}
	return out, strings.Join(state, "; ")
}

// allMemberNodes lists the member znodes of every job path, in order.
func allMemberNodes(t testing.TB, conn *zk.Conn) []string {
	t.Helper()
	var out []string
	for _, p := range jobPaths {
		out = append(out, memberNodes(t, conn, p)...)
	}
	return out
}

// keepsOldSession checks, for d, that every job path holds exactly one
// member and that session old owns it: past the point where a fresh
// connection would have replaced the old session, nothing did.
func keepsOldSession(t *testing.T, obs *zk.Conn, old int64, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		owners, state := memberOwners(t, obs)
		for _, p := range jobPaths {
			if len(owners[p]) != 1 || owners[p][0] != old {
				t.Fatalf("%s: want exactly one member of session %#x, have %s", p, old, state)
			}
		}
	}
}

// twoNetworks is a task on two CNI networks, with IPv4 and IPv6 on the
// first.
func twoNetworks() announcer.Spec {
	return announcer.Spec{
		Role: "www-data", Environment: "prod", Job: "hello", Shard: 3,
		PrimaryPort: "http",
		Ports:       map[string]int{"http": 31001, "admin": 31002},
		Networks: []announcer.Network{
			{Name: "net-a", Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")}},
			{Name: "net-b", Addrs: []netip.Addr{netip.MustParseAddr("198.19.0.2")}},
		},
	}
}

// golden compares got with testdata/serverset/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(t), "testdata", "serverset", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden file: %v (run go test ./announcer -run %s -update)", err, t.Name())
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("%s differs from golden %s:\ngot  %s\nwant %s", name, p, got, want)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func zapNop() *zap.Logger { return zap.NewNop() }
