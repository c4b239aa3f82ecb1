package isolator

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types020 "github.com/containernetworking/cni/pkg/types/020"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/internal/testenv"
)

func strp(s string) *string { return &s }

// fakePluginDir holds empty files named like plugins: loading only checks
// that a plugin exists, it never runs one.
func fakePluginDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	confA = `{"cniVersion":"0.2.0","name":"a","type":"bridge","ipam":{"type":"host-local","subnet":"198.18.1.0/24"}}`
	confB = `{"cniVersion":"0.2.0","name":"b","type":"bridge","ipam":{"type":"host-local","subnet":"198.18.2.0/24"}}`
)

func TestNewLoadsConfigs(t *testing.T) {
	plugins := fakePluginDir(t, "bridge", "host-local")
	tests := []struct {
		name      string
		files     map[string]string
		want      []string
		wantErrIn []string // substrings of the error; nil means success
	}{
		{
			name:  "single configs and a conflist, other files ignored",
			files: map[string]string{"a.conf": confA, "b.json": confB, "c.conflist": `{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"bridge"}]}`, "README.md": "not a config"},
			want:  []string{"a", "b", "c"},
		},
		{
			name:      "duplicate network name names both files",
			files:     map[string]string{"1.conf": confA, "2.conf": confA},
			wantErrIn: []string{"2.conf", `network "a" is already defined in`, "1.conf"},
		},
		{
			name:      "invalid JSON names the file",
			files:     map[string]string{"bad.conf": `{"name":`},
			wantErrIn: []string{"bad.conf", "not valid JSON"},
		},
		{
			name:      "missing name",
			files:     map[string]string{"noname.conf": `{"cniVersion":"0.2.0","type":"bridge"}`},
			wantErrIn: []string{"noname.conf", `no "name"`},
		},
		{
			name:      "missing plugin",
			files:     map[string]string{"m.conf": `{"cniVersion":"0.2.0","name":"m","type":"macvlan"}`},
			wantErrIn: []string{"m.conf", `CNI plugin "macvlan"`, plugins},
		},
		{
			name:      "missing IPAM plugin",
			files:     map[string]string{"i.conf": `{"cniVersion":"0.2.0","name":"i","type":"bridge","ipam":{"type":"dhcp"}}`},
			wantErrIn: []string{"i.conf", `CNI plugin "dhcp"`},
		},
		{
			name:      "args reserved for Mesos",
			files:     map[string]string{"r.conf": `{"cniVersion":"0.2.0","name":"r","type":"bridge","args":{"org.apache.mesos":{}}}`},
			wantErrIn: []string{"r.conf", `"org.apache.mesos"`, "reserved"},
		},
		{
			name:      "conflist without plugins",
			files:     map[string]string{"e.conflist": `{"cniVersion":"1.0.0","name":"e"}`},
			wantErrIn: []string{"e.conflist", `"plugins"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iso, err := New(Config{ConfigDir: writeFiles(t, tt.files), PluginDirs: []string{plugins}, StateDir: t.TempDir(), Log: zaptest.NewLogger(t)})
			if tt.wantErrIn != nil {
				if err == nil {
					t.Fatalf("New succeeded with networks %v; want an error", iso.Networks())
				}
				for _, s := range tt.wantErrIn {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := iso.Networks(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Networks() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewMissingConfigDir(t *testing.T) {
	_, err := New(Config{ConfigDir: filepath.Join(t.TempDir(), "nope"), StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "--network-cni-config-dir") {
		t.Fatalf("err = %v, want one naming the flag", err)
	}
}

func TestTestdataConfigsLoad(t *testing.T) {
	iso, err := New(Config{
		ConfigDir:  filepath.Join(testenv.RepoRoot(t), "testdata", "cni"),
		PluginDirs: []string{fakePluginDir(t, "bridge", "host-local")},
		StateDir:   t.TempDir(),
		Log:        zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dewar-dual", "dewar-net1", "dewar-net2", "dewar-net4"}
	if got := iso.Networks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Networks() = %v, want %v", got, want)
	}
	for _, name := range []string{"dewar-net1", "dewar-net2", "dewar-dual"} {
		if v := iso.nets[name].list.CNIVersion; v != "0.2.0" {
			t.Errorf("%s: cniVersion %q, want 0.2.0 as the Mesos isolator reads", name, v)
		}
	}
}

func TestUnknownNetworkIsRefusedBeforeAnythingIsCreated(t *testing.T) {
	plugins := fakePluginDir(t, "bridge", "host-local")
	state := t.TempDir()
	iso, err := New(Config{ConfigDir: writeFiles(t, map[string]string{"a.conf": confA, "b.conf": confB}), PluginDirs: []string{plugins}, StateDir: state, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = iso.plan([]mesos.NetworkInfo{{Name: strp("a")}, {Name: strp("x")}})
	if want := `unknown CNI network "x"; known networks: a, b`; err == nil || err.Error() != want {
		t.Fatalf("plan error = %v, want %q", err, want)
	}
	_, err = iso.plan([]mesos.NetworkInfo{{Name: strp("a")}, {Name: strp("a")}})
	if err == nil || !strings.Contains(err.Error(), `"a" is joined twice`) {
		t.Fatalf("plan error = %v, want a duplicate-network error", err)
	}
}

func TestPlanNamesInterfacesLikeMesos(t *testing.T) {
	iso, err := New(Config{ConfigDir: writeFiles(t, map[string]string{"a.conf": confA, "b.conf": confB}), PluginDirs: []string{fakePluginDir(t, "bridge", "host-local")}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// An unnamed NetworkInfo means the host network: skipped, no ethN.
	atts, err := iso.plan([]mesos.NetworkInfo{{Name: strp("b")}, {}, {Name: strp("a")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range atts {
		got = append(got, a.net.name+"="+a.ifName)
	}
	if want := []string{"b=eth0", "a=eth1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("interfaces %v, want %v", got, want)
	}
}

func TestMesosJSON(t *testing.T) {
	tests := []struct {
		name string
		in   mesos.NetworkInfo
		want string
	}{
		{"name only", mesos.NetworkInfo{Name: strp("net1")}, `{"name":"net1"}`},
		{
			"labels, one without value",
			mesos.NetworkInfo{Name: strp("net1"), Labels: &mesos.Labels{Labels: []mesos.Label{{Key: "rack", Value: strp("r1")}, {Key: "flag"}}}},
			`{"name":"net1","labels":{"labels":[{"key":"rack","value":"r1"},{"key":"flag"}]}}`,
		},
		{
			"every field",
			mesos.NetworkInfo{
				Name:         strp("n"),
				Groups:       []string{"g"},
				IPAddresses:  []mesos.NetworkInfo_IPAddress{{Protocol: mesos.IPv6.Enum()}, {IPAddress: strp("198.18.1.9")}},
				PortMappings: []mesos.NetworkInfo_PortMapping{{HostPort: 31000, ContainerPort: 80, Protocol: strp("tcp")}},
			},
			`{"name":"n","groups":["g"],"ip_addresses":[{"protocol":"IPv6"},{"ip_address":"198.18.1.9"}],"port_mappings":[{"host_port":31000,"container_port":80,"protocol":"tcp"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(mesosJSON(&tt.in))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, []byte(tt.want))
		})
	}
}

func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON = %s\nwant  %s", got, want)
	}
}

