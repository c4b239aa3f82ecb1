package scheduler

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/testenv"
)

func loadJob(t *testing.T, name string) (*aurora.MesosJob, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "jobs", name))
	if err != nil {
		t.Fatal(err)
	}
	job, err := aurora.ParseJob(data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return job, data
}

func TestPolicyCheck(t *testing.T) {
	cni, _ := loadJob(t, "web_cni.json")
	host, _ := loadJob(t, "web_host.json")
	forbidden, _ := loadJob(t, "web_forbidden.json")
	tests := []struct {
		name    string
		policy  Policy
		job     *aurora.MesosJob
		wantErr error
		wantMsg []string // substrings the operator must read
	}{
		{"host networking needs no CNI", Policy{}, host, nil, nil},
		{"host networking with CNI on", Policy{EnableCNI: true, AllowedNetworks: []string{"blue"}}, host, nil, nil},
		{"networks with CNI off", Policy{AllowedNetworks: []string{"blue", "green"}}, cni, ErrCNIDisabled,
			[]string{"--enable-cni", "blue,green", "root/devel/hello"}},
		{"all networks allowed", Policy{EnableCNI: true, AllowedNetworks: []string{"green", "blue"}}, cni, nil, nil},
		{"one network not allowed", Policy{EnableCNI: true, AllowedNetworks: []string{"blue", "green"}}, forbidden, ErrNetworkNotAllowed,
			[]string{`"red"`, "allowed networks: blue, green", "--allowed-networks"}},
		{"nothing allowed", Policy{EnableCNI: true}, cni, ErrNetworkNotAllowed,
			[]string{`"blue"`, "allowed networks: none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.job)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Check() = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestPolicyRejectsMalformedNetworks(t *testing.T) {
	job, _ := loadJob(t, "web_cni.json")
	p := Policy{EnableCNI: true, AllowedNetworks: []string{"blue", "green"}}
	tests := []struct {
		name     string
		networks []aurora.Network
		want     string
	}{
		{"unnamed", []aurora.Network{{Name: ""}}, "without a name"},
		{"twice", []aurora.Network{{Name: "blue"}, {Name: "blue"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := *job
			j.Networks = tt.networks
			if err := p.Check(&j); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestPortNames(t *testing.T) {
	tests := []struct {
		name string
		job  aurora.MesosJob
		want []string
	}{
		{"cmdline references", aurora.MesosJob{Task: aurora.Task{Processes: []aurora.Process{
			{Cmdline: "serve --a {{thermos.ports[http]}} --b {{ thermos.ports[admin] }} {{thermos.ports[http]}}"},
		}}}, []string{"admin", "http"}},
		{"announce primary and portmap names, not numbers", aurora.MesosJob{
			Announce: &aurora.Announcer{PrimaryPort: "thrift", Portmap: map[string]string{"aurora": "{{primary_port}}", "web": "http", "static": "8080"}},
		}, []string{"http", "thrift"}},
		{"shell health check", aurora.MesosJob{HealthCheckConfig: aurora.HealthCheckConfig{HealthChecker: aurora.HealthChecker{
			Shell: &aurora.ShellHealthChecker{ShellCommand: "curl localhost:{{thermos.ports[health]}}"},
		}}}, []string{"health"}},
		{"none", aurora.MesosJob{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PortNames(&tt.job); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("PortNames() = %v, want %v", got, tt.want)
			}
		})
	}
}
