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
// groups, HOME/USER/LOGNAME, and own their work and log directories.
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
			// t.TempDir is 0700: let nobody reach the sandbox's parent, as
			// a Mesos work dir does; the sandbox itself is root's 0750, as
			// Mesos >= 1.6 makes it (MESOS-8332).
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
	for _, path := range []string{filepath.Dir(tr.workDir), tr.workDir, filepath.Join(tr.workDir, "mine"),
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
