// Package shell finds the shell that processes and shell health checks run in.
package shell

import (
	"errors"
	"fmt"
	"os/exec"
)

// hostDefaultPath is the PATH the Mesos containerizer gives a launched
// command that has none (src/slave/containerizer/mesos/launch.cpp, via
// stout's os::host_default_path): the agent does not pass its own
// environment on, so an executor must not count on an inherited PATH.
var hostDefaultPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Bash finds bash on PATH, or else in the directories of the host's
// default PATH.
func Bash() (string, error) {
	p, err := exec.LookPath("bash")
	if err == nil {
		return p, nil
	}
	for _, dir := range hostDefaultPath {
		if p, err2 := exec.LookPath(dir + "/bash"); err2 == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("processes run in bash, which is neither on PATH nor in %v: %w", hostDefaultPath, errors.Unwrap(err))
}
