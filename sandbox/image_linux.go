package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dewarhq/dewar/internal/shell"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const cloneNewNS = unix.CLONE_NEWNS

// rootfsMounts are the filesystem/linux isolator's mounts for a container
// with a rootfs (isolators/filesystem/linux.cpp: ROOTFS_CONTAINER_MOUNTS,
// the standard devices of makeStandardDevices, and /dev/shm when
// namespaces/ipc is off). The read-only binds of /proc entries are left
// out where this kernel has no such entry: a bind of a missing source
// would stop the launch.
func rootfsMounts(root string) []mountInfo {
	in := func(p string) string { return filepath.Join(root, p) }
	const (
		nsx = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV
		ro  = unix.MS_BIND | unix.MS_RDONLY | nsx
	)
	ms := []mountInfo{{Source: "proc", Target: in("/proc"), Type: "proc", Flags: nsx}}
	for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err == nil {
			ms = append(ms, mountInfo{Source: in(p), Target: in(p), Flags: ro})
		}
	}
	ms = append(ms,
		mountInfo{Source: "sysfs", Target: in("/sys"), Type: "sysfs", Flags: unix.MS_RDONLY | nsx},
		mountInfo{Source: "tmpfs", Target: in("/sys/fs/cgroup"), Type: "tmpfs", Options: "mode=755", Flags: nsx},
		mountInfo{Source: "tmpfs", Target: in("/dev"), Type: "tmpfs", Options: "mode=755",
			Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_STRICTATIME},
		mountInfo{Source: "devpts", Target: in("/dev/pts"), Type: "devpts",
			Options: "newinstance,ptmxmode=0666,mode=0620,gid=5", Flags: unix.MS_NOSUID | unix.MS_NOEXEC},
	)
	// Mesos mknods copies of the host's devices; a bind of the host's
	// node is the same device.
	for _, d := range []string{"full", "null", "random", "tty", "urandom", "zero"} {
		ms = append(ms, mountInfo{Source: "/dev/" + d, Target: in("/dev/" + d), Flags: unix.MS_BIND})
	}
	return append(ms, mountInfo{Source: "tmpfs", Target: in("/dev/shm"), Type: "tmpfs", Options: "mode=1777",
		Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME})
}

// check refuses what cannot run the task inside its image, before anything
// is changed, with a message that says what to install or set. Thermos'
// own checks (thermos_task_runner.py, DefaultThermosTaskRunnerProvider.
// from_assigned_task) come first, in its words; the rest would otherwise
// fail every run of every process with the launcher's error in its log.
func (im *Image) check() error {
	const cannot = "cannot launch task using a filesystem image: "
	if im.Containerizer == "" {
		return errors.New(cannot + "no mesos_containerizer_path was set; start the executor with --mesos-containerizer-path=<the agent's launcher_dir>/mesos-containerizer")
	}
	fi, err := os.Stat(im.Containerizer)
	if err != nil || fi.IsDir() {
		return fmt.Errorf(cannot+"mesos_containerizer_path %s does not exist; install Mesos on this agent or point --mesos-containerizer-path at its mesos-containerizer (in the agent's --launcher_dir)", im.Containerizer)
	}
	if unix.Access(im.Containerizer, unix.X_OK) != nil {
		return fmt.Errorf(cannot+"mesos_containerizer_path %s is not marked as executable", im.Containerizer)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf(cannot+"the executor runs as uid %d, and mesos-containerizer must be started as root to change root and user; run the executor as root (Aurora does)", os.Geteuid())
	}
	if fi, err := os.Stat(im.RootFS); err != nil || !fi.IsDir() {
		return fmt.Errorf(cannot+"the agent provisioned no image at %s; run the agent with --isolation=filesystem/linux,docker/runtime and --image_providers=docker,appc so that it mounts the task's image volume there", im.RootFS)
	}
	if !filepath.IsAbs(im.MountPoint) {
		return fmt.Errorf(cannot+"--sandbox-mount-point %q must be an absolute path inside the image", im.MountPoint)
	}
	// Thermos probes the launcher the same way (process_util.py,
	// is_launch_info_supported); Mesos < 1.2 took separate flags instead,
	// and dewar, a v1 API executor, does not speak to such agents.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, im.Containerizer, "launch").CombinedOutput()
	if !strings.Contains(string(out), "launch_info") {
		return fmt.Errorf(cannot+"%s does not take --launch_info (Mesos >= 1.2 does); use the agent's own mesos-containerizer", im.Containerizer)
	}
	return nil
}

