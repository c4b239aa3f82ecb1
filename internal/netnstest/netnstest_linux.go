package netnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/testenv"
)

// Prefix starts the name of every namespace New creates.
const Prefix = "dewar-t-"

// New creates a fresh named network namespace with its loopback interface
// up, and returns its name and an open handle to it. Both are released in
// t.Cleanup: the handle is closed and the name deleted (the kernel frees
// the namespace once no process, socket or handle uses it any more).
func New(t testing.TB) (name string, handle netns.NsHandle) {
	t.Helper()
	testenv.NeedRoot(t)
	ip := ipBinary(t)
	name = Prefix + testenv.RandomHex(4)
	// `ip netns add` rather than netns.NewNamed: it also makes /run/netns a
	// shared mount, so the name is visible from the mount namespaces that
	// `ip netns exec` creates and from CNI plugins.
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	// Registered after the delete, so it runs before it.
	t.Cleanup(func() { _ = h.Close() })

	// A new namespace's loopback is down; the Mesos isolator brings it up
	// in every container, and tests run servers on it.
	nh, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in netns %s: %v", name, err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err == nil {
		err = nh.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("bring lo up in netns %s: %v", name, err)
	}
	return name, h
}

// Do runs fn inside the named namespace and fails the test if fn (or
// entering and leaving the namespace) fails. See Run.
func Do(t testing.TB, name string, fn func() error) {
	t.Helper()
	if err := Run(name, fn); err != nil {
		t.Fatalf("in netns %s: %v", name, err)
	}
}

// Run runs fn on an OS thread locked to the named namespace and returns its
// error. Only that thread is inside: goroutines fn starts run elsewhere, in
// the caller's namespace. fn runs on a goroutine of its own, so a thread
// whose namespace cannot be restored is never given back to the Go
// scheduler; it ends with that goroutine. A panic in fn becomes an error.
func Run(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- runLocked(name, fn)
	}()
	return <-errc
}

// runLocked must run on a locked thread; it unlocks it only once the
// thread is back in its original namespace.
func runLocked(name string, fn func() error) (err error) {
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	defer func() {
		if rerr := netns.Set(orig); rerr != nil {
			err = errors.Join(err, fmt.Errorf("return to the original netns: %w", rerr))
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

// Exec runs argv inside the named namespace (`ip netns exec`), waits for it
// and returns its combined output; it fails the test when the command
// fails. The command is killed when the test ends.
func Exec(t testing.TB, name string, argv ...string) string {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("netnstest.Exec: no command")
	}
	cmd := Command(t.Context(), name, argv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in netns %s: %s: %v\n%s", name, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Command prepares argv to run inside the named namespace through
// `ip netns exec`, which execs argv in place: the process's PID is the
// command's own, so a test can stop it by cmd.Process. The caller starts it
// and waits for it (register the kill and wait in t.Cleanup).
func Command(ctx context.Context, name string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", name}, argv...)...)
}

func ipBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ip")
	if err != nil {
		testenv.Missing(t, "iproute2's ip command not on PATH (Debian package iproute2; run `make deps`)")
	}
	return p
}

// DialIn returns a dialer whose connections are made from inside the
// network namespace name: a socket stays in the namespace it was made in,
// so the caller's thread can go back to its own.
func DialIn(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := Run(name, func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// ChangeAddr adds addr to (add) or removes it from the link named link
// inside namespace name, and returns the time just before the kernel was
// asked: what a test measures the reaction to the change from.
func ChangeAddr(t testing.TB, name, link string, addr netlink.Addr, add bool) time.Time {
	t.Helper()
	var t0 time.Time
	Do(t, name, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(link)
		if err != nil {
			return err
		}
		t0 = time.Now()
		if add {
			return h.AddrAdd(l, &addr)
		}
		return h.AddrDel(l, &addr)
	})
	return t0
}
