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
	p, err := LookPath("bash", hostDefaultPath...)
	if err != nil {
		return "", fmt.Errorf("processes run in bash, which is neither on PATH nor in %v: %w", hostDefaultPath, errors.Unwrap(err))
	}
	return p, nil
}

// LookPath finds the program name on PATH, or else in dirs: a process the
// Mesos agent starts may have no PATH, or one without the sbin directories.
// The error is exec.LookPath's for PATH.
func LookPath(name string, dirs ...string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range dirs {
		if p, err2 := exec.LookPath(dir + "/" + name); err2 == nil {
			return p, nil
		}
	}
	return "", err
}
