package netdiscover

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Rules that no veth in a test namespace can show on demand (a DAD
// failure needs a duplicate that answers) are checked on the parsed
// netlink message.
func TestClassify(t *testing.T) {
	addr := func(cidr string, scope, flags int) netlink.Addr {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return netlink.Addr{IPNet: n, Scope: scope, Flags: flags}
	}
	tests := []struct {
		name string
		addr netlink.Addr
		want verdict
		why  string
	}{
		{"global IPv4", addr("198.18.0.2/24", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_PERMANENT), usable, ""},
		{"global IPv6", addr("2001:db8::2/64", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_PERMANENT), usable, ""},
		{"IPv4 in 4-in-6 form", netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.18.0.2"), Mask: net.CIDRMask(24, 32)}}, usable, ""},
		{"loopback", addr("127.0.0.1/8", unix.RT_SCOPE_HOST, 0), unusable, "loopback"},
		{"IPv6 loopback", addr("::1/128", unix.RT_SCOPE_HOST, 0), unusable, "loopback"},
		{"link-local with global scope", addr("169.254.1.1/16", unix.RT_SCOPE_UNIVERSE, 0), unusable, "link-local"},
		{"IPv6 link-local, tentative", addr("fe80::1/64", unix.RT_SCOPE_LINK, unix.IFA_F_TENTATIVE), unusable, "link-local"},
		{"host scope", addr("198.18.0.9/32", unix.RT_SCOPE_HOST, 0), unusable, "scope host"},
		{"site scope", addr("2001:db8::9/64", unix.RT_SCOPE_SITE, 0), unusable, "scope site"},
		{"tentative", addr("2001:db8::2/64", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_TENTATIVE), pending, "tentative"},
		{"optimistic is still tentative", addr("2001:db8::2/64", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_TENTATIVE|unix.IFA_F_OPTIMISTIC), pending, "tentative"},
		{"DAD failed (stays tentative too)", addr("2001:db8::2/64", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED), unusable, "dadfailed"},
		{"deprecated", addr("2001:db8::2/64", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_DEPRECATED), unusable, "deprecated"},
		{"secondary IPv4", addr("198.18.0.3/24", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_SECONDARY), usable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, v, why := classify(tt.addr)
			if v != tt.want || why != tt.why {
				t.Errorf("classify(%s) = %v %q, want %v %q", p, v, why, tt.want, tt.why)
			}
			if !p.IsValid() || !p.Addr().Is4() && !p.Addr().Is6() || p.Addr().Is4In6() {
				t.Errorf("classify gave prefix %v", p)
			}
		})
	}
}

func TestRetryDump(t *testing.T) {
	t.Run("interrupted then whole", func(t *testing.T) {
		calls := 0
		got, err := retryDump("test", func() (int, error) {
			calls++
			if calls < 3 {
				return -1, netlink.ErrDumpInterrupted
			}
			return 42, nil
		})
		if err != nil || got != 42 || calls != 3 {
			t.Errorf("retryDump = %d, %v after %d calls; want 42 after 3", got, err, calls)
		}
	})
	t.Run("always interrupted", func(t *testing.T) {
		calls := 0
		_, err := retryDump("test", func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted })
		if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != maxDumpAttempts {
			t.Errorf("retryDump = %v after %d calls; want ErrDumpInterrupted after %d", err, calls, maxDumpAttempts)
		}
	})
	t.Run("other errors are not retried", func(t *testing.T) {
		calls := 0
		_, err := retryDump("test", func() (int, error) { calls++; return 0, unix.EPERM })
		if !errors.Is(err, unix.EPERM) || calls != 1 {
			t.Errorf("retryDump = %v after %d calls; want EPERM after 1", err, calls)
		}
	})
}
