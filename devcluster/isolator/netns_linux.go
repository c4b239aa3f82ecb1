package isolator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps named namespaces, so operators (and the
// test suite's leak check, `ip netns list`) see the containers'.
const netnsDir = "/var/run/netns"

// netnsName names a container's namespace "dewar-c-<id prefix>-<random>":
// the prefix helps an operator match it to a container, the random part keeps
// two agents (or test runs) with similar IDs apart.
func netnsName(containerID string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return netnsPrefix(containerID) + hex.EncodeToString(b[:])
}

func netnsPrefix(containerID string) string {
	short := containerID
	if len(short) > 8 {
		short = short[:8]
	}
	return "dewar-c-" + short + "-"
}

// createNetNS creates a network namespace and pins it with a bind mount at
// /var/run/netns/<name>, as `ip netns add` does.
//
// The unshare happens on a locked thread that switches back to its original
// namespace before it is handed back to the Go scheduler. Just exiting the
// locked goroutine is not enough: the runtime cannot end the process' main
// thread, parks it instead, and a parked main thread left in the container's
// namespace would keep that namespace (and its veth, holding an address
// host-local has already released) alive forever. If the switch back fails,
// the thread stays locked and is discarded (or parked) with the error.
func createNetNS(name string) (string, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", netnsDir, err)
	}
	path := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("create network namespace file: %w", err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // unchanged thread
			errc <- fmt.Errorf("unshare(CLONE_NEWNET) (needs CAP_SYS_ADMIN): %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		mountErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(mountErr, fmt.Errorf("return to the original network namespace: %w", err))
			return // stays locked: the thread is in the container's namespace
		}
		runtime.UnlockOSThread()
		if mountErr != nil {
			errc <- fmt.Errorf("bind mount network namespace to %s: %w", path, mountErr)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return "", errors.Join(err, removeNetNS(path))
	}
	return path, nil
}

// removeNetNS unpins and removes a namespace created by createNetNS. A
// namespace already gone is not an error.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// netnsExists reports whether path is a pinned network namespace.
func netnsExists(path string) bool {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return false
	}
	defer h.Close()
	var st unix.Statfs_t
	// An unmounted leftover file is on the tmpfs, a pinned one on nsfs.
	return unix.Fstatfs(int(h), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// setLoopbackUp brings up lo in the namespace at path: a new namespace's
// loopback is down, and tasks expect to reach themselves on 127.0.0.1.
func setLoopbackUp(path string) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", path, err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in namespace %s: %w", path, err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in namespace %s: %w", path, err)
	}
	return nil
}
