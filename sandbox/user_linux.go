package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"syscall"
)

// identity is the user processes run as.
type identity struct {
	name string
	// cred is nil when the executor already is that user.
	cred *syscall.Credential
}

// lookupUser resolves Options.User before anything runs. Switching users
// needs root, as in Thermos.
func lookupUser(name string) (*identity, error) {
	if name == "" {
		return nil, nil
	}
	a, err := lookupAccount(name)
	if errors.Is(err, errUnknownUser) {
		return nil, fmt.Errorf("run processes as user %q: %w; create the user or change the task's user (Aurora role)", name, err)
	}
	if err != nil {
		return nil, err
	}
	id := &identity{name: a.name}
	if int(a.uid) == os.Geteuid() {
		return id, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run processes as user %q: the executor runs as uid %d and only root can switch users; run the executor as root or as %q",
			name, os.Geteuid(), name)
	}
	cred := &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	for _, g := range a.groups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	id.cred = cred
	return id, nil
}

// Credential is what a child of the executor needs to run as user name, as
// the task's processes do (supplementary groups included): nil when the
// executor already is that user or name is empty. Health-check commands use
// it so that they run as the task runs.
func Credential(name string) (*syscall.Credential, error) {
	id, err := lookupUser(name)
	if err != nil || id == nil {
		return nil, err
	}
	return id.cred, nil
}

// userName is the name of the user the processes run as: id's, or the
// executor's own when id is nil ("" if the executor's uid has no name).
func userName(id *identity) string {
	if id != nil {
		return id.name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
