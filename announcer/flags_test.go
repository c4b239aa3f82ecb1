package announcer_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/announcer"
)

func TestFlags(t *testing.T) {
	auth := filepath.Join(t.TempDir(), "zkauth.json")
	if err := os.WriteFile(auth, []byte(`{"auth":[{"scheme":"digest","credential":"a:b"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		args        []string
		wantEnabled bool
		check       func(t *testing.T, c announcer.Config)
		wantErr     string
	}{
		{name: "no ensemble: no announcing", args: nil},
		{name: "all flags", args: []string{
			"--announcer-ensemble", "zk1:2181, zk2:2181", "--announcer-serverset-path", "/srv",
			"--announcer-allow-custom-serverset-path", "--announcer-primary-network", "net-b",
			"--announcer-zookeeper-auth-config", auth,
		}, wantEnabled: true, check: func(t *testing.T, c announcer.Config) {
			if !slices.Equal(c.Ensemble, []string{"zk1:2181", "zk2:2181"}) || c.Root != "/srv" || !c.AllowCustomPath ||
				c.PrimaryNetwork != "net-b" || c.Auth == nil || len(c.Auth.Auth) != 1 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "default root", args: []string{"--announcer-ensemble", "zk:2181"}, wantEnabled: true,
			check: func(t *testing.T, c announcer.Config) {
				if c.Root != "/aurora" || c.Auth != nil {
					t.Errorf("config %+v", c)
				}
			}},
		{name: "relative root", args: []string{"--announcer-ensemble", "zk:2181", "--announcer-serverset-path", "aurora"}, wantErr: "absolute"},
		{name: "missing auth file", args: []string{"--announcer-ensemble", "zk:2181", "--announcer-zookeeper-auth-config", "/nonexistent"}, wantErr: "--announcer-zookeeper-auth-config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f announcer.Flags
			fs := flag.NewFlagSet("executor", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.Register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, enabled, err := f.Config()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || enabled != tt.wantEnabled {
				t.Fatalf("Config() enabled=%v err=%v", enabled, err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}
