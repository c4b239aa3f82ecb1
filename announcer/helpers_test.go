package announcer_test

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

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
	cfg := announcer.Config{Ensemble: []string{srv.Addr()}, SessionTimeout: sessionTimeout, ConnectTimeout: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := zap.NewNop() // benchmarks: a line per member would drown the numbers
	if _, bench := t.(*testing.B); !bench {
		log = zaptest.NewLogger(t)
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
	return a
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