// prepare is FileSystemImageSandbox.create after the sandbox exists: the
// user and group in the image (unless NoCreateUser), the executor's
// volumes and the sandbox mounted into it, and the host's resolv.conf,
// hosts and hostname copied into its /etc. The mounts are made in the
// executor's mount namespace, which under Mesos is the container's own
// (filesystem/linux), as Thermos makes them; release undoes them.
func (im *Image) prepare(mesosDir, workDir string, id *identity, log *zap.Logger) error {
	if err := im.writable(log); err != nil {
		return err
	}
	if !im.NoCreateUser && id != nil && id.cred != nil {
		if err := im.createUser(id, log); err != nil {
			return err
		}
	}
	for _, p := range im.Volumes {
		if p == TaskFSName {
			continue
		}
		src := p
		if !filepath.IsAbs(src) {
			src = filepath.Join(mesosDir, p)
		}
		if err := im.mount(src, filepath.Join(im.RootFS, strings.TrimLeft(p, "/")), log); err != nil {
			return err
		}
	}
	if err := im.mount(workDir, filepath.Join(im.RootFS, strings.TrimLeft(im.MountPoint, "/")), log); err != nil {
		return err
	}
	// The network/cni isolator copies these for a container with a
	// rootfs; the wrapped launch bypasses it (sandbox.py, _copy_files).
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/hostname"} {
		if err := copyIntoImage(f, filepath.Join(im.RootFS, f)); err != nil {
			return err
		}
	}
	return nil
}

// writable remounts the image volume read-write in the executor's mount
// namespace when the agent mounted it read-only. Aurora's scheduler asks
// for the volume read-only (MesosTaskFactory: Volume.Mode.RO), yet
// Thermos writes the user, the sandbox's mount point and /etc/resolv.conf
// into it: before Mesos 1.10 the kernel ignored MS_RDONLY on the initial
// bind, and since then the agent remounts read-only binds (Mesos commit
// 8f7892393, fs::mount), so Thermos' image tasks fail there ("groupadd:
// cannot lock /etc/group"). The provisioner gives each container its own
// copy (or overlay), so writing to it changes no shared image; the mount
// flags other than read-only are kept.
func (im *Image) writable(log *zap.Logger) error {
	var st unix.Statfs_t
	if err := unix.Statfs(im.RootFS, &st); err != nil {
		return fmt.Errorf("cannot launch task using a filesystem image: %s: %w", im.RootFS, err)
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		return nil
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND)
	for _, f := range [][2]int64{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME}} {
		if st.Flags&f[0] != 0 {
			flags |= uintptr(f[1])
		}
	}
	log.Info("remounting the task's image read-write in the executor's mount namespace", zap.String("rootfs", im.RootFS))
	if err := unix.Mount("", im.RootFS, "", flags, ""); err != nil {
		return fmt.Errorf("cannot launch task using a filesystem image: the agent mounted it read-only at %s and remounting it read-write failed (%w); the executor writes the task's user, the sandbox's mount point and /etc/resolv.conf into it: give the agent a provisioner backend with a writable copy per container (--image_provisioner_backend=copy or overlay)", im.RootFS, err)
	}
	return nil
}

// mount binds source at target (mkdir or touch first), recursively, as
// Thermos' `mount -n --rbind` (sandbox.py, _mount_paths).
func (im *Image) mount(source, target string, log *zap.Logger) error {
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("mount %s into the task's image: %w", source, err)
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if _, serr := os.Lstat(target); errors.Is(serr, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				err = f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create the mount point %s in the task's image: %w", target, err)
	}
	log.Info("mounting into the task's image", zap.String("source", source), zap.String("target", target))
	if err := unix.Mount(source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s at %s in the task's image: %w", source, target, err)
	}
	return nil
}

// release unmounts what prepare mounted into the image, best effort: in a
// container of its own the mounts go with the executor anyway.
func (im *Image) release(log *zap.Logger) {
	targets := []string{filepath.Join(im.RootFS, strings.TrimLeft(im.MountPoint, "/"))}
	for _, p := range im.Volumes {
		if p != TaskFSName {
			targets = append(targets, filepath.Join(im.RootFS, strings.TrimLeft(p, "/")))
		}
	}
	for _, t := range targets {
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			log.Warn("cannot unmount from the task's image", zap.String("target", t), zap.Error(err))
		}
	}
}

// copyIntoImage copies a host file into the image when it exists. A
// symlink at dst is replaced, never followed: it would lead out of the
// image into the host's own files.
func copyIntoImage(src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy %s into the task's image: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s into the task's image: %w", src, err)
	}
	if fi, err := os.Lstat(dst); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("copy %s into the task's image: %w", src, err)
		}
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("copy %s into the task's image: %w", src, err)
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// useradd and groupadd exit with these when the id or the name exists
// (FileSystemImageSandbox._USER_OR_GROUP_ID_EXISTS, _NAME_EXISTS).
const (
	idExists   = 4
	nameExists = 9
)

