package announcer

import (
	"strings"
	"testing"
)

// FuzzParseAuthConfig: an --announcer-zookeeper-auth-config file in
// Aurora's schema (docs/operations/security.md, "ZooKeeper Authentication
// Configuration") parses to a config or an error, never a panic; what
// parses yields an ACL that grants something on every entry, with digest
// credentials hashed (user:base64(sha1)), never passed on in the clear.
func FuzzParseAuthConfig(f *testing.F) {
	f.Add([]byte(`{"auth":[{"scheme":"digest","credential":"user:pass"}],"acl":[{"scheme":"digest","credential":"user:pass","permissions":{"read":true,"write":true,"create":true,"delete":true,"admin":true}},{"scheme":"world","credential":"anyone","permissions":{"read":true}}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"acl":[{"scheme":"digest","credential":"a:b:c","permissions":{"admin":true}}]}`))
	f.Add([]byte(`{"auth":[],"acl":[{"scheme":"ip","credential":"198.18.0.0/15","permissions":{"read":true}}]} {"acl":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseAuthConfig(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("a config and an error: %v", err)
			}
			return
		}
		acl := cfg.zkACL()
		if len(acl) == 0 {
			t.Fatal("a parsed config yields an empty ACL: the znodes would be unreadable")
		}
		for i, a := range acl {
			if a.Perms == 0 {
				t.Fatalf("ACL entry %d grants nothing: %+v", i, a)
			}
		}
		for i, a := range cfg.ACL {
			if a.Scheme != "digest" {
				continue
			}
			if a.Credential == acl[i].ID || !strings.HasPrefix(acl[i].ID, strings.SplitN(a.Credential, ":", 2)[0]+":") {
				t.Fatalf("digest credential %q became ID %q: want user:hash", a.Credential, acl[i].ID)
			}
		}
	})
}