func mustIPNet(t *testing.T, s string) *net.IPNet {
	t.Helper()
	n, err := types.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIPAddressesFromEveryResultVersion(t *testing.T) {
	v4, v6 := mustIPNet(t, "198.18.1.5/24"), mustIPNet(t, "2001:db8:1::5/64")
	tests := []struct {
		name string
		res  types.Result
	}{
		{"0.2.0 ip4 and ip6", &types020.Result{CNIVersion: "0.2.0", IP4: &types020.IPConfig{IP: *v4}, IP6: &types020.IPConfig{IP: *v6}}},
		{"0.4.0, IPv6 listed first", &types040.Result{CNIVersion: "0.4.0", IPs: []*types040.IPConfig{{Address: *v6}, {Address: *v4}}}},
		{"1.0.0", &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{{Address: *v4}, {Address: *v6}}}},
	}
	want := []string{"IPv4 198.18.1.5", "IPv6 2001:db8:1::5"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ips, err := ipAddresses(tt.res)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range ips {
				got = append(got, a.GetProtocol().String()+" "+a.GetIPAddress())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("addresses %v, want %v (IPv4 first, no prefix length)", got, want)
			}
		})
	}
}

func TestMergeNetworkInfos(t *testing.T) {
	exec := []mesos.NetworkInfo{{Name: strp("net1"), IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: mesos.IPv4.Enum(), IPAddress: strp("198.18.1.5")}}}}
	agent := []*mesos.NetworkInfo{{Name: strp("net1"), Labels: &mesos.Labels{Labels: []mesos.Label{{Key: "k", Value: strp("v")}}}, IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: mesos.IPv4.Enum(), IPAddress: strp("198.18.1.5")}}}}
	tests := []struct {
		name     string
		exec     []mesos.NetworkInfo
		agent    []*mesos.NetworkInfo
		agentIP  string
		wantJSON string
	}{
		{"executor's first, agent's appended", exec, agent, "127.0.0.1",
			`[{"name":"net1","ip_addresses":[{"protocol":"IPv4","ip_address":"198.18.1.5"}]},{"name":"net1","labels":{"labels":[{"key":"k","value":"v"}]},"ip_addresses":[{"protocol":"IPv4","ip_address":"198.18.1.5"}]}]`},
		{"agent only", nil, agent, "127.0.0.1",
			`[{"name":"net1","labels":{"labels":[{"key":"k","value":"v"}]},"ip_addresses":[{"protocol":"IPv4","ip_address":"198.18.1.5"}]}]`},
		{"neither: the agent's IP", nil, nil, "127.0.0.1", `[{"ip_addresses":[{"ip_address":"127.0.0.1"}]}]`},
		{"neither and no agent IP", nil, nil, "", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeNetworkInfos(tt.exec, tt.agent, tt.agentIP)
			js := make([]any, 0, len(got))
			for i := range got {
				js = append(js, mesosJSON(&got[i]))
			}
			b, _ := json.Marshal(js)
			assertSameJSON(t, b, []byte(tt.wantJSON))
		})
	}
	// The result shares nothing with the inputs.
	got := MergeNetworkInfos(nil, agent, "")
	got[0].Labels.Labels[0].Key = "changed"
	if agent[0].Labels.Labels[0].Key != "k" {
		t.Error("MergeNetworkInfos returned labels shared with its input")
	}
}

func TestWrap(t *testing.T) {
	c := &Container{NetNSPath: "/var/run/netns/dewar-c-x"}
	got := c.Wrap([]string{"/bin/executor", "-v"})
	want := []string{"nsenter", "--net=/var/run/netns/dewar-c-x", "--", "/bin/executor", "-v"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Wrap = %v, want %v", got, want)
	}
	host := &Container{}
	if got := host.Wrap([]string{"a"}); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("host network Wrap = %v, want argv unchanged", got)
	}
}

func TestInvalidContainerID(t *testing.T) {
	for _, id := range []string{"", "../x", "a/b", ".hidden", "a b"} {
		if err := validContainerID(id); err == nil {
			t.Errorf("container ID %q accepted", id)
		}
	}
	if err := validContainerID("3f9a1c2e-0b1d-4e5f-9a8b-7c6d5e4f3a2b"); err != nil {
		t.Errorf("a UUID was refused: %v", err)
	}
}
