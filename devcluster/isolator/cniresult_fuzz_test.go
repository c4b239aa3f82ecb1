package isolator

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// resultExec is a CNI plugin that prints a given result.
type resultExec struct{ out []byte }

func (r resultExec) ExecPlugin(context.Context, string, []byte, []string) ([]byte, error) {
	return r.out, nil
}
func (resultExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}
func (resultExec) Decode([]byte) (version.PluginInfo, error) { return version.All, nil }

var _ invoke.Exec = resultExec{}

// FuzzCNIResult feeds arbitrary plugin output, under a network config of
// any cniVersion, through the path a result takes in the isolator: libcni
// decodes it (invoke.ExecPluginWithResult, as AddNetworkList does) and
// ipAddresses turns it into NetworkInfo addresses. Nothing panics; every
// address is a bare IP of the protocol it is reported with, IPv4 first.
//
// The seeds in testdata/fuzz/FuzzCNIResult are real results of the bridge
// plugin (containernetworking/plugins v1.9.0, host-local IPAM, dual stack)
// for cniVersion 0.2.0 (the format a Mesos agent reads), 0.3.1, 0.4.0,
// 1.0.0 and 1.1.0.
func FuzzCNIResult(f *testing.F) {
	f.Add("0.2.0", []byte(`{"cniVersion":"0.2.0","ip4":{"ip":"198.18.9.2/24"},"ip6":{"ip":"2001:db8:9::2/64"}}`))
	f.Add("1.0.0", []byte(`{"cniVersion":"1.0.0","ips":[{"address":"2001:db8::5/64"},{"address":"198.18.9.5/24","interface":7}]}`))
	f.Add("0.4.0", []byte(`{"ips":[{"version":"4","address":"198.18.9.5/24"}]}`))
	f.Add("1.0.0", []byte(`null`))
	f.Fuzz(func(t *testing.T, confVersion string, out []byte) {
		netconf := fmt.Appendf(nil, `{"cniVersion":%q,"name":"n","type":"bridge"}`, confVersion)
		res, err := invoke.ExecPluginWithResult(context.Background(), "/fake/bridge", netconf, &invoke.Args{Command: "ADD"}, resultExec{out})
		if err != nil {
			return
		}
		ips, err := ipAddresses(res)
		if err != nil {
			return
		}
		sawV6 := false
		for _, a := range ips {
			addr, perr := netip.ParseAddr(a.GetIPAddress())
			if perr != nil {
				t.Fatalf("address %q is not a bare IP: %v", a.GetIPAddress(), perr)
			}
			want := mesos.IPv4
			if !addr.Is4() {
				want, sawV6 = mesos.IPv6, true
			} else if sawV6 {
				t.Fatalf("IPv4 address %s after an IPv6 one: %v", addr, ips)
			}
			if a.GetProtocol() != want {
				t.Fatalf("%s reported as %s", addr, a.GetProtocol())
			}
		}
	})
}
