package isolator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// netSpec describes a test network: a bridge (or the recorder in front of
// one) with host-local IPAM, leases kept in the test's temp dir.
type netSpec struct {
	name, bridge string
	subnets      []string // one host-local range each
	cniVersion   string   // "0.2.0" unless set
	conflist     bool
	recordFile   string // set: the recorder plugin delegates to bridge
	badIPAM      bool   // an IPAM config host-local rejects, so ADD fails
}

// newNet fills in random network and bridge names ("dewar-b-" + 6 hex is
// 14 characters, within IFNAMSIZ).
func newNet(t testing.TB, subnets ...string) netSpec {
	return netSpec{name: "dewar-n-" + randHex(t, 3), bridge: "dewar-b-" + randHex(t, 3), subnets: subnets}
}

func (s netSpec) write(t testing.TB, dir, dataDir string) {
	t.Helper()
	version := s.cniVersion
	if version == "" {
		version = "0.2.0"
	}
	var ranges []any
	for _, sub := range s.subnets {
		ranges = append(ranges, []any{map[string]any{"subnet": sub}})
	}
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  ranges,
		"routes":  []any{map[string]any{"dst": "198.18.0.0/15"}, map[string]any{"dst": "2001:db8::/32"}},
		"dataDir": dataDir,
	}
	if s.badIPAM {
		ipam["ranges"] = []any{[]any{map[string]any{"subnet": "not-a-subnet"}}}
	}
	plugin := map[string]any{"type": "bridge", "bridge": s.bridge, "isGateway": true, "ipMasq": false, "ipam": ipam}
	if s.recordFile != "" {
		plugin["type"], plugin["delegate"], plugin["recordFile"] = recorderType, "bridge", s.recordFile
	}
	conf := map[string]any{"cniVersion": version, "name": s.name}
	file := filepath.Join(dir, s.name+".conf")
	if s.conflist {
		conf["plugins"] = []any{plugin}
		file = filepath.Join(dir, s.name+".conflist")
	} else {
		for k, v := range plugin {
			conf[k] = v
		}
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rig is one test's node: a network namespace that plays the agent's host,
// with an isolator whose plugins run there.
type rig struct {
	t        testing.TB
	node     string // netns name
	nodeNS   netns.NsHandle
	cfg      Config
	iso      *Isolator
	leaseDir string
}

func newRig(t testing.TB, nets ...netSpec) *rig {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Missing(t, "nsenter not on PATH (Debian package util-linux)")
	}
	pluginDir := testenv.CNIPluginDir(t)
	r := &rig{t: t, leaseDir: t.TempDir()}
	r.node, r.nodeNS = netnstest.New(t)
	confDir := t.TempDir()
	for _, n := range nets {
		n.write(t, confDir, r.leaseDir)
	}
	r.cfg = Config{ConfigDir: confDir, PluginDirs: []string{pluginDir}, StateDir: t.TempDir(), Log: zaptest.NewLogger(t)}
	if slices.ContainsFunc(nets, func(n netSpec) bool { return n.recordFile != "" }) {
		r.cfg.PluginDirs = append([]string{recorderDir(t)}, r.cfg.PluginDirs...)
	}
	r.iso = r.newIsolator()
	return r
}

