package taskrun

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/sandbox"
)

// ContainerOptions are the executor's settings for tasks with a container
// image (Thermos' --mesos-containerizer-path, --sandbox-mount-point and
// --no-create-user).
type ContainerOptions struct {
	// MesosContainerizerPath runs the processes of a task with a Mesos
	// filesystem image; Thermos' default is
	// /usr/libexec/mesos/mesos-containerizer.
	MesosContainerizerPath string
	// SandboxMountPoint is where the sandbox appears inside the image;
	// "" is sandbox.DefaultMountPoint.
	SandboxMountPoint string
	// NoCreateUser leaves the image's users alone.
	NoCreateUser bool
}

// containerKind is how a task's processes run, as Thermos'
// DefaultSandboxProvider.from_assigned_task decides (aurora/executor/
// common/sandbox.py) from the AssignedTask's container.
type containerKind int

const (
	// onHost: a Mesos container without an image (or a plain command
	// task): the processes run in the executor's filesystem as the role
	// (DirectorySandbox).
	onHost containerKind = iota
	// inDocker: the executor itself runs in a Docker container; the
	// processes run as the container's user, with no setuid and no chown
	// (DockerDirectorySandbox has no user; DefaultThermosTaskRunnerProvider.
	// _get_role gives a Docker task no role).
	inDocker
	// inImage: a Mesos container with a filesystem image; the processes
	// run inside it through mesos-containerizer (FileSystemImageSandbox).
	inImage
)

func kindOf(c *aurora.Container) containerKind {
	switch {
	case c == nil:
		return onHost
	case c.Docker != nil:
		return inDocker
	case c.Mesos != nil && c.Mesos.Image != nil:
		return inImage
	default:
		return onHost
	}
}

// containerize adjusts the sandbox options to the task's container.
// sandbox.Start refuses an image task the machine cannot run (no
// mesos-containerizer, not root, no provisioned image) with a message
// saying what to install or set, so nothing runs on the host instead.
func (t *task) containerize(p *taskSpec, opt *sandbox.Options) error {
	var c *aurora.Container
	if p.assigned != nil {
		c = p.assigned.Task.Container
	}
	switch kindOf(c) {
	case inDocker:
		opt.User = ""
		if err := sandbox.LinkHostSandbox(t.env.Config.Directory, t.env.Config.Sandbox); err != nil {
			return fmt.Errorf("failed to initialize sandbox: %w", err)
		}
	case inImage:
		mp := t.opt.Container.SandboxMountPoint
		if mp == "" {
			mp = sandbox.DefaultMountPoint
		}
		im := &sandbox.Image{
			Containerizer: t.opt.Container.MesosContainerizerPath,
			// Thermos: os.path.join(MESOS_DIRECTORY, TASK_FILESYSTEM_MOUNT_POINT).
			RootFS:       joinDir(t.env.Config.Directory, t.env.Config.Sandbox, sandbox.TaskFSName),
			MountPoint:   mp,
			NoCreateUser: t.opt.Container.NoCreateUser,
		}
		// aurora_executor.py, extract_mount_paths_from_task.
		for _, v := range t.env.Executor.GetContainer().GetVolumes() {
			im.Volumes = append(im.Volumes, v.GetContainerPath())
		}
		opt.Image = im
		// Inside the image the sandbox is at the mount point, where Mesos
		// points MESOS_SANDBOX for a container with a rootfs
		// (--sandbox_directory); the host path does not exist there.
		for i, kv := range opt.Env {
			if strings.HasPrefix(kv, "MESOS_SANDBOX=") {
				opt.Env[i] = "MESOS_SANDBOX=" + mp
			}
		}
	}
	return nil
}

// imageHealth runs a shell health check inside the task's image as user,
// in the sandbox as the image sees it, with no setuid by the executor
// (health_checker.py, HealthCheckerProvider.from_assigned_task: a
// filesystem image's check is wrapped, never demoted).
func imageHealth(opt sandbox.Options, user string, hopt *health.Options) {
	im := opt.Image
	if im == nil {
		return
	}
	hopt.SysProcAttr = nil
	hopt.Wrap = func(cmd string) []string { return im.Command(cmd, user, im.MountPoint) }
}

func joinDir(dir, fallback, name string) string {
	if dir == "" {
		dir = fallback
	}
	return filepath.Join(dir, name)
}