// createUser adds the user's primary group and the user, with the host's
// ids, to the image with the host's groupadd/useradd -R, as
// _create_user_and_group_in_taskfs; when they exist already, they must
// match. (Thermos checks a match with `chroot taskfs getent`/`id`; dewar
// reads the image's /etc/group and /etc/passwd, which needs neither tool
// in the image.)
func (im *Image) createUser(id *identity, log *zap.Logger) error {
	uid, gid := id.cred.Uid, id.cred.Gid
	group, err := hostGroupName(gid)
	if err != nil {
		return err
	}
	code, err := runAdd("groupadd", "-R", im.RootFS, "-g", strconv.Itoa(int(gid)), group)
	switch {
	case err != nil:
		return err
	case code == idExists || code == nameExists:
		if got, ok := imageEntry(filepath.Join(im.RootFS, "etc/group"), group); !ok || got[2] != strconv.Itoa(int(gid)) {
			return fmt.Errorf("failed to create group in sandbox for task image: group %s(%d) clashes with the image's /etc/group entry %q; give them the same id or run the executor with --no-create-user", group, gid, strings.Join(got, ":"))
		}
		log.Info("group already exists in the task's filesystem", zap.String("group", group), zap.Uint32("gid", gid))
	case code != 0:
		return fmt.Errorf("failed to create group in sandbox for task image: groupadd exited with %d", code)
	}
	code, err = runAdd("useradd", "-R", im.RootFS, "-u", strconv.Itoa(int(uid)), "-g", strconv.Itoa(int(gid)), id.name)
	switch {
	case err != nil:
		return err
	case code == idExists || code == nameExists:
		got, ok := imageEntry(filepath.Join(im.RootFS, "etc/passwd"), id.name)
		if !ok || got[2] != strconv.Itoa(int(uid)) || got[3] != strconv.Itoa(int(gid)) {
			return fmt.Errorf("failed to create user in sandbox for task image: user %s (uid %d, gid %d) clashes with the image's /etc/passwd entry %q; give them the same ids or run the executor with --no-create-user", id.name, uid, gid, strings.Join(got, ":"))
		}
		log.Info("user already exists in the task's filesystem", zap.String("user", id.name), zap.Uint32("uid", uid))
	case code != 0:
		return fmt.Errorf("failed to create user in sandbox for task image: useradd exited with %d", code)
	}
	return nil
}

// runAdd runs groupadd or useradd and returns its exit status.
func runAdd(tool string, args ...string) (int, error) {
	path, err := shell.LookPath(tool, "/usr/sbin", "/sbin")
	if err != nil {
		return 0, fmt.Errorf("failed to create the task's user in its image: %s is not installed on this host (Debian package passwd); install it, or run the executor with --no-create-user and put the user in the image", tool)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if c := ee.ExitCode(); c != idExists && c != nameExists {
			return c, fmt.Errorf("failed to create the task's user in its image: %s %s: %s: %s", tool, strings.Join(args, " "), ee, strings.TrimSpace(string(out)))
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", tool, err)
	}
	return 0, nil
}

// hostGroupName is the name of the host's group gid (grp.getgrgid in
// Thermos' get_user_and_group).
func hostGroupName(gid uint32) (string, error) {
	g, err := user.LookupGroupId(strconv.Itoa(int(gid)))
	if err != nil {
		return "", fmt.Errorf("the task user's primary group %d has no name on this host, which creating it in the image needs: %w", gid, err)
	}
	return g.Name, nil
}

// imageEntry finds name in a passwd- or group-format file and returns its
// fields.
func imageEntry(path, name string) ([]string, bool) {
	return scanEntries(path, func(f []string) bool { return f[0] == name })
}

func scanEntries(path string, match func([]string) bool) ([]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && match(fields) {
			return fields, true
		}
	}
	return nil, false
}

// LinkHostSandbox gives a Docker container the host's layout, as Thermos'
// DockerDirectorySandbox._create_symlinks (aurora/executor/common/
// sandbox.py): inside the container the sandbox is at sandbox
// ($MESOS_SANDBOX, /mnt/mesos/sandbox) and the agent's path of it,
// hostDir ($MESOS_DIRECTORY), does not exist; it is made a symlink to
// sandbox, so that paths the agent hands out work in the container, and
// sandbox is made 0755 (MESOS-8332: Mesos >= 1.6 makes it 0750, which
// takes `aurora task ssh` away from the role). Nothing is done when
// hostDir already exists, the container shares the host's paths.
func LinkHostSandbox(hostDir, sandbox string) error {
	if hostDir == "" || filepath.Clean(hostDir) == filepath.Clean(sandbox) {
		return nil
	}
	if _, err := os.Lstat(hostDir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(hostDir), 0o755); err != nil {
		return fmt.Errorf("failed to create the sandbox root: %w", err)
	}
	if err := os.Symlink(sandbox, hostDir); err != nil {
		return fmt.Errorf("failed to create the sandbox root: %w", err)
	}
	if err := os.Chmod(sandbox, 0o755); err != nil {
		return fmt.Errorf("failed to create the sandbox root: %w", err)
	}
	return nil
}
