package fakeagent

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// sleeper starts a process that is not watched by the agent's reaper, as
// a recovered executor is not, and returns its pid and start time; kill
// ends it and waits for it.
func sleeper(t *testing.T) (pid int, start uint64, kill func()) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	kill = func() { _ = cmd.Process.Kill(); <-waited }
	t.Cleanup(kill)
	start, err := processStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, start, kill
}

// watch runs waitExit in a goroutine and returns its result's channel.
func watch(ctx context.Context, pid int, start uint64, log *zap.Logger) <-chan bool {
	ch := make(chan bool, 1)
	go func() { ch <- waitExit(ctx, pid, start, log) }()
	return ch
}

func expectResult(t *testing.T, ch <-chan bool, want bool, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("%s: waitExit = %v, want %v", what, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: waitExit did not return", what)
	}
}

// TestWaitExitPidfd: a recovered executor's exit is noticed through one
// pidfd, without a log line and without polling; a cancelled wait says
// so; a pid that another process took over is the executor gone.
func TestWaitExitPidfd(t *testing.T) {
	opens := 0
	pidfdOpen = func(pid, flags int) (int, error) { opens++; return unix.PidfdOpen(pid, flags) }
	t.Cleanup(func() { pidfdOpen = unix.PidfdOpen })
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)

	pid, start, kill := sleeper(t)
	done := watch(context.Background(), pid, start, log)
	select {
	case got := <-done:
		t.Fatalf("waitExit returned %v while the process runs", got)
	case <-time.After(100 * time.Millisecond):
	}
	kill()
	expectResult(t, done, true, "after the kill")
	if opens != 1 || logs.Len() != 0 {
		t.Errorf("pidfd_open called %d times, %d log lines (%v); want one pidfd, no fallback", opens, logs.Len(), logs.All())
	}

	pid, start, _ = sleeper(t)
	ctx, cancel := context.WithCancel(context.Background())
	done = watch(ctx, pid, start, log)
	cancel()
	expectResult(t, done, false, "cancelled")

	expectResult(t, watch(context.Background(), pid, start+1, log), true, "pid taken by another process")
}

// TestWaitExitWithoutPidfd: a kernel without pidfd_open (ENOSYS) gets the
// /proc poll, and a log line that says so.
func TestWaitExitWithoutPidfd(t *testing.T) {
	pidfdOpen = func(int, int) (int, error) { return -1, unix.ENOSYS }
	t.Cleanup(func() { pidfdOpen = unix.PidfdOpen })
	core, logs := observer.New(zapcore.DebugLevel)

	pid, start, kill := sleeper(t)
	done := watch(context.Background(), pid, start, zap.New(core))
	kill()
	expectResult(t, done, true, "after the kill")
	if all := logs.All(); len(all) != 1 || !strings.Contains(all[0].Message, "ENOSYS") || !strings.Contains(all[0].Message, "polling") {
		t.Errorf("log %v, want one line naming ENOSYS and the polling", all)
	}
}
