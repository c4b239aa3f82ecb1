package announcer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/announcer"
)

func TestLoadAuthConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "aurora example", json: `{"auth":[{"scheme":"digest","credential":"user:pass"}],"acl":[{"scheme":"digest","credential":"user:pass","permissions":{"read":true,"write":true,"create":true,"delete":true,"admin":true}},{"scheme":"world","credential":"anyone","permissions":{"read":true}}]}`},
		{name: "empty object means open ACL", json: `{}`},
		{name: "not json", json: `auth`, wantErr: "not Aurora's zkauth JSON"},
		{name: "unknown field", json: `{"acls":[]}`, wantErr: `unknown field "acls"`},
		{name: "missing credential", json: `{"auth":[{"scheme":"digest"}]}`, wantErr: "auth[0]: scheme and credential are required"},
		{name: "digest without password", json: `{"acl":[{"scheme":"digest","credential":"user","permissions":{"read":true}}]}`, wantErr: `acl[0]: digest credential must be "user:password"`},
		{name: "no permission", json: `{"acl":[{"scheme":"world","credential":"anyone","permissions":{}}]}`, wantErr: "acl[0]: grants no permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "zkauth.json")
			if err := os.WriteFile(p, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := announcer.LoadAuthConfig(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil || cfg == nil {
				t.Fatalf("LoadAuthConfig = %v, %v", cfg, err)
			}
		})
	}
	if _, err := announcer.LoadAuthConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file: no error")
	}
}
