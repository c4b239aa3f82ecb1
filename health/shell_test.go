package health

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShellChecker(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cmd     string
		env     []string
		wantErr string
	}{
		{"exit 0", "true", nil, ""},
		{"bash syntax", "[[ -d . ]] && test $((1+1)) -eq 2", nil, ""},
		{"runs in Dir", "test \"$PWD\" = " + dir, nil, ""},
		{"sees Env", `test "$HEALTH" = yes`, []string{"HEALTH=yes", "PATH=" + os.Getenv("PATH")}, ""},
		{"exit 3 with output", "echo 'db unreachable' >&2; exit 3", nil, "exit status 3: db unreachable"},
		{"missing command", "no-such-command-dewar", nil, "exit status 127"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &ShellChecker{Command: tc.cmd, Timeout: 10 * time.Second, Dir: dir, Env: tc.env}
			err := c.Check(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want healthy, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d survived the health check", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShellCheckerTimeoutKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The background sleep holds the output pipe and is in the check's
	// process group: both must go when the check times out.
	c := &ShellChecker{Command: "sleep 60 & echo $! > " + pidFile + "; sleep 60", Timeout: 300 * time.Millisecond}
	start := time.Now()
	err := c.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not finish in time") {
		t.Fatalf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v with a 300ms timeout", d)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestShellCheckerLeavesNothingBehind(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := &ShellChecker{Command: "sleep 60 >/dev/null 2>&1 & echo $! > " + pidFile, Timeout: 10 * time.Second}
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestShellCheckerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	c := &ShellChecker{Command: "sleep 60"}
	if err := c.Check(ctx); err == nil {
		t.Fatal("a cancelled check passed")
	}
}
