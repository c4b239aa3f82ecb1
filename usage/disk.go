package usage

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
)

// DefaultMaxEntries bounds a disk walk: a sandbox with more entries is
// reported as at least what the walk counted, so that one huge sandbox
// cannot make every sample expensive.
const DefaultMaxEntries = 100_000

// Disk is the disk use of a directory tree.
type Disk struct {
	Bytes     int64
	Entries   int
	Truncated bool // the walk stopped at the bound (or ctx): Bytes is a lower bound
}

// DiskUse counts dir as du does: allocated blocks of every entry,
// symbolic links counted as themselves and never followed (a link cannot
// lead the walk out of the sandbox), unreadable parts skipped. It stops
// after max entries (<= 0: DefaultMaxEntries) or when ctx is done.
func DiskUse(ctx context.Context, dir string, max int) Disk {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	var d Disk
	filepath.WalkDir(dir, func(_ string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: count what can be read
		}
		if d.Entries >= max || (d.Entries%1024 == 0 && ctx.Err() != nil) {
			d.Truncated = true
			return filepath.SkipAll
		}
		d.Entries++
		info, err := de.Info() // lstat: a symlink is not followed
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			d.Bytes += st.Blocks * 512
		} else {
			d.Bytes += info.Size()
		}
		return nil
	})
	return d
}
