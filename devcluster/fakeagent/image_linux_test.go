package fakeagent

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func imageExecutor(name string) mesos.ExecutorInfo {
	return mesos.ExecutorInfo{Container: &mesos.ContainerInfo{
		Type: mesos.ContainerInfo_MESOS.Enum(),
		Volumes: []mesos.Volume{{ContainerPath: "taskfs", Mode: mesos.RO.Enum(),
			Image: &mesos.Image{Type: mesos.Image_DOCKER.Enum(), Docker: &mesos.Image_Docker{Name: name}}}},
	}}
}

// TestProvisionImages: an image volume gets its own copy of
// <ImageDir>/<name>, mounted (by the wrapped argv) at
// <sandbox>/<container_path>, as Mesos' volume/image isolator; an agent
// without images, or without that image, refuses the launch saying so.
func TestProvisionImages(t *testing.T) {
	images := t.TempDir()
	if err := os.MkdirAll(filepath.Join(images, "busybox:latest", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "busybox:latest", "etc", "os-release"), []byte("ID=test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	work, sandbox := t.TempDir(), t.TempDir()
	a := &Agent{cfg: Config{WorkDir: work, ImageDir: images}}
	vols, err := a.provisionImages(imageExecutor("busybox:latest"), "c1", sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].target != filepath.Join(sandbox, "taskfs") || !strings.HasPrefix(vols[0].rootfs, a.provisionerDir("c1")) {
		t.Fatalf("volumes %+v", vols)
	}
	if b, err := os.ReadFile(filepath.Join(vols[0].rootfs, "etc", "os-release")); err != nil || string(b) != "ID=test\n" {
		t.Errorf("provisioned copy: %q, %v", b, err)
	}
	if fi, err := os.Stat(vols[0].target); err != nil || !fi.IsDir() {
		t.Errorf("mount target %s: %v", vols[0].target, err)
	}
	argv := wrapImages(vols, []string{"/bin/executor", "--flag"})
	if argv[0] != "sh" || !slices.Equal(argv[len(argv)-2:], []string{"/bin/executor", "--flag"}) {
		t.Errorf("argv %q", argv)
	}
	// The wrapper execs the executor with its own arguments after the mounts.
	// (The mounts echoed: an RO volume is bound, then remounted read-only.)
	if out, err := exec.Command("sh", "-c", strings.ReplaceAll(argv[2], "mount ", "echo "), argv[3], "src", "dst", "echo", "ran").CombinedOutput(); err != nil ||
		string(out) != "--rbind src dst\n-o remount,bind,ro dst\nran\n" {
		t.Errorf("wrapper script: %q, %v", out, err)
	}
	if err := a.removeImages("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.provisionerDir("c1")); !os.IsNotExist(err) {
		t.Errorf("provisioned copy left after removal: %v", err)
	}

	for _, tc := range []struct {
		name, image, imageDir, want string
	}{
		{"no image dir", "busybox:latest", "", "--image-dir"},
		{"unknown image", "debian:jessie", images, "no root filesystem directory"},
		{"path in name", "../busybox:latest", images, "not a directory name"},
	} {
		a := &Agent{cfg: Config{WorkDir: work, ImageDir: tc.imageDir}}
		if _, err := a.provisionImages(imageExecutor(tc.image), "c2", sandbox); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
