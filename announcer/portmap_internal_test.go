package announcer

import (
	"net/netip"
	"testing"
)

// With Mesos' port-mapper plugin a NetworkInfo carries port_mappings
// (host_port → container_port): the per-network serverset announces what a
// peer on that network dials, the classic one what the rest of the world
// can reach (issue 9, point 5).
func TestPortMappingsDecideWhatEachServersetAnnounces(t *testing.T) {
	spec := func(mappings map[int]int) Spec {
		return Spec{
			Role: "www-data", Environment: "prod", Job: "hello", Shard: 0,
			PrimaryPort: "http",
			Ports:       map[string]int{"http": 31001, "admin": 31002},
			Hostname:    "agent.example",
			Networks: []Network{
				{Name: "blue", Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2")}, PortMappings: mappings},
				{Name: "red", Addrs: []netip.Addr{netip.MustParseAddr("198.19.0.2")}},
			},
		}
	}
	type ep struct {
		host        string
		http, admin int
	}
	for _, tc := range []struct {
		name     string
		mappings map[int]int
		want     map[string]ep
	}{
		{
			name: "no mappings: container addresses and allocated ports everywhere",
			want: map[string]ep{
				"/aurora/www-data/prod/hello":      {"198.18.0.2", 31001, 31002},
				"/aurora/www-data/prod/hello@blue": {"198.18.0.2", 31001, 31002},
				"/aurora/www-data/prod/hello@red":  {"198.19.0.2", 31001, 31002},
			},
		},
		{
			name:     "primary network maps http to 8080: classic member is the host's port, blue's the container's",
			mappings: map[int]int{31001: 8080},
			want: map[string]ep{
				"/aurora/www-data/prod/hello":      {"agent.example", 31001, 31002},
				"/aurora/www-data/prod/hello@blue": {"198.18.0.2", 8080, 31002},
				"/aurora/www-data/prod/hello@red":  {"198.19.0.2", 31001, 31002},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := spec(tc.mappings).members(Config{Root: DefaultRoot})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(tc.want) {
				t.Fatalf("members at %d paths, want %d: %v", len(out), len(tc.want), out)
			}
			for p, w := range tc.want {
				m, err := ParseMember(out[p])
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				got := ep{m.ServiceEndpoint.Host, m.AdditionalEndpoints["http"].Port, m.AdditionalEndpoints["admin"].Port}
				if got != w || m.ServiceEndpoint.Port != w.http {
					t.Errorf("%s: serviceEndpoint %s:%d, http %d, admin %d; want %s:%d, %d, %d", p,
						m.ServiceEndpoint.Host, m.ServiceEndpoint.Port, got.http, got.admin, w.host, w.http, w.http, w.admin)
				}
			}
		})
	}
}
