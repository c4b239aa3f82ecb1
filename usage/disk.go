package usage

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
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
	d, _, _ := walk(ctx, filepath.Clean(dir), max, "", false)
	return d
}

// FileBytes is the bytes under dir as Thermos counts them for its disk
// limit: twitter.common's dirutil.du walks the tree (os.walk, symlinked
// directories not followed) and adds up the size of every file, so
// apparent sizes, not allocated blocks, and no entry bound. Entries that
// vanish or cannot be read count as 0, as its safe_size does.
func FileBytes(dir string) int64 {
	dir = filepath.Clean(dir)
	_, n, _ := walk(context.Background(), dir, 0, dir, true)
	return n
}

// walk is one walk of root that yields both figures: DiskUse's of root
// (bounded by max) and, when sub is not "", FileBytes' of sub, and whether
// that total is complete. Past the bound it stops counting root; with
// subAll it goes on through sub, skipping every directory that neither is
// in sub nor leads to it, without it it stops there and the sub total is
// incomplete. root and sub are clean.
func walk(ctx context.Context, root string, max int, sub string, subAll bool) (Disk, int64, bool) {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	within := func(p, dir string) bool {
		return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) || dir == string(filepath.Separator)
	}
	var d Disk
	var subBytes int64
	subDone := sub != ""
	visits := 0
	filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: count what can be read
		}
		if visits%1024 == 0 && ctx.Err() != nil {
			d.Truncated = true
			subDone = false
			return filepath.SkipAll
		}
		visits++
		counting := d.Entries < max
		inSub := sub != "" && within(p, sub)
		if counting {
			d.Entries++
		} else {
			d.Truncated = true
			switch {
			case sub == "" || !subAll:
				subDone = false
				return filepath.SkipAll
			case !inSub && de.IsDir() && !within(sub, p):
				return filepath.SkipDir
			case !inSub || de.IsDir():
				return nil // a file outside sub, or a directory in or on the way to it
			}
		}
		info, err := de.Info() // lstat: a symlink is not followed
		if err != nil {
			return nil
		}
		if counting {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				d.Bytes += st.Blocks * 512
			} else {
				d.Bytes += info.Size()
			}
		}
		if inSub && !de.IsDir() {
			subBytes += info.Size()
		}
		return nil
	})
	return d, subBytes, subDone
}

// DiskSample is one walk of a run directory (SharedDisk).
type DiskSample struct {
	Disk           // the run directory, as DiskUse counts it
	SubBytes int64 // the files under the subdirectory, as FileBytes counts them
	// HasSub: SubBytes counts every file under the subdirectory. A walk
	// that only the checkpoint's sampler needed stops at the entry bound.
	HasSub bool
	Time   time.Time
}

// SharedDisk is the one walk of a task's run directory that serves every
// reader of its disk use: the checkpoint's samples (Record) and the disk
// limit (package disklimit, through Measure), which would otherwise walk
// the same sandbox each at its own interval. Each reader asks for a sample
// no older than half its own interval, so the faster reader's walks serve
// the slower one and neither's cadence stretches (a reader that accepted
// a sample its full interval old could, with its ticks a hair apart from
// the walks, reuse one twice). Concurrent askers share one walk.
//
// The limit's figure has no entry bound (Thermos' du), the sampler's has:
// a walk goes on past the bound through the subdirectory only when the
// limit needs it, or when the limit's next check is due within the
// sampler's half interval (so that the check reuses it). A sandbox above
// the bound is thus totalled once per limit interval, as without sharing,
// and the sampler's other walks stop at the bound.
type SharedDisk struct {
	root, sub  string
	maxEntries int
	// walk measures (subAll: the subdirectory in full); the real walk
	// unless a test counts or holds them.
	walk func(ctx context.Context, subAll bool) DiskSample

	mu       sync.Mutex
	last     DiskSample    // guarded by mu; zero Time: none yet
	lastSub  time.Time     // guarded by mu; when the last complete sub total began
	busy     chan struct{} // guarded by mu; closed when the walk under way ends
	subEvery time.Duration // guarded by mu; the limit's interval (Measure), 0: no limit
	subAsked time.Time     // guarded by mu; the limit's last ask
}