func (r *rig) newIsolator() *Isolator {
	r.t.Helper()
	iso, err := New(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return iso
}

// inNode runs fn on a thread inside the node namespace: plugins the
// isolator execs from there create their bridges and veths in the node.
func (r *rig) inNode(fn func() error) error {
	return netnstest.Run(r.node, fn)
}

// prepare runs Prepare in the node and registers a Cleanup (in the node) for
// the end of the test, also when it fails.
func (r *rig) prepare(iso *Isolator, id string, nis ...mesos.NetworkInfo) (*Container, error) {
	r.t.Helper()
	var c *Container
	err := r.inNode(func() (err error) {
		c, err = iso.Prepare(context.Background(), id, nis)
		return err
	})
	r.t.Cleanup(func() {
		if err := r.cleanup(r.iso, id); err != nil {
			r.t.Errorf("cleanup of %s: %v", id, err)
		}
	})
	return c, err
}

func (r *rig) mustPrepare(id string, nis ...mesos.NetworkInfo) *Container {
	r.t.Helper()
	c, err := r.prepare(r.iso, id, nis...)
	if err != nil {
		r.t.Fatalf("Prepare(%s): %v", id, err)
	}
	return c
}

func (r *rig) cleanup(iso *Isolator, id string) error {
	return r.inNode(func() error { return iso.Cleanup(context.Background(), id) })
}

func (r *rig) nodeLinks() []netlink.Link {
	r.t.Helper()
	h, err := netlink.NewHandleAt(r.nodeNS)
	if err != nil {
		r.t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		r.t.Fatal(err)
	}
	return links
}

func (r *rig) nodeVeths() []string {
	var out []string
	for _, l := range r.nodeLinks() {
		if l.Type() == "veth" {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// assertGone checks that nothing of the container is left in the node.
func (r *rig) assertGone(c *Container) {
	r.t.Helper()
	if _, err := os.Stat(c.NetNSPath); !errors.Is(err, os.ErrNotExist) {
		r.t.Errorf("network namespace %s still exists (stat: %v)", c.NetNSPath, err)
	}
	if v := r.nodeVeths(); len(v) > 0 {
		r.t.Errorf("veths left in the node namespace: %v", v)
	}
	if st, err := readState(r.cfg.StateDir, c.ID); err != nil || st != nil {
		r.t.Errorf("state of %s left behind: %+v, %v", c.ID, st, err)
	}
}

// leases lists host-local's reserved addresses in the test's lease dir.
func (r *rig) leases() []string {
	r.t.Helper()
	var out []string
	_ = filepath.WalkDir(r.leaseDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && net.ParseIP(d.Name()) != nil {
			out = append(out, d.Name())
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// ifaceAddrs returns the global addresses of each interface in the
// namespace at path, as "ip" strings, keyed by interface name.
func ifaceAddrs(t *testing.T, path string) map[string][]string {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open container netns: %v", err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range links {
		addrs, err := nl.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, a := range addrs {
			if a.Scope == unix.RT_SCOPE_UNIVERSE {
				ips = append(ips, a.IP.String())
			}
		}
		sort.Strings(ips)
		out[l.Attrs().Name] = ips
		if l.Attrs().Name == "lo" && l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("lo is down in %s", path)
		}
	}
	return out
}

func infoIPs(ni *mesos.NetworkInfo) []string {
	var out []string
	for _, a := range ni.IPAddresses {
		out = append(out, a.GetIPAddress())
	}
	sort.Strings(out)
	return out
}

// listenIn opens a TCP listener inside the namespace at path on ip, port 0,
// accepting (and closing) connections until the test ends. A socket keeps
// the namespace it was made in, so the accept loop can run anywhere.
func listenIn(t *testing.T, path, ip string) string {
	t.Helper()
	var ln net.Listener
	if err := runInNetNS(path, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0"))
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", ip, path, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// dialFrom connects from inside the namespace at path.
func dialFrom(path, addr string, timeout time.Duration) error {
	return runInNetNS(path, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// runInNetNS is netnstest.Run for a namespace given by path (the
// containers' live in /var/run/netns too, so the name works).
func runInNetNS(path string, fn func() error) error {
	return netnstest.Run(filepath.Base(path), fn)
}

// setForwarding sets net.ipv4.ip_forward in the node namespace (sysctls under
// /proc/sys/net belong to the namespace of the thread that opens them) and
// reads it back.
func (r *rig) setForwarding(on bool) {
	r.t.Helper()
	want := "0"
	if on {
		want = "1"
	}
	err := r.inNode(func() error {
		const f = "/proc/sys/net/ipv4/ip_forward"
		if err := os.WriteFile(f, []byte(want), 0o644); err != nil {
			return err
		}
		got, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(got)); s != want {
			return fmt.Errorf("ip_forward is %s after writing %s", s, want)
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("set ip_forward=%s in the node: %v", want, err)
	}
}

// recorderDir is the directory of the recording CNI plugin
// (internal/testprog/cnirecorder, plugin type recorderType).
func recorderDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(testenv.Program(t, "cnirecorder"))
}

// recorderType is the recording plugin's binary name, its CNI "type".
const recorderType = testenv.TestProgramPrefix + "cnirecorder"
