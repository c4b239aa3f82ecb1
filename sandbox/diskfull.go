package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskFullNote explains a process failure that a full sandbox most likely
// caused: a process that dies of ENOSPC usually says so only on its
// stderr (which could not be written either), and the exit status alone
// ("exit status 1") sends the operator looking elsewhere. Thermos' runner
// says nothing here; Mesos reports the agent's own disk enforcement as
// REASON_CONTAINER_LIMITATION_DISK, which a filesystem that is simply full
// never triggers. It is "" when dir's filesystem has space left for an
// unprivileged user or cannot be read.
func diskFullNote(dir string, statfs func(string, *unix.Statfs_t) error) string {
	var st unix.Statfs_t
	if dir == "" || statfs(dir, &st) != nil || st.Bavail > 0 {
		return ""
	}
	size := st.Blocks * uint64(st.Bsize)
	return fmt.Sprintf("the sandbox's disk is full (no space left on its %s filesystem): free space there or give the task more disk",
		formatBytes(size))
}

// formatBytes renders n as KiB, MiB or GiB with one decimal.
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
