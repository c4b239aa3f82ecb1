//go:build !cgo || osusergo

package sandbox

// groupsFromNSSCommand: without cgo, os/user reads only /etc/group; `id -G`
// asks NSS for a user's groups.
var groupsFromNSSCommand = true
