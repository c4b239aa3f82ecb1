package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

const job = "/aurora/www-data/prod/hello"

func spec() announcer.Spec {
	return announcer.Spec{
		Role: "www-data", Environment: "prod", Job: "hello", Shard: 3,
		Ports: map[string]int{"http": 31001},
		Networks: []announcer.Network{
			{Name: "net-a", Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")}},
			{Name: "net-b", Addrs: []netip.Addr{netip.MustParseAddr("198.19.0.2")}},
		},
	}
}

// serverset starts ZooKeeper with our member under job, plus a malformed
// member and a child that is not a member, as another tool might leave.
func serverset(t *testing.T) (*zktest.Server, *announcer.Announcer) {
	t.Helper()
	srv := zktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := announcer.New(ctx, announcer.Config{Ensemble: []string{srv.Addr()}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if err := a.Join(ctx, spec()); err != nil {
		t.Fatal(err)
	}
	conn, _, err := zk.Connect([]string{srv.Addr()}, 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create(job+"/member_", []byte("not json"), zk.FlagSequence, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create(job+"/config", []byte("{}"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	return srv, a
}

func TestLs(t *testing.T) {
	srv, _ := serverset(t)
	var out, errb bytes.Buffer
	// Flags after PATH work too.
	if code := run(context.Background(), []string{"ls", job, "--zk", srv.Addr()}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || lines[0] != job+": 2 members" {
		t.Fatalf("output:\n%s", out.String())
	}
	want := "member_0000000000 shard=3 status=ALIVE service=198.18.0.2:31001 aurora=198.18.0.2:31001 http=198.18.0.2:31001" +
		" addresses.net-a=198.18.0.2,2001:db8::2 addresses.net-b=198.19.0.2 network=net-a"
	if lines[1] != want {
		t.Errorf("member line:\n got %s\nwant %s", lines[1], want)
	}
	if !strings.HasPrefix(lines[2], `member_0000000001 error="member is not a JSON object`) {
		t.Errorf("malformed member line: %s", lines[2])
	}
}

func TestLsJSONBinary(t *testing.T) {
	srv, _ := serverset(t)
	bin := testenv.Binary(t, "dewar-serverset")
	out, err := exec.Command(bin, "ls", "--zk", srv.Addr(), "--json", job+"@net-b").Output()
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	var got jsonListing
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	if len(got.Members) != 1 || got.Members[0].Member == nil || got.Members[0].Member.ServiceEndpoint.Host != "198.19.0.2" {
		t.Fatalf("listing %s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"rm", "/x"}, {"ls", "/x"}, {"ls", "--zk", "h:1"}, {"ls", "--zk", "h:1", "/a", "/b"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage:") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

func TestWatch(t *testing.T) {
	srv, a := serverset(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"watch", "--zk", srv.Addr(), job + "@net-a"}, &out, &errb) }()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("watch never printed %q; output:\n%s\nstderr: %s", want, out.String(), errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("service=198.18.0.2:31001")
	nets := spec().Networks
	nets[0].Addrs = []netip.Addr{netip.MustParseAddr("198.18.0.7")}
	if err := a.UpdateNetworks(ctx, nets); err != nil {
		t.Fatal(err)
	}
	waitOutput("service=198.18.0.7:31001") // data set in place is seen
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitOutput(job + "@net-a: 0 members")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("watch exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop when its context ended")
	}
}
