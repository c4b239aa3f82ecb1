package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/dewarhq/dewar/internal/shell"
)

// Roles come from the system's name service: /etc/passwd, but on many
// clusters LDAP or sssd through NSS. A cgo build of the executor asks NSS
// in process (os/user calls getpwnam_r and getgrouplist), at the price of
// linking libc and its NSS modules (about 2 MiB more resident). The
// default build is static (CGO_ENABLED=0), where os/user reads only
// /etc/passwd and /etc/group; it asks NSS through the same commands an
// operator would: `getent passwd NAME` for a user /etc/passwd does not
// know, and `id -G NAME` for the groups (getgrouplist, so LDAP groups of a
// local user count too). Thermos resolves the role through NSS as well,
// with Python's pwd and grp modules (src/main/python/apache/thermos/core/
// process.py, ProcessBase._getpwuid: pwd.getpwnam; ProcessBase._setuid:
// the groups listing the user in grp.getgrall()).

// nssCommandTimeout bounds one getent or id call: a wedged LDAP server
// must not wedge the task's start.
const nssCommandTimeout = 30 * time.Second

// account is a user as the name service knows it.
type account struct {
	name     string
	uid, gid uint64
	// groups are the ids of every group of the user (primary included),
	// as getgrouplist returns them.
	groups []uint64
}

// errUnknownUser: neither /etc/passwd nor NSS knows the user.
var errUnknownUser = errors.New("no such user")

// lookupAccount finds name: os/user first, then getent for a user only
// NSS knows. Groups come from os/user when it asks NSS itself (cgo), from
// `id -G` otherwise.
func lookupAccount(name string) (account, error) {
	var a account
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown):
		if a, err = getentPasswd(name); err != nil {
			return account{}, err
		}
	case err != nil:
		return account{}, fmt.Errorf("look up user %q: %w", name, err)
	default:
		a.name = u.Username
		if a.uid, err = strconv.ParseUint(u.Uid, 10, 32); err != nil {
			return account{}, fmt.Errorf("user %q has a non-numeric uid %q: %w", name, u.Uid, err)
		}
		if a.gid, err = strconv.ParseUint(u.Gid, 10, 32); err != nil {
			return account{}, fmt.Errorf("user %q has a non-numeric gid %q: %w", name, u.Gid, err)
		}
	}
	if groupsFromNSSCommand {
		a.groups, err = idGroups(a.name)
		if err == nil {
			return a, nil
		}
		if u == nil {
			// Only NSS knows the user: /etc/group cannot hold its groups.
			return account{}, err
		}
		// Fall through to /etc/group (an agent without `id`).
	}
	if u == nil {
		a.groups = []uint64{a.gid}
		return a, nil
	}
	gids, err := u.GroupIds()
	if err != nil {
		return account{}, fmt.Errorf("supplementary groups of user %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, n)
		}
	}
	return a, nil
}

// getentPasswd asks NSS for name: `getent passwd NAME` prints
// name:password:uid:gid:gecos:home:shell, or exits 2 when the key is not
// found (getent(1), EXIT STATUS).
func getentPasswd(name string) (account, error) {
	out, err := nssCommand("getent", "passwd", "--", name)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return account{}, fmt.Errorf("%w in /etc/passwd or the name service (getent passwd %s found nothing)", errUnknownUser, name)
	case errors.Is(err, exec.ErrNotFound):
		return account{}, fmt.Errorf("%w in /etc/passwd, and getent, which would ask the name service (LDAP, sssd), is not installed: %w", errUnknownUser, err)
	case err != nil:
		return account{}, fmt.Errorf("ask the name service for user %q (getent passwd): %w", name, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] == "" {
		return account{}, fmt.Errorf("getent passwd %s printed %q, not a passwd entry", name, line)
	}
	a := account{name: f[0]}
	if a.uid, err = strconv.ParseUint(f[2], 10, 32); err != nil {
		return account{}, fmt.Errorf("user %q has a non-numeric uid %q (getent passwd): %w", name, f[2], err)
	}
	if a.gid, err = strconv.ParseUint(f[3], 10, 32); err != nil {
		return account{}, fmt.Errorf("user %q has a non-numeric gid %q (getent passwd): %w", name, f[3], err)
	}
	return a, nil
}

// idGroups is `id -G NAME`: every group id of the user, as getgrouplist
// finds them through NSS.
func idGroups(name string) ([]uint64, error) {
	out, err := nssCommand("id", "-G", "--", name)
	if err != nil {
		return nil, fmt.Errorf("groups of user %q (id -G): %w", name, err)
	}
	var gids []uint64
	for _, g := range strings.Fields(string(out)) {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("id -G %s printed %q, not group ids", name, bytes.TrimSpace(out))
		}
		gids = append(gids, n)
	}
	if len(gids) == 0 {
		return nil, fmt.Errorf("id -G %s printed no group", name)
	}
	return gids, nil
}

// nssCommandDirs are where nssCommand looks for a command PATH lacks.
var nssCommandDirs = []string{"/usr/bin", "/bin"}

// nssCommand runs a name-service command found on PATH (or in /usr/bin,
// /bin: the agent may give the executor no PATH) and returns its stdout.
func nssCommand(name string, args ...string) ([]byte, error) {
	path, err := shell.LookPath(name, nssCommandDirs...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), nssCommandTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && stderr.Len() > 0 {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
	}
	return out, err
}