// NewSharedDisk walks root (DiskUse, at most maxEntries entries) and, in
// the same walk, totals sub as FileBytes does; a sub outside root gets a
// walk of its own, only when its total is needed.
func NewSharedDisk(root string, maxEntries int, sub string) *SharedDisk {
	s := &SharedDisk{root: filepath.Clean(root), maxEntries: maxEntries}
	if sub != "" {
		s.sub = filepath.Clean(sub)
	}
	s.walk = s.measure
	return s
}

func (s *SharedDisk) measure(ctx context.Context, subAll bool) DiskSample {
	at := time.Now()
	sub := s.sub
	outside := sub != "" && !(sub == s.root || strings.HasPrefix(sub, s.root+string(filepath.Separator)))
	if outside {
		sub = ""
	}
	d, n, complete := walk(ctx, s.root, s.maxEntries, sub, subAll)
	if outside {
		complete = false
		if subAll {
			_, n, complete = walk(ctx, s.sub, 0, s.sub, true)
		}
	}
	return DiskSample{Disk: d, SubBytes: n, HasSub: complete, Time: at}
}

// Sample returns a sample begun at most maxAge ago (maxAge 0: a new walk),
// with the subdirectory's complete total if needSub. A walk cut short by
// ctx is returned but not kept. If ctx ends while another reader's walk is
// under way, Sample returns the last kept sample, however old, and false
// when there is none: the caller has nothing measured to record.
func (s *SharedDisk) Sample(ctx context.Context, maxAge time.Duration, needSub bool) (DiskSample, bool) {
	for {
		s.mu.Lock()
		now := time.Now()
		if needSub {
			s.subAsked = now
		}
		if !s.last.Time.IsZero() && maxAge > 0 && now.Sub(s.last.Time) <= maxAge && (s.last.HasSub || !needSub) {
			d := s.last
			s.mu.Unlock()
			return d, true
		}
		if busy := s.busy; busy != nil {
			s.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				s.mu.Lock()
				d := s.last
				s.mu.Unlock()
				return d, !d.Time.IsZero()
			}
		}
		subAll := s.sub != "" && (needSub || s.subDue(now, maxAge))
		busy := make(chan struct{})
		s.busy = busy
		s.mu.Unlock()
		d := s.walk(ctx, subAll)
		s.mu.Lock()
		if ctx.Err() == nil {
			s.last = d
			if d.HasSub {
				s.lastSub = d.Time
			}
		}
		s.busy = nil
		close(busy)
		s.mu.Unlock()
		return d, true
	}
}

// subDue: a walk for a reader that takes samples up to maxAge old should
// total the subdirectory in full, because the limit has had no total since
// its last check and its next one is due within min(maxAge, half its
// interval), near enough to reuse this walk. Before the limit's first
// check (which comes at once when it starts) the first walk totals it.
// s.mu is held.
func (s *SharedDisk) subDue(now time.Time, maxAge time.Duration) bool {
	if s.subAsked.IsZero() {
		return s.lastSub.IsZero()
	}
	if s.subEvery <= 0 || s.lastSub.After(s.subAsked) {
		return false
	}
	window := min(maxAge, s.subEvery/2)
	return !now.Before(s.subAsked.Add(s.subEvery - window))
}

// Measure is a disklimit.Config.Measure for a reader every interval: the
// subdirectory's FileBytes from a sample at most interval/2 old.
func (s *SharedDisk) Measure(interval time.Duration) func(ctx context.Context, dir string) int64 {
	s.mu.Lock()
	s.subEvery = interval
	s.mu.Unlock()
	return func(ctx context.Context, _ string) int64 {
		d, _ := s.Sample(ctx, interval/2, true)
		return d.SubBytes
	}
}
