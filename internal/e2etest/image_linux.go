package e2etest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dewarhq/dewar/internal/testenv"
)

// ImageMarker is a line of the test image's /etc/os-release, found nowhere
// on the host: a process that reads it runs inside the image.
const ImageMarker = "ID=dewar-test-image"

// BusyboxRootFS writes a minimal root filesystem from Debian's
// busybox-static into root. Busybox has no bash applet, so /bin/bash is a
// shim to its sh, standing in for an image's bash (Thermos runs every
// command as /bin/bash -c). /etc/passwd and /etc/group hold root only;
// /etc/os-release holds ImageMarker. root is made traversable by all.
func BusyboxRootFS(t testing.TB, root string) {
	t.Helper()
	const busybox = "/bin/busybox"
	b, err := os.ReadFile(busybox)
	if err != nil {
		testenv.Missing(t, "%s: install Debian's busybox-static (make deps): %v", busybox, err)
	}
	for _, d := range []string{"bin", "etc", "tmp", "mnt/mesos/sandbox"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"bin/busybox":    string(b),
		"bin/bash":       "#!/bin/sh\nexec /bin/sh \"$@\"\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":      "root:x:0:\n",
		"etc/os-release": "NAME=\"dewar test image\"\n" + ImageMarker + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range []string{"sh", "id", "cat", "grep", "echo", "pwd", "sleep", "test", "ls", "touch"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
}

// DockerArchive writes the root filesystem root as image name:tag into a
// local Docker registry directory, as Mesos' agent reads one with
// --docker_registry=<dir>: <dir>/<name>:<tag>.tar in `docker save`'s
// format, a "repositories" file naming the top layer and one directory
// per layer with its "json" manifest and "layer.tar"
// (src/slave/containerizer/mesos/provisioner/docker/image_tar_puller.cpp).
func DockerArchive(t testing.TB, root, registry, name, tag string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name + ":" + tag))
	layer := hex.EncodeToString(sum[:])
	build := t.TempDir()
	if err := os.MkdirAll(filepath.Join(build, layer), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", root, "-cf", filepath.Join(build, layer, "layer.tar"), ".").CombinedOutput(); err != nil {
		t.Fatalf("tar the image's layer: %v\n%s", err, out)
	}
	manifest, _ := json.Marshal(map[string]string{"id": layer, "parent": ""})
	repos, _ := json.Marshal(map[string]map[string]string{name: {tag: layer}})
	for p, b := range map[string][]byte{filepath.Join(layer, "json"): manifest, filepath.Join(layer, "VERSION"): []byte("1.0"), "repositories": repos} {
		if err := os.WriteFile(filepath.Join(build, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(registry, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(registry, name+":"+tag+".tar")
	if out, err := exec.Command("tar", "-C", build, "-cf", archive, "repositories", layer).CombinedOutput(); err != nil {
		t.Fatalf("tar the image archive: %v\n%s", err, out)
	}
}
