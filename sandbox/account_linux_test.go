package sandbox

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeNSS puts getent and id scripts first on PATH that answer like glibc's
// for users only the name service knows (as LDAP or sssd users are): one
// line per user in passwd ("name:x:uid:gid:gecos:home:shell"), groups by
// user ("name gid gid...", what `id -G` prints). Unknown keys exit 2
// (getent) and 1 (id), as the real commands do. It makes the test
// process's package-level choice (groups from `id -G`, as in the static
// build) for the test's duration.
func fakeNSS(t *testing.T, passwd, groups []string) {
	t.Helper()
	dir := t.TempDir()
	// script writes a command that checks its first argument, then prints
	// the answer for the key in $3 (cut from each line at sep: the key
	// before it, the answer the whole line or what follows).
	script := func(name, arg, sep string, whole bool, lines []string, unknown string) {
		var b strings.Builder
		b.WriteString("#!/bin/sh\n[ \"$1\" = " + arg + " ] && [ \"$2\" = -- ] || exit 1\ncase \"$3\" in\n")
		for _, l := range lines {
			key, rest, _ := strings.Cut(l, sep)
			if whole {
				rest = l
			}
			b.WriteString(key + ") echo '" + rest + "'; exit 0;;\n")
		}
		b.WriteString("esac\n" + unknown)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("getent", "passwd", ":", true, passwd, "exit 2\n")
	script("id", "-G", " ", false, groups, "echo \"id: '$3': no such user\" >&2\nexit 1\n")
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	was := groupsFromNSSCommand
	groupsFromNSSCommand = true
	t.Cleanup(func() { groupsFromNSSCommand = was })
}

// TestRoleKnownOnlyToNSS: a role that /etc/passwd does not list but the
// name service does (an LDAP user) resolves through getent, with the
// groups NSS gives it; Credential carries them when the executor is root.
func TestRoleKnownOnlyToNSS(t *testing.T) {
	fakeNSS(t,
		[]string{"dewar-ldap-9c1e:*:71234:71000:LDAP user:/home/ldap:/bin/bash"},
		[]string{"dewar-ldap-9c1e 71000 71001 71002"})
	a, err := lookupAccount("dewar-ldap-9c1e")
	if err != nil {
		t.Fatal(err)
	}
	if a.name != "dewar-ldap-9c1e" || a.uid != 71234 || a.gid != 71000 || !slices.Equal(a.groups, []uint64{71000, 71001, 71002}) {
		t.Errorf("account = %+v", a)
	}
	if os.Geteuid() != 0 {
		return
	}
	cred, err := Credential("dewar-ldap-9c1e")
	if err != nil {
		t.Fatal(err)
	}
	if cred == nil || cred.Uid != 71234 || cred.Gid != 71000 || !slices.Equal(cred.Groups, []uint32{71000, 71001, 71002}) {
		t.Errorf("credential = %+v", cred)
	}
}

// TestLocalUserGetsNSSGroups: a user in /etc/passwd gets its groups from
// `id -G` (NSS) in the static build, so an LDAP group of a local user
// counts.
func TestLocalUserGetsNSSGroups(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Fatalf("user 0: %v", err)
	}
	fakeNSS(t, nil, []string{root.Username + " 0 71003"})
	a, err := lookupAccount(root.Username)
	if err != nil {
		t.Fatal(err)
	}
	if a.uid != 0 || !slices.Equal(a.groups, []uint64{0, 71003}) {
		t.Errorf("account = %+v, want uid 0 and groups [0 71003]", a)
	}
}

// TestUnknownRoleSaysSo: a role neither /etc/passwd nor NSS knows fails
// with a message that names it and where it was looked for; a name service
// that cannot be asked says that instead.
func TestUnknownRoleSaysSo(t *testing.T) {
	fakeNSS(t, nil, nil)
	_, err := lookupUser("dewar-nobody-4b2d")
	if err == nil || !strings.Contains(err.Error(), `user "dewar-nobody-4b2d": no such user in /etc/passwd or the name service`) {
		t.Errorf("lookupUser error = %v", err)
	}

	t.Setenv("PATH", t.TempDir()) // neither getent nor id
	dirs := nssCommandDirs
	nssCommandDirs = nil
	t.Cleanup(func() { nssCommandDirs = dirs })
	_, err = lookupUser("dewar-nobody-4b2d")
	if err == nil || !strings.Contains(err.Error(), "getent, which would ask the name service (LDAP, sssd), is not installed") {
		t.Errorf("lookupUser without getent: %v", err)
	}
}

// TestGetentGarbage: output that is no passwd entry is an error naming the
// command, not a made-up user.
func TestGetentGarbage(t *testing.T) {
	for _, line := range []string{"dewar-bad-1:x:notanumber:1:::", "dewar-bad-2:x:1", "dewar-bad-3:x:1:" + strconv.Itoa(1<<33) + ":::"} {
		name, _, _ := strings.Cut(line, ":")
		fakeNSS(t, []string{line}, []string{name + " 1"})
		if _, err := lookupAccount(name); err == nil || !strings.Contains(err.Error(), "getent passwd") {
			t.Errorf("%q: error %v, want one naming getent passwd", line, err)
		}
	}
}
