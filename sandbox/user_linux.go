package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
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
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("run processes as user %q: no such user on this host; create the user or change the task's user (Aurora role): %w", name, err)
		}
		return nil, fmt.Errorf("look up user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q has a non-numeric gid %q: %w", name, u.Gid, err)
	}
	id := &identity{name: u.Username}
	if int(uid) == os.Geteuid() {
		return id, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run processes as user %q: the executor runs as uid %d and only root can switch users; run the executor as root or as %q",
			name, os.Geteuid(), name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("supplementary groups of user %q: %w", name, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			continue
		}
		cred.Groups = append(cred.Groups, uint32(n))
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
