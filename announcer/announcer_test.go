package announcer_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

const job = "/aurora/www-data/prod/hello"

var jobPaths = []string{job, job + "@net-a", job + "@net-b"}

func TestJoinTwoNetworks(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	obs := observer(t, srv)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	for _, p := range jobPaths {
		nodes := memberNodes(t, obs, p)
		if len(nodes) != 1 {
			t.Fatalf("%s has members %v, want exactly one", p, nodes)
		}
		data, stat, err := obs.Get(nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		if stat.EphemeralOwner != a.SessionID() {
			t.Errorf("%s: EphemeralOwner %#x, announcer session %#x", nodes[0], stat.EphemeralOwner, a.SessionID())
		}
		golden(t, "two-networks/"+filepath.Base(p)+".json", data)
		m, err := announcer.ParseMember(data)
		if err != nil {
			t.Fatalf("our own member does not parse: %v", err)
		}
		if *m.Shard != 3 || m.ServiceEndpoint.Port != 31001 || m.AdditionalEndpoints["admin"].Port != 31002 {
			t.Errorf("%s: member %+v", p, m)
		}
	}
	// Join is idempotent: the same task joining again changes nothing.
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	for _, p := range jobPaths {
		if n := memberNodes(t, obs, p); len(n) != 1 {
			t.Fatalf("after second Join %s has %v", p, n)
		}
	}
}

func TestHostNetworking(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, func(c *announcer.Config) { c.Root = "/services" })
	obs := observer(t, srv)
	s := announcer.Spec{Role: "r", Environment: "devel", Job: "j", Shard: 0, Hostname: "agent-1.example.com",
		Ports: map[string]int{"http": 8080}}
	if err := a.Join(ctxT(t), s); err != nil {
		t.Fatal(err)
	}
	nodes := memberNodes(t, obs, "/services/r/devel/j")
	if len(nodes) != 1 {
		t.Fatalf("members %v", nodes)
	}
	data, _, err := obs.Get(nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "host-networking.json", data)
}

// watchCounts records the most members ever seen at once on each path,
// polling until stop is closed.
func watchCounts(t *testing.T, obs *zk.Conn, paths []string) (maxSeen func() map[string]int, stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	var result atomic.Pointer[map[string]int]
	go func() {
		defer close(finished)
		seen := map[string]int{}
		for {
			for _, p := range paths {
				children, _, err := obs.Children(p)
				if err != nil {
					continue
				}
				n := 0
				for _, c := range children {
					if _, ok := announcer.MemberSequence(c); ok {
						n++
					}
				}
				seen[p] = max(seen[p], n)
			}
			cp := map[string]int{}
			for k, v := range seen {
				cp[k] = v
			}
			result.Store(&cp)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			close(done)
			<-finished
		}
	}
	t.Cleanup(stop)
	return func() map[string]int { return *result.Load() }, stop
}

