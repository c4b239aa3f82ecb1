//go:build cgo && !osusergo

package sandbox

// groupsFromNSSCommand: os/user asks NSS itself (getgrouplist) in a cgo
// build, so a user's groups come from it.
var groupsFromNSSCommand = false
