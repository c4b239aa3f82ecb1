package netdiscover_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/netdiscover"
)

func TestFirst(t *testing.T) {
	nets := []netdiscover.NetworkAddrs{
		{Name: "v6only", Interface: "eth0", Addrs: prefixes("2001:db8::2/64")},
		{Name: "empty", Interface: "eth1"},
		{Name: "dual", Interface: "eth2", Addrs: prefixes("198.18.2.2/24", "198.18.2.3/24", "2001:db8:2::2/64")},
	}
	tests := []struct {
		name string
		nets []netdiscover.NetworkAddrs
		v6   bool
		want string // "" = none
	}{
		{"first IPv4 across networks", nets, false, "198.18.2.2"},
		{"first IPv6 is the first network's", nets, true, "2001:db8::2"},
		{"no networks", nil, false, ""},
		{"no address of the family", nets[:2], false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := netdiscover.First(tt.nets, tt.v6)
			if tt.want == "" {
				if ok {
					t.Errorf("First = %s, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Errorf("First = %s, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestInterfaceName(t *testing.T) {
	for i, want := range []string{"eth0", "eth1", "eth10"} {
		if i == 2 {
			i = 10
		}
		if got := netdiscover.InterfaceName(i); got != want {
			t.Errorf("InterfaceName(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestNetworkErrorText(t *testing.T) {
	tests := []struct {
		err  *netdiscover.NetworkError
		is   error
		want string
	}{{
		err:  &netdiscover.NetworkError{Network: "blue", Interface: "eth1", Err: netdiscover.ErrInterfaceMissing, Found: []string{"lo", "eth0"}},
		is:   netdiscover.ErrInterfaceMissing,
		want: `network "blue": interface eth1 not found; interfaces present: lo, eth0;`,
	}, {
		err:  &netdiscover.NetworkError{Network: "blue", Interface: "eth0", Err: netdiscover.ErrNoAddress},
		is:   netdiscover.ErrNoAddress,
		want: `network "blue": interface eth0 has no usable address; addresses present: none;`,
	}}
	for _, tt := range tests {
		if got := tt.err.Error(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("Error() = %q, want it to start %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.is) {
			t.Errorf("%v is not %v", tt.err, tt.is)
		}
	}
}

// prefixes parses s; none gives nil, as netdiscover reports no address.
func prefixes(s ...string) []netip.Prefix {
	if len(s) == 0 {
		return nil
	}
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}
