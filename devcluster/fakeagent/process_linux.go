package fakeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// reaped maps the pid of every executor this process started to a channel
// closed when it has been waited for. The reaper goroutine belongs to the
// process, not to an Agent: a stopped Agent leaves its executors running,
// and a new Agent in the same process (tests) must still learn of their end.
var reaped sync.Map // int → chan struct{}

func reapedChan(pid int) <-chan struct{} {
	if ch, ok := reaped.Load(pid); ok {
		return ch.(chan struct{})
	}
	return nil
}

// pidfdOpen is unix.PidfdOpen; tests replace it to take the fallback.
var pidfdOpen = unix.PidfdOpen

// pollInterval is how often the fallback looks for the process.
const pollInterval = 200 * time.Millisecond

// waitExit blocks until the process pid, which started at start, has
// ended (true), or ctx is done (false). It serves executors recovered
// after a restart, which are not this process' children and so cannot be
// waited for: it polls a pidfd (pidfd_open(2), Linux 5.3), which becomes
// readable when the process exits. Only a kernel without pidfd_open
// (ENOSYS) makes it look at /proc every pollInterval instead, and it logs
// that once.
func waitExit(ctx context.Context, pid int, start uint64, log *zap.Logger) bool {
	fd, err := pidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return true
	case errors.Is(err, unix.ENOSYS):
		log.Info("pidfd_open is not supported by this kernel (ENOSYS); polling the recovered executor for its exit", zap.Int("pid", pid), zap.Duration("interval", pollInterval))
		return pollExit(ctx, pid, start)
	case err != nil:
		// EMFILE and the like: the executor must still be watched.
		log.Warn("pidfd_open failed; polling the recovered executor for its exit", zap.Int("pid", pid), zap.Duration("interval", pollInterval), zap.Error(err))
		return pollExit(ctx, pid, start)
	}
	defer unix.Close(fd)
	// The pidfd is of whatever had pid when it was opened. If our executor
	// still has pid now, it had it then (one pid, one process at a time),
	// so the pidfd is the executor's; if not, the executor is gone.
	if !processAlive(pid, start) {
		return true
	}
	exited, err := waitReadable(ctx, fd)
	if err != nil {
		log.Warn("waiting on the executor's pidfd failed; polling for its exit", zap.Int("pid", pid), zap.Error(err))
		return pollExit(ctx, pid, start)
	}
	return exited
}

// waitReadable polls fd until it is readable (true) or ctx is done
// (false). An eventfd, written when ctx is done, wakes the poll.
func waitReadable(ctx context.Context, fd int) (bool, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return false, fmt.Errorf("eventfd: %w", err)
	}
	var mu sync.Mutex // guards efd against the wake-up writing to it once closed
	wake := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if efd >= 0 {
			_, _ = unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
	})
	defer func() {
		wake()
		mu.Lock()
		unix.Close(efd)
		efd = -1
		mu.Unlock()
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		switch {
		case fds[0].Revents != 0:
			return true, nil
		case fds[1].Revents != 0:
			return false, nil
		}
	}
}

// pollExit looks at /proc every pollInterval until the process has ended
// (true) or ctx is done (false).
func pollExit(ctx context.Context, pid int, start uint64) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for processAlive(pid, start) {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// startProcess starts argv in its own session (so that a signal to the
// agent's process group, e.g. Ctrl-C, does not reach the executor) with
// stdout and stderr in the sandbox; with newMountNS, in a mount namespace
// of its own whose mounts are all private (Go's CLONE_NEWNS unshare makes
// "/" MS_REC|MS_PRIVATE; Mesos' filesystem/linux isolator makes it
// rslave), as Mesos runs a container that has volumes.
func startProcess(argv, env []string, dir string, newMountNS bool) (pid int, start uint64, err error) {
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("executor stdout: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("executor stderr: %w", err)
	}
	defer stderr.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if newMountNS {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start executor %q: %w", argv[0], err)
	}
	pid = cmd.Process.Pid
	ch := make(chan struct{})
	reaped.Store(pid, ch)
	go func() {
		_ = cmd.Wait()
		reaped.Delete(pid)
		close(ch)
	}()
	start, _ = processStart(pid)
	return pid, start, nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (field 3, the state, is index 0).
func procStat(pid int) ([][]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return bytes.Fields(b[i+1:]), nil
}

func processStart(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 20 {
		return 0, fmt.Errorf("process %d: no start time: %v", pid, err)
	}
	return strconv.ParseUint(string(f[19]), 10, 64) // field 22
}

// processAlive reports whether pid still runs and is the process that
// started at start (0: not recorded). Zombies count as dead.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	f, err := procStat(pid)
	if err != nil || len(f) < 20 {
		return false
	}
	if s := f[0][0]; s == 'Z' || s == 'X' {
		return false
	}
	if start != 0 && string(f[19]) != strconv.FormatUint(start, 10) {
		return false
	}
	return true
}

// killSession SIGKILLs every process left in session sid: the executor was
// started with setsid, so its session holds everything it started that did
// not start a session of its own. This stands in for Mesos destroying the
// container's cgroup.
//
// The kernel does not reuse a pid while it still names a session, so a
// session sid is the executor's unless a different process (another start
// time) now has pid sid, i.e. the session ended and the number moved on.
func killSession(sid int, start uint64) {
	if f, err := procStat(sid); err == nil && len(f) >= 20 && start != 0 && string(f[19]) != strconv.FormatUint(start, 10) {
		return // pid sid is another process now: the session is not ours
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		f, err := procStat(pid)
		if err != nil || len(f) < 4 {
			continue
		}
		if s, _ := strconv.Atoi(string(f[3])); s == sid { // field 6: session
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
