package announcer_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/announcer"
)

func TestResolveEndpoints(t *testing.T) {
	tests := []struct {
		name           string
		primary        string
		portmap        map[string]string
		allocated      map[string]int
		wantPrimary    int
		wantAdditional map[string]int
		wantUnresolved []string
		wantErr        string // substring; "" = success
	}{{
		name:           "default portmap aliases aurora to the primary port",
		primary:        "http",
		allocated:      map[string]int{"http": 31001, "admin": 31002},
		wantPrimary:    31001,
		wantAdditional: map[string]int{"http": 31001, "admin": 31002, "aurora": 31001},
	}, {
		name:           "empty primary port means http",
		portmap:        map[string]string{},
		allocated:      map[string]int{"http": 8080},
		wantPrimary:    8080,
		wantAdditional: map[string]int{"http": 8080},
	}, {
		name:           "alias chain and static port",
		primary:        "thrift",
		portmap:        map[string]string{"thrift": "rpc", "rpc": "service", "legacy": "9090"},
		allocated:      map[string]int{"service": 31005},
		wantPrimary:    31005,
		wantAdditional: map[string]int{"thrift": 31005, "rpc": 31005, "service": 31005, "legacy": 9090},
	}, {
		name:           "allocated port wins over an alias of the same name",
		primary:        "http",
		portmap:        map[string]string{"http": "admin"},
		allocated:      map[string]int{"http": 31001, "admin": 31002},
		wantPrimary:    31001,
		wantAdditional: map[string]int{"http": 31001, "admin": 31002},
	}, {
		name:           "primary port may be static",
		primary:        "web",
		portmap:        map[string]string{"web": "80"},
		allocated:      map[string]int{},
		wantPrimary:    80,
		wantAdditional: map[string]int{"web": 80},
	}, {
		name:           "alias to an unallocated port is dropped, as Thermos",
		primary:        "http",
		portmap:        map[string]string{"aurora": "http", "debug": "pprof"},
		allocated:      map[string]int{"http": 31001},
		wantPrimary:    31001,
		wantAdditional: map[string]int{"http": 31001, "aurora": 31001},
		wantUnresolved: []string{"debug"},
	}, {
		// Thermos announces port 0 (announcer.py, make_endpoints).
		name:           "unallocated primary port is port 0",
		primary:        "http",
		allocated:      map[string]int{"admin": 31002},
		wantPrimary:    0,
		wantAdditional: map[string]int{"admin": 31002},
		wantUnresolved: []string{"aurora"},
	}, {
		name:      "cycle",
		primary:   "a",
		portmap:   map[string]string{"a": "b", "b": "a"},
		allocated: map[string]int{},
		wantErr:   "cycle",
	}, {
		name:      "static port out of range",
		primary:   "http",
		portmap:   map[string]string{"x": "70000"},
		allocated: map[string]int{"http": 1},
		wantErr:   "outside 1-65535",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := announcer.ResolveEndpoints(tt.primary, tt.portmap, tt.allocated)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Primary != tt.wantPrimary {
				t.Errorf("Primary = %d, want %d", got.Primary, tt.wantPrimary)
			}
			if !maps.Equal(got.Additional, tt.wantAdditional) {
				t.Errorf("Additional = %v, want %v", got.Additional, tt.wantAdditional)
			}
			if !slices.Equal(got.Unresolved, tt.wantUnresolved) {
				t.Errorf("Unresolved = %v, want %v", got.Unresolved, tt.wantUnresolved)
			}
		})
	}
}

// TestResolveEndpointsPrimaryPortNotAllocated: Thermos announces port 0
// (announcer.py, make_endpoints); the reason comes back for a warning.
func TestResolveEndpointsPrimaryPortNotAllocated(t *testing.T) {
	res, err := announcer.ResolveEndpoints("health", nil, map[string]int{"http": 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Primary != 0 || !errors.Is(res.PrimaryMissing, announcer.ErrPrimaryPortNotAllocated) || res.Additional["http"] != 1 {
		t.Fatalf("%+v, want primary port 0, PrimaryMissing and http=1", res)
	}
}

// TestParseEnsemble: a chroot after the last host, as in ZooKeeper
// connect strings, which kazoo (Thermos' announcer) honours; a host without
// a port gets 2181, as in kazoo and go-zookeeper.
func TestParseEnsemble(t *testing.T) {
	for _, tc := range []struct {
		in     string
		hosts  []string
		chroot string
		bad    bool
	}{
		{"zk1:2181", []string{"zk1:2181"}, "", false},
		{"zk1:2181,zk2:2181", []string{"zk1:2181", "zk2:2181"}, "", false},
		{"zk1:2181,zk2:2181/chroot", []string{"zk1:2181", "zk2:2181"}, "/chroot", false},
		{"zk1:2181/a/b/", []string{"zk1:2181"}, "/a/b", false},
		{"zk1:2181/", []string{"zk1:2181"}, "", false},
		{"/chroot", nil, "", true},
		{"zk1,zk2:2182/c", []string{"zk1:2181", "zk2:2182"}, "/c", false},
		{"[2001:db8::1],[2001:db8::2]:2182", []string{"[2001:db8::1]:2181", "[2001:db8::2]:2182"}, "", false},
		{"2001:db8::1", nil, "", true},
	} {
		hosts, chroot, err := announcer.ParseEnsemble(tc.in)
		if (err != nil) != tc.bad || !slices.Equal(hosts, tc.hosts) || chroot != tc.chroot {
			t.Errorf("ParseEnsemble(%q) = %q, %q, %v; want %q, %q, error %t", tc.in, hosts, chroot, err, tc.hosts, tc.chroot, tc.bad)
		}
	}
}
