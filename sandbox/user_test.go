package sandbox

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestRunAsUser: as root, processes run as the task's user with its
// groups, HOME/USER/LOGNAME, and own the Mesos directory (root:root 0750 as
// the agent made it), their 0700 sandbox and their log directories.
func TestRunAsUser(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		testenv.Missing(t, "user nobody: %v", err)
	}
	tr := startTask(t, Task{Name: "u", MaxFailures: 1, Processes: []Process{
		newProc("who", `id -u; id -g; echo "$HOME $USER $LOGNAME"; touch mine`)}},
		func(o *Options) {
			o.User = "nobody"
			// The agent's work dir is traversable; the Mesos directory
			// itself is root:root 0750, as Mesos >= 1.6 makes it
			// (src/slave/paths.cpp, createSandboxDirectory).
			for d := filepath.Dir(o.Sandbox); d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(o.Sandbox, 0o750); err != nil {
				t.Fatal(err)
			}
		})
	res := tr.wait(30 * time.Second)
	if res.State != StateSuccess {
		b, _ := os.ReadFile(tr.logFile("who", 0, "stderr"))
		t.Fatalf("result %+v; stderr %s", res, b)
	}
	b, err := os.ReadFile(tr.logFile("who", 0, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	want := nobody.Uid + "\n" + nobody.Gid + "\n" + tr.workDir + " nobody nobody\n"
	if string(b) != want {
		t.Errorf("stdout %q, want %q", b, want)
	}
	// Thermos' DirectorySandbox.create: the Mesos directory and the
	// sandbox belong to the user, the sandbox is 0700.
	if fi, err := os.Stat(tr.workDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("sandbox %s: %v, mode %v, want 0700", tr.workDir, err, fi.Mode().Perm())
	}
	for _, path := range []string{tr.sandbox, tr.workDir, filepath.Join(tr.workDir, "mine"),
		filepath.Dir(tr.logFile("who", 0, "stdout")), tr.logFile("who", 0, "stdout")} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; strconv.FormatUint(uint64(uid), 10) != nobody.Uid {
			t.Errorf("%s owned by uid %d, want nobody (%s)", path, uid, nobody.Uid)
		}
	}
}

// TestUnknownUser: Start refuses, with a clear message, before anything
// runs.
func TestUnknownUser(t *testing.T) {
	t.Parallel()
	sb := t.TempDir()
	_, err := Start(context.Background(), Task{Name: "u", MaxFailures: 1,
		Processes: []Process{newProc("p", "touch ran")}},
		Options{Sandbox: sb, User: "dewar-no-such-user-7f3a"})
	if err == nil || !strings.Contains(err.Error(), `user "dewar-no-such-user-7f3a": no such user`) {
		t.Fatalf("Start error %v, want one naming the unknown user", err)
	}
	if entries, _ := os.ReadDir(sb); len(entries) != 0 {
		t.Errorf("sandbox not empty after a refused start: %v", entries)
	}
}
