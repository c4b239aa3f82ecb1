package netnstest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

func TestNamespaceLifecycle(t *testing.T) {
	testenv.NeedRoot(t)
	var name string
	t.Run("inside", func(t *testing.T) {
		var h netns.NsHandle
		name, h = netnstest.New(t)
		if !strings.HasPrefix(name, netnstest.Prefix) {
			t.Errorf("name %q lacks prefix %q", name, netnstest.Prefix)
		}
		if !h.IsOpen() {
			t.Fatal("handle not open")
		}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
			t.Fatalf("namespace not in /run/netns: %v", err)
		}

		netnstest.Do(t, name, func() error {
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dewar-veth0"}, PeerName: "dewar-veth1"})
		})
		if _, err := netlink.LinkByName("dewar-veth0"); err == nil {
			t.Fatal("veth created by Do leaked into the test's own namespace")
		}
		out := netnstest.Exec(t, name, "ip", "-o", "link", "show")
		if !strings.Contains(out, "dewar-veth0") {
			t.Errorf("ip link inside the namespace lacks dewar-veth0:\n%s", out)
		}
		if !strings.Contains(out, "lo: <LOOPBACK,UP") {
			t.Errorf("loopback is not up:\n%s", out)
		}
	})
	if _, err := os.Stat(filepath.Join("/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s left after its test ended (stat: %v)", name, err)
	}
}

func TestRunReturnsErrorsAndPanics(t *testing.T) {
	name, _ := netnstest.New(t)
	want := errors.New("boom")
	if err := netnstest.Run(name, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Run = %v, want %v", err, want)
	}
	if err := netnstest.Run(name, func() error { panic("kaboom") }); err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Errorf("Run after panic = %v, want an error naming the panic", err)
	}
	if err := netnstest.Run("dewar-t-does-not-exist", func() error { return nil }); err == nil {
		t.Error("Run in a missing namespace succeeded")
	}
}
