package sandbox

import (
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestImageCommand: the argv is Thermos' wrap_with_mesos_containerizer
// (launch --unshare_namespace_mnt --launch_info with rootfs, user,
// working_directory and a non-shell /bin/bash -c command), plus the
// pseudo-filesystem mounts the Mesos >= 1.10 launcher no longer makes.
func TestImageCommand(t *testing.T) {
	im := &Image{Containerizer: "/usr/libexec/mesos/mesos-containerizer", RootFS: "/m/taskfs", MountPoint: DefaultMountPoint}
	for _, user := range []string{"www", ""} {
		argv := im.Command("echo 'hi there'", user, DefaultMountPoint)
		if len(argv) != 4 || argv[0] != im.Containerizer || argv[1] != "launch" || argv[2] != "--unshare_namespace_mnt" ||
			!strings.HasPrefix(argv[3], "--launch_info=") {
			t.Fatalf("argv %q", argv)
		}
		var li map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(argv[3], "--launch_info=")), &li); err != nil {
			t.Fatal(err)
		}
		cmd := li["command"].(map[string]any)
		if li["rootfs"] != "/m/taskfs" || li["working_directory"] != DefaultMountPoint || cmd["shell"] != false ||
			cmd["value"] != "/bin/bash" || strings.Join(toStrings(cmd["arguments"]), "|") != "/bin/bash|-c|echo 'hi there'" {
			t.Errorf("launch_info %v", li)
		}
		if got, ok := li["user"]; (user == "" && ok) || (user != "" && got != user) {
			t.Errorf("user %v (present %t), want %q (absent when empty: the executor's own)", got, ok, user)
		}
		if ns := li["clone_namespaces"].([]any); len(ns) != 1 || int(ns[0].(float64)) != unix.CLONE_NEWNS {
			t.Errorf("clone_namespaces %v, want CLONE_NEWNS (the launcher mounts nothing without it)", ns)
		}
		targets := map[string]string{}
		for _, m := range li["mounts"].([]any) {
			m := m.(map[string]any)
			typ, _ := m["type"].(string)
			targets[m["target"].(string)] = typ
		}
		for target, typ := range map[string]string{"/m/taskfs/proc": "proc", "/m/taskfs/sys": "sysfs", "/m/taskfs/dev": "tmpfs",
			"/m/taskfs/dev/pts": "devpts", "/m/taskfs/dev/null": "", "/m/taskfs/dev/shm": "tmpfs"} {
			if got, ok := targets[target]; !ok || got != typ {
				t.Errorf("mount at %s: type %q (present %t), want %q", target, got, ok, typ)
			}
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// fakeLauncher writes an executable that answers the launch_info probe as
// mesos-containerizer >= 1.2 does when probe is true.
func fakeLauncher(t *testing.T, probe bool) string {
	t.Helper()
	msg := "Usage: launch [options]"
	if probe {
		msg = "Flag --launch_info is not specified"
	}
	p := filepath.Join(t.TempDir(), "mesos-containerizer")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho '"+msg+"' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImageCheck: what cannot run a task inside its image is refused with
// a message naming what to install or set, never run on the host.
func TestImageCheck(t *testing.T) {
	testenv.NeedRoot(t)
	rootfs := t.TempDir()
	notExec := filepath.Join(t.TempDir(), "mesos-containerizer")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := fakeLauncher(t, true)
	for _, tc := range []struct {
		name string
		im   Image
		want []string // "" want: no error
	}{
		{"no path", Image{RootFS: rootfs, MountPoint: DefaultMountPoint}, []string{"no mesos_containerizer_path was set", "--mesos-containerizer-path"}},
		{"missing", Image{Containerizer: "/nonexistent/mesos-containerizer", RootFS: rootfs, MountPoint: DefaultMountPoint},
			[]string{"/nonexistent/mesos-containerizer does not exist", "install Mesos"}},
		{"not executable", Image{Containerizer: notExec, RootFS: rootfs, MountPoint: DefaultMountPoint}, []string{"not marked as executable"}},
		{"no image", Image{Containerizer: good, RootFS: filepath.Join(rootfs, "taskfs"), MountPoint: DefaultMountPoint},
			[]string{"provisioned no image", "--isolation=filesystem/linux"}},
		{"relative mount point", Image{Containerizer: good, RootFS: rootfs, MountPoint: "mnt/sandbox"}, []string{"absolute path"}},
		{"old launcher", Image{Containerizer: fakeLauncher(t, false), RootFS: rootfs, MountPoint: DefaultMountPoint}, []string{"does not take --launch_info"}},
		{"ok", Image{Containerizer: good, RootFS: rootfs, MountPoint: DefaultMountPoint}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.im.check()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("check passed, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestImageCreateUser: the task's user and its primary group are added to
// the image with the host's ids (FileSystemImageSandbox.
// _create_user_and_group_in_taskfs); existing matching entries are fine,
// clashing ones fail saying what to do.
func TestImageCreateUser(t *testing.T) {
	testenv.NeedRoot(t)
	id, err := lookupUser("nobody")
	if err != nil {
		testenv.Missing(t, "user nobody: %v", err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(id.cred.Gid)))
	if err != nil {
		t.Fatal(err)
	}
	image := func(t *testing.T, passwd string) *Image {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"passwd": "root:x:0:0:root:/root:/bin/sh\n" + passwd, "group": "root:x:0:\n"} {
			if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return &Image{RootFS: root}
	}
	log := zaptest.NewLogger(t)
	t.Run("added, then found", func(t *testing.T) {
		im := image(t, "")
		for range 2 {
			if err := im.createUser(id, log); err != nil {
				t.Fatal(err)
			}
		}
		pw, ok := imageEntry(filepath.Join(im.RootFS, "etc/passwd"), "nobody")
		if !ok || pw[2] != strconv.Itoa(int(id.cred.Uid)) || pw[3] != strconv.Itoa(int(id.cred.Gid)) {
			t.Errorf("image passwd entry %q, want nobody with the host's uid and gid", pw)
		}
		if gr, ok := imageEntry(filepath.Join(im.RootFS, "etc/group"), g.Name); !ok || gr[2] != g.Gid {
			t.Errorf("image group entry %q, want %s with gid %s", gr, g.Name, g.Gid)
		}
	})
	t.Run("clash", func(t *testing.T) {
		im := image(t, "nobody:x:4242:4242::/:/bin/sh\n")
		err := im.createUser(id, log)
		if err == nil || !strings.Contains(err.Error(), "clashes") || !strings.Contains(err.Error(), "--no-create-user") {
			t.Fatalf("createUser: %v, want a clash naming --no-create-user", err)
		}
	})
}

// TestCopyIntoImageReplacesSymlinks: a symlink in the image at
// /etc/resolv.conf must not lead the copy to a file outside the image.
func TestCopyIntoImageReplacesSymlinks(t *testing.T) {
	dir := t.TempDir()
	src, outside, dst := filepath.Join(dir, "src"), filepath.Join(dir, "outside"), filepath.Join(dir, "image", "etc", "resolv.conf")
	for p, c := range map[string]string{src: "nameserver 198.18.0.1\n", outside: "keep\n"} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dst); err != nil {
		t.Fatal(err)
	}
	if err := copyIntoImage(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep\n" {
		t.Errorf("the file outside the image became %q", b)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(dst, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("%s is not a regular file now (%v)", dst, err)
	}
	if err := copyIntoImage(filepath.Join(dir, "absent"), filepath.Join(dir, "image", "etc", "hosts")); err != nil {
		t.Errorf("a missing host file: %v, want nothing copied", err)
	}
}

// TestLinkHostSandbox: in a Docker container the agent's path of the
// sandbox becomes a symlink to where the container sees it, which is made
// 0755, as Thermos' DockerDirectorySandbox; with the host's paths (the
// same directory, or one that exists) nothing changes.
func TestLinkHostSandbox(t *testing.T) {
	dir := t.TempDir()
	sandbox := filepath.Join(dir, "mnt", "mesos", "sandbox")
	if err := os.MkdirAll(sandbox, 0o750); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(dir, "var", "lib", "mesos", "runs", "c1")
	if err := LinkHostSandbox(host, sandbox); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(host); err != nil || target != sandbox {
		t.Errorf("%s links to %q (%v), want %s", host, target, err, sandbox)
	}
	if fi, err := os.Stat(sandbox); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("sandbox mode %v (%v), want 0755", fi.Mode().Perm(), err)
	}
	for _, tc := range [][2]string{{sandbox, sandbox}, {host, sandbox}, {"", sandbox}} {
		if err := LinkHostSandbox(tc[0], tc[1]); err != nil {
			t.Errorf("LinkHostSandbox(%q, %q): %v, want nothing to do", tc[0], tc[1], err)
		}
	}
}
