// Package testenv decides what a test does when something it needs from the
// machine (root, ZooKeeper, CNI plugins) is missing.
//
// Outside CI such a test skips and says what is missing. `make test` sets
// DEWAR_REQUIRE_INTEGRATION=1, which turns every such skip into a failure, so a
// CI run can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireIntegrationEnv is the variable `make test` sets.
const RequireIntegrationEnv = "DEWAR_REQUIRE_INTEGRATION"

// Required reports whether missing prerequisites must fail tests.
func Required() bool { return os.Getenv(RequireIntegrationEnv) == "1" }

// Missing skips the test with the reason, or fails it when integration
// tests are required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("integration prerequisite missing ("+RequireIntegrationEnv+"=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// NeedRoot skips (or fails) unless the test runs as root, which network
// namespaces, bridges and user switching need.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces; run as root or via `make test`")
	}
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CNIPluginDir is where `make deps` installs the reference CNI plugins
// (override with DEWAR_CNI_PLUGINS_DIR). The test skips (or fails) when the
// bridge plugin is not there.
func CNIPluginDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DEWAR_CNI_PLUGINS_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), ".tools", "cni")
	}
	if _, err := os.Stat(filepath.Join(dir, "bridge")); err != nil {
		Missing(t, "CNI reference plugins not found in %s; run `make deps`", dir)
	}
	return dir
}

// ZooKeeperJar returns the path of Debian's zookeeper.jar classpath pieces,
// or skips (fails) when ZooKeeper or java is not installed.
func ZooKeeperJar(t testing.TB) string {
	t.Helper()
	const jar = "/usr/share/java/zookeeper.jar"
	if _, err := os.Stat(jar); err != nil {
		Missing(t, "ZooKeeper not installed (%s missing); run `make deps` (Debian package zookeeper)", jar)
	}
	if _, err := exec.LookPath("java"); err != nil {
		Missing(t, "java not on PATH; run `make deps`")
	}
	return jar
}
