package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// MesosHomeEnv names the directory of a real Mesos 1.12 build, /opt/mesos
// when unset (`make test-mesos MESOS_HOME=...` passes it).
const MesosHomeEnv = "DEWAR_MESOS_HOME"

// MesosHome returns the directory of a real Mesos 1.12 (sbin/mesos-master,
// sbin/mesos-agent, bin/mesos-execute, libexec/mesos/), skipping (or
// failing, under DEWAR_REQUIRE_INTEGRATION=1) the test when it is missing.
// Mesos is a test dependency like ZooKeeper: `make deps` runs the
// installer named by the Makefile's MESOS_INSTALL when that file exists.
func MesosHome(t testing.TB) string {
	t.Helper()
	home := os.Getenv(MesosHomeEnv)
	if home == "" {
		home = "/opt/mesos"
	}
	for _, b := range []string{"sbin/mesos-master", "sbin/mesos-agent", "bin/mesos-execute"} {
		if _, err := os.Stat(filepath.Join(home, b)); err != nil {
			Missing(t, "a real Mesos 1.12 is not installed in %s (%v): install one there (as root; `make deps MESOS_INSTALL=path/to/installer` runs an installer) or set %s", home, err, MesosHomeEnv)
		}
	}
	return home
}
