package usage

import (
	"context"
	"sync/atomic"
)

// NewSamplerWithCgroups is newSampler for tests: the executor's
// /proc/self/cgroup read from selfCgroup, hierarchies mounted at mount.
var NewSamplerWithCgroups = newSampler

// CountWalks makes s count its walks in the returned counter.
func CountWalks(s *SharedDisk) *atomic.Int64 {
	var n atomic.Int64
	walk := s.walk
	s.walk = func(ctx context.Context) DiskSample {
		n.Add(1)
		return walk(ctx)
	}
	return &n
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
