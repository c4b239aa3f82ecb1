package sandbox

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// Image runs a task's processes inside a Mesos filesystem image, as Thermos
// does for an Aurora task whose container is Mesos(image=...): the agent
// provisions the image as a volume at $MESOS_DIRECTORY/taskfs (Aurora's
// TASK_FILESYSTEM_MOUNT_POINT, MesosTaskFactory.configureTaskForImage),
// the executor adds the task's user to it and mounts the sandbox into it
// (aurora/executor/common/sandbox.py, FileSystemImageSandbox.create), and
// every process runs through `mesos-containerizer launch`, which changes
// root into taskfs and switches to the user
// (thermos/common/process_util.py, wrap_with_mesos_containerizer).
type Image struct {
	// Containerizer is the mesos-containerizer binary
	// (--mesos-containerizer-path; Thermos' default
	// /usr/libexec/mesos/mesos-containerizer).
	Containerizer string
	// RootFS is the image's root filesystem as the agent provisioned it:
	// $MESOS_DIRECTORY/taskfs.
	RootFS string
	// MountPoint is where the task's sandbox appears inside the image
	// (--sandbox-mount-point, default /mnt/mesos/sandbox): the processes'
	// working directory and HOME.
	MountPoint string
	// NoCreateUser leaves the image's /etc/passwd and /etc/group alone
	// (--no-create-user); otherwise the task's user and its primary group
	// are added with the host's uid and gid.
	NoCreateUser bool
	// Volumes are the container paths of the executor's other volumes
	// (ExecutorInfo.container.volumes), mounted into the image at the same
	// path (Thermos' mounted_volume_paths). A relative path is relative to
	// the Mesos directory, as the agent mounts it there.
	Volumes []string
}

// TaskFSName is the image volume's container path, relative to the Mesos
// directory: Aurora's TASK_FILESYSTEM_MOUNT_POINT (api.thrift).
const TaskFSName = "taskfs"

// DefaultMountPoint is Thermos' default --sandbox-mount-point.
const DefaultMountPoint = "/mnt/mesos/sandbox"

// launchInfo is the ContainerLaunchInfo (include/mesos/slave/
// containerizer.proto) that `mesos-containerizer launch --launch_info`
// takes as JSON.
type launchInfo struct {
	RootFS           string          `json:"rootfs"`
	User             string          `json:"user,omitempty"`
	WorkingDirectory string          `json:"working_directory"`
	Command          commandInfo     `json:"command"`
	CloneNamespaces  []int           `json:"clone_namespaces,omitempty"`
	Mounts           []mountInfo     `json:"mounts,omitempty"`
	FileOperations   []fileOperation `json:"file_operations,omitempty"`
}

type commandInfo struct {
	Shell     bool     `json:"shell"`
	Value     string   `json:"value"`
	Arguments []string `json:"arguments"`
}

// mountInfo is a ContainerMountInfo.
type mountInfo struct {
	Source  string `json:"source,omitempty"`
	Target  string `json:"target"`
	Type    string `json:"type,omitempty"`
	Flags   uint32 `json:"flags,omitempty"`
	Options string `json:"options,omitempty"`
}

// fileOperation is a ContainerFileOperation of type SYMLINK.
type fileOperation struct {
	Operation string  `json:"operation"`
	Symlink   symlink `json:"symlink"`
}

type symlink struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Command is the argv that runs `/bin/bash -c cmdline` inside the image as
// user ("" = the executor's user, root) with working directory cwd (a path
// inside the image), as Thermos' wrap_with_mesos_containerizer builds it:
// `mesos-containerizer launch --unshare_namespace_mnt --launch_info=JSON`
// with rootfs, user, working_directory and a non-shell CommandInfo.
//
// Mesos up to 1.9 mounted /proc, /sys and /dev into the new root inside
// the launcher; since 1.10 the filesystem/linux isolator puts those mounts
// in the ContainerLaunchInfo instead (Mesos commit ede8155d1, "Moved the
// container root construction to the isolators"), and the launcher,
// given a rootfs without them, stops with "Failed to enter chroot ...:
// Failed to read mount table: Failed to open '/proc/mounts'". So dewar
// adds what that isolator adds for a container with a rootfs
// (isolators/filesystem/linux.cpp, ROOTFS_CONTAINER_MOUNTS,
// makeStandardDevices and /dev/shm), with CLONE_NEWNS in clone_namespaces,
// which the launcher requires before it mounts anything (launch.cpp,
// prepareMounts). The mounts live in the launcher's own mount namespace
// and end with the process.
func (im *Image) Command(cmdline, user, cwd string) []string {
	li := launchInfo{
		RootFS:           im.RootFS,
		User:             user,
		WorkingDirectory: cwd,
		// "value" is the binary, "arguments" its argv with argv[0], as
		// Thermos passes them.
		Command:         commandInfo{Value: "/bin/bash", Arguments: []string{"/bin/bash", "-c", cmdline}},
		CloneNamespaces: []int{cloneNewNS},
		Mounts:          rootfsMounts(im.RootFS),
		FileOperations:  devSymlinks(im.RootFS),
	}
	b, err := json.Marshal(li)
	if err != nil {
		// Only strings and numbers: Marshal cannot fail.
		panic(fmt.Sprintf("encode launch_info: %v", err))
	}
	return []string{im.Containerizer, "launch", "--unshare_namespace_mnt", "--launch_info=" + string(b)}
}

// devSymlinks are makeStandardDevices' symlinks in the container's /dev.
func devSymlinks(root string) []fileOperation {
	var ops []fileOperation
	for _, l := range [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	} {
		ops = append(ops, fileOperation{Operation: "SYMLINK",
			Symlink: symlink{Source: l[0], Target: filepath.Join(root, "dev", l[1])}})
	}
	return ops
}
