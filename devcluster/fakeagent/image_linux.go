package fakeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// imageVolume is one image volume of an executor's container, provisioned.
type imageVolume struct {
	rootfs string // the provisioned copy of the image
	target string // where the executor sees it
	// readOnly: the volume's mode is RO.
	readOnly bool
}

// provisionerDir is where the container's provisioned images live, as
// Mesos' <work_dir>/provisioner/containers/<container_id>
// (src/slave/containerizer/mesos/provisioner/paths.cpp).
func (a *Agent) provisionerDir(containerID string) string {
	return filepath.Join(a.cfg.WorkDir, "provisioner", "containers", containerID)
}

// provisionImages stands in for Mesos' volume/image isolator
// (src/slave/containerizer/mesos/isolators/volume/image.cpp,
// VolumeImageIsolatorProcess::prepare) for a container without a rootfs of
// its own, which is how Aurora launches a task with an image
// (MesosTaskFactory.configureTaskForImage: a Volume with an Image at
// container path "taskfs"): each volume with an image is mounted at
// <sandbox>/<container_path>. Images are not pulled: an image named N
// (Docker "name:tag", or an Appc name) is the root filesystem directory
// <ImageDir>/N, as a local Docker registry holds N as a tarball
// (provisioner/docker/image_tar_puller.cpp). Like the provisioner's copy
// backend, each container gets its own copy, so the executor may add
// users to it. Nothing is mounted here: wrapImages mounts them inside the
// executor's own mount namespace.
func (a *Agent) provisionImages(info mesos.ExecutorInfo, containerID, sandbox string) ([]imageVolume, error) {
	c := info.GetContainer()
	if c == nil || c.GetType() != mesos.ContainerInfo_MESOS {
		return nil, nil
	}
	var out []imageVolume
	for i, v := range c.GetVolumes() {
		img := v.GetImage()
		if img == nil {
			continue
		}
		name := img.GetDocker().GetName()
		if img.GetType() == mesos.Image_APPC {
			name = img.GetAppc().GetName()
		}
		if a.cfg.ImageDir == "" {
			return nil, fmt.Errorf("the executor's container has an image volume (%q at %s) but this agent provisions no images; start dewar-agent with --image-dir", name, v.GetContainerPath())
		}
		if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
			return nil, fmt.Errorf("image volume at %s: image name %q is not a directory name under --image-dir", v.GetContainerPath(), name)
		}
		src := filepath.Join(a.cfg.ImageDir, name)
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("image %q: no root filesystem directory %s under --image-dir", name, src)
		}
		if filepath.IsAbs(v.GetContainerPath()) {
			// The volume/image isolator needs an existing path there
			// for a container without a rootfs; Aurora uses "taskfs".
			return nil, fmt.Errorf("image volume at absolute path %s: only paths relative to the sandbox are supported", v.GetContainerPath())
		}
		rootfs := filepath.Join(a.provisionerDir(containerID), "rootfses", strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(rootfs), 0o700); err != nil {
			return nil, err
		}
		if out, err := exec.Command("cp", "-a", src, rootfs).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("provision image %q: cp -a %s %s: %v: %s", name, src, rootfs, err, out)
		}
		target := filepath.Join(sandbox, v.GetContainerPath())
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, fmt.Errorf("create the target of image volume %s: %w", target, err)
		}
		out = append(out, imageVolume{rootfs: rootfs, target: target, readOnly: v.GetMode() == mesos.RO})
	}
	return out, nil
}

// wrapImages makes argv mount the image volumes first, inside the new
// mount namespace the executor is started in (startProcess with
// newMountNS), as Mesos' launcher mounts the volume/image isolator's
// ContainerMountInfos in the container's namespace before it execs the
// executor (launch.cpp, prepareMounts). The mounts go away with the
// container's last process; the host's mount table never sees them.
// MS_BIND|MS_REC, as the isolator, and for an RO volume (Aurora's) a
// read-only remount, as Mesos' fs::mount does since 1.10 (commit
// 8f7892393, "Automatically remounted read-only bind mounts").
func wrapImages(vols []imageVolume, argv []string) []string {
	if len(vols) == 0 {
		return argv
	}
	script := ""
	args := []string{}
	for _, v := range vols {
		script += `mount --rbind "$1" "$2" && `
		if v.readOnly {
			script += `mount -o remount,bind,ro "$2" && `
		}
		script += `shift 2 && `
		args = append(args, v.rootfs, v.target)
	}
	script += `exec "$@"`
	return append(append([]string{"sh", "-c", script, "dewar-image-volumes"}, args...), argv...)
}

// removeImages deletes the container's provisioned images.
func (a *Agent) removeImages(containerID string) error {
	if containerID == "" {
		return nil
	}
	err := os.RemoveAll(a.provisionerDir(containerID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the container's provisioned images: %w", err)
	}
	return nil
}
