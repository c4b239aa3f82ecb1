package executore2e

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dewarhq/dewar/internal/e2etest"
)

// processesWith lists the pids of live processes whose command line
// contains marker (zombies excluded: they hold no resources and are gone
// once reaped).
func processesWith(marker string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), []byte(marker)) {
			continue
		}
		if e2etest.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killExecutorAtCleanup SIGKILLs the executor at the end of the test if it
// is still there (a failed test must not leave it running).
func killExecutorAtCleanup(t testing.TB, pid int) {
	t.Helper()
	t.Cleanup(func() {
		if pid > 0 && e2etest.IsExecutor(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// killMarkedAtCleanup SIGKILLs, at the end of the test, every process whose
// command line holds marker: the task's processes, should the executor
// under test have failed to.
func killMarkedAtCleanup(t testing.TB, marker string) {
	t.Helper()
	t.Cleanup(func() {
		for _, pid := range processesWith(marker) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// statOf returns the session and parent of pid (fields 6 and 4 of
// /proc/<pid>/stat).
func statOf(t testing.TB, pid int) (sid, ppid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("stat of %d: %v", pid, err)
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	if len(f) < 4 {
		t.Fatalf("malformed /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	sid, _ = strconv.Atoi(string(f[3]))
	return sid, ppid
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}
