package usage

import (
	"context"
	"sync/atomic"
)

// NewSamplerWithCgroups is newSampler for tests: the executor's
// /proc/self/cgroup read from selfCgroup, hierarchies mounted at mount.
var NewSamplerWithCgroups = newSampler

// CountWalks makes s count its walks in the returned counters: all of
// them, and those that went on past the entry bound to total the
// subdirectory (the expensive ones).
func CountWalks(s *SharedDisk) (all, pastBound *atomic.Int64) {
	all, pastBound = new(atomic.Int64), new(atomic.Int64)
	walk := s.walk
	s.walk = func(ctx context.Context, full bool) DiskSample {
		all.Add(1)
		d := walk(ctx, full)
		if d.Truncated && d.HasSub {
			pastBound.Add(1)
		}
		return d
	}
	return all, pastBound
}

// HoldWalks makes s's walks wait until hold is closed (or their ctx ends)
// before walking, and reports each start on started.
func HoldWalks(s *SharedDisk, hold <-chan struct{}, started chan<- struct{}) {
	walk := s.walk
	s.walk = func(ctx context.Context, full bool) DiskSample {
		started <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return walk(ctx, full)
	}
}

// PIDsInSession lists the processes of /proc whose session is sid.
func PIDsInSession(sid int) []int {
	all, _ := allPIDs("/proc")
	var out []int
	for _, pid := range all {
		if st, err := readStat("/proc", pid); err == nil && st.session == sid {
			out = append(out, pid)
		}
	}
	return out
}
