package announcer

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/internal/zktest"
)

// A create whose reply was lost to a dropped connection may have made its
// node. These tests stage exactly that (the node exists, owned by the
// announcer's session, and the announcer only knows it tried) and check that
// reconcile adopts the node instead of creating a second one.
func TestReconcileSettlesCreatesOfUnknownOutcome(t *testing.T) {
	srv := zktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := New(ctx, Config{Ensemble: []string{srv.Addr()}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })

	mine := []byte(`{"serviceEndpoint":{"host":"198.18.0.2","port":1},"additionalEndpoints":{},"status":"ALIVE","shard":0}`)
	other := []byte(`{"serviceEndpoint":{"host":"198.18.0.3","port":1},"additionalEndpoints":{},"status":"ALIVE","shard":1}`)
	tests := []struct {
		name      string
		lost      int  // nodes the lost creates made
		want      bool // does the task still want its member
		wantNodes int
	}{
		{name: "one lost create is adopted", lost: 1, want: true, wantNodes: 1},
		{name: "two lost creates: one adopted, the duplicate deleted", lost: 2, want: true, wantNodes: 1},
		{name: "lost create no longer wanted is deleted", lost: 1, want: false, wantNodes: 0},
		{name: "create that never arrived is created now", lost: 0, want: true, wantNodes: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := "/adopt/" + string(rune('a'+i))
			st := &state{owned: map[slot]owned{}, attempts: map[slot]*attempt{}, parents: map[string]bool{}}
			if err := a.ensurePath(st, p); err != nil {
				t.Fatal(err)
			}
			// Another task's member of the same session at the same path
			// must be left alone.
			if _, err := a.conn().Create(p+"/"+MemberPrefix, other, zk.FlagEphemeral|zk.FlagSequence, a.acl); err != nil {
				t.Fatal(err)
			}
			var made []string
			for range tt.lost {
				n, err := a.conn().Create(p+"/"+MemberPrefix, mine, zk.FlagEphemeral|zk.FlagSequence, a.acl)
				if err != nil {
					t.Fatal(err)
				}
				made = append(made, n)
			}
			sl := slot{path: p, shard: 0}
			st.attempts[sl] = &attempt{session: a.conn().SessionID(), datas: [][]byte{mine}}
			desired := map[slot][]byte{}
			if tt.want {
				desired[sl] = mine
			}
			if err := a.reconcile(st, desired); err != nil {
				t.Fatal(err)
			}
			children, _, err := a.conn().Children(p)
			if err != nil {
				t.Fatal(err)
			}
			var ours int
			for _, c := range children {
				data, _, err := a.conn().Get(p + "/" + c)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) == string(mine) {
					ours++
				}
			}
			if ours != tt.wantNodes || len(children) != tt.wantNodes+1 {
				t.Fatalf("after reconcile: %d of our members, %d children (%v); want %d of ours beside the other task's", ours, len(children), children, tt.wantNodes)
			}
			if tt.want && tt.lost > 0 && st.owned[sl].node != made[0] {
				t.Errorf("adopted %q, want the first lost node %q", st.owned[sl].node, made[0])
			}
			if len(st.attempts) != 0 {
				t.Errorf("attempts left unsettled: %v", st.attempts)
			}
		})
	}
}

func TestDigestACLIsHashed(t *testing.T) {
	cfg, err := ParseAuthConfig([]byte(`{"acl":[{"scheme":"digest","credential":"user:pa:ss","permissions":{"read":true,"delete":true}},{"scheme":"ip","credential":"10.0.0.0/8","permissions":{"read":true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte("user:pa:ss"))
	want := []zk.ACL{
		{Perms: zk.PermRead | zk.PermDelete, Scheme: "digest", ID: "user:" + base64.StdEncoding.EncodeToString(sum[:])},
		{Perms: zk.PermRead, Scheme: "ip", ID: "10.0.0.0/8"},
	}
	got := cfg.zkACL()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("zkACL = %+v, want %+v", got, want)
	}
	var none *AuthConfig
	if acl := none.zkACL(); len(acl) != 1 || acl[0].Scheme != "world" || acl[0].Perms != zk.PermAll {
		t.Fatalf("no auth config: ACL %+v, want open", acl)
	}
}