func TestSessionExpiryRecreatesMembers(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	obs := observer(t, srv)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	maxSeen, stop := watchCounts(t, obs, jobPaths)
	for round := 0; round < 2; round++ {
		old := a.SessionID()
		if err := srv.ExpireSession(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		expired := time.Now()
		// go-zookeeper learns of the expiry when it reconnects and then
		// opens a new session; its reconnect pacing is not ours to test.
		testenv.WaitUntilState(t, 30*time.Second, "new session after expiry", func() (bool, string) {
			id := a.SessionID()
			return id != 0 && id != old, fmt.Sprintf("session %#x", id)
		})
		newSession := time.Now()
		// The server deleted the members with the old session; they must
		// be back, owned by the new one, within 5s of it.
		testenv.WaitUntilState(t, 5*time.Second, "members re-created in the new session", func() (bool, string) {
			var state []string
			for _, p := range jobPaths {
				nodes := memberNodes(t, obs, p)
				if len(nodes) != 1 {
					return false, fmt.Sprintf("%s: %v", p, nodes)
				}
				_, stat, err := obs.Get(nodes[0])
				if err != nil || stat.EphemeralOwner == old {
					return false, fmt.Sprintf("%s: owner of old session or %v", p, err)
				}
				state = append(state, nodes[0])
			}
			return true, strings.Join(state, " ")
		})
		t.Logf("round %d: new session %v after expiry, members back %v later", round, newSession.Sub(expired), time.Since(newSession))
	}
	stop()
	for p, n := range maxSeen() {
		if n > 1 {
			t.Errorf("%s had %d members at once; want never more than one per task", p, n)
		}
	}
}

func TestZooKeeperRestart(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// An outage longer than the session timeout: whether the server, once
	// back, lets the old session resume or expires it, members must return.
	time.Sleep(sessionTimeout + time.Second)
	srv.Restart()
	obs := observer(t, srv)
	testenv.WaitUntilState(t, 30*time.Second, "members back after restart", func() (bool, string) {
		for _, p := range jobPaths {
			if n := memberNodes(t, obs, p); len(n) != 1 {
				return false, fmt.Sprintf("%s: %v", p, n)
			}
		}
		return true, ""
	})
	// Changes still work on the new connection.
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestLeaveRemovesMembers(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	obs := observer(t, srv)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Leave returned: the members are gone for every other client now.
	for _, p := range jobPaths {
		if n := memberNodes(t, obs, p); len(n) != 0 {
			t.Errorf("%s still has %v after Leave", p, n)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctxT(t), twoNetworks()); !errors.Is(err, announcer.ErrClosed) {
		t.Fatalf("Join after Close = %v, want ErrClosed", err)
	}
}

func TestUpdateNetworksSetsDataInPlace(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	obs := observer(t, srv)
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	before := memberNodes(t, obs, job+"@net-a")
	nets := twoNetworks().Networks
	nets[0].Addrs = []netip.Addr{netip.MustParseAddr("198.18.0.9")}
	nets = nets[:1] // net-b went away
	if err := a.UpdateNetworks(ctxT(t), nets); err != nil {
		t.Fatal(err)
	}
	after := memberNodes(t, obs, job+"@net-a")
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("member of net-a was replaced (%v -> %v), want data set in place", before, after)
	}
	data, stat, err := obs.Get(after[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := announcer.ParseMember(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ServiceEndpoint.Host != "198.18.0.9" || stat.Version != 1 {
		t.Errorf("after update: host %s, version %d", m.ServiceEndpoint.Host, stat.Version)
	}
	if _, ok := m.Metadata["addresses.net-b"]; ok {
		t.Errorf("metadata still lists the network that went away: %v", m.Metadata)
	}
	if n := memberNodes(t, obs, job+"@net-b"); len(n) != 0 {
		t.Errorf("member of removed network net-b still there: %v", n)
	}
	// A primary network the update lacks is refused, and nothing changes.
	strict := newAnnouncer(t, srv, func(c *announcer.Config) { c.PrimaryNetwork = "net-b" })
	if err := strict.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	if err := strict.UpdateNetworks(ctxT(t), nets); err == nil || !strings.Contains(err.Error(), `primary network "net-b"`) {
		t.Fatalf("UpdateNetworks without the primary network = %v", err)
	}
}

func TestJoinRefusesBadSpecs(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, nil)
	custom := twoNetworks()
	custom.CustomPath = "/custom/path"
	if err := a.Join(ctxT(t), custom); !errors.Is(err, announcer.ErrCustomPathNotAllowed) {
		t.Errorf("custom path without the flag: %v", err)
	}
	slash := twoNetworks()
	slash.Job = "a/b"
	if err := a.Join(ctxT(t), slash); err == nil {
		t.Error("job name with a slash accepted")
	}

	allowed := newAnnouncer(t, srv, func(c *announcer.Config) { c.AllowCustomPath = true })
	if err := allowed.Join(ctxT(t), custom); err != nil {
		t.Fatal(err)
	}
	obs := observer(t, srv)
	for _, p := range []string{"/custom/path", "/custom/path@net-a", "/custom/path@net-b"} {
		if n := memberNodes(t, obs, p); len(n) != 1 {
			t.Errorf("%s: %v", p, n)
		}
	}
}

func TestNewUnreachableEnsembleNamesIt(t *testing.T) {
	srv := zktest.Start(t)
	addr := srv.Addr()
	srv.Stop()
	start := time.Now()
	_, err := announcer.New(ctxT(t), announcer.Config{Ensemble: []string{addr}, ConnectTimeout: time.Second}, zapNop())
	if !errors.Is(err, announcer.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("New = %v, want ErrUnreachable naming %s", err, addr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %v with a 1s connect timeout", d)
	}
}

func TestAuthOthersReadOnly(t *testing.T) {
	srv := zktest.Start(t)
	p := filepath.Join(t.TempDir(), "zkauth.json")
	conf := `{"auth":[{"scheme":"digest","credential":"announcer:s3cret"}],
	 "acl":[{"scheme":"digest","credential":"announcer:s3cret","permissions":{"read":true,"write":true,"create":true,"delete":true,"admin":true}},
	        {"scheme":"world","credential":"anyone","permissions":{"read":true}}]}`
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := announcer.LoadAuthConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	a := newAnnouncer(t, srv, func(c *announcer.Config) { c.Auth = auth })
	if err := a.Join(ctxT(t), twoNetworks()); err != nil {
		t.Fatal(err)
	}
	other := observer(t, srv)
	if err := other.AddAuth("digest", []byte("intruder:guess")); err != nil {
		t.Fatal(err)
	}
	for _, p := range jobPaths {
		nodes := memberNodes(t, other, p)
		if len(nodes) != 1 {
			t.Fatalf("%s: %v", p, nodes)
		}
		if _, _, err := other.Get(nodes[0]); err != nil {
			t.Errorf("another identity cannot read %s: %v", nodes[0], err)
		}
		if _, err := other.Set(nodes[0], []byte("{}"), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("Set by another identity = %v, want ErrNoAuth", err)
		}
		if err := other.Delete(nodes[0], -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("Delete by another identity = %v, want ErrNoAuth", err)
		}
		// The parents the announcer created are protected too.
		if _, err := other.Create(p+"/member_", []byte("{}"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("Create under %s by another identity = %v, want ErrNoAuth", p, err)
		}
	}
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatalf("owner cannot withdraw: %v", err)
	}
}
