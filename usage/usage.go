// Package usage measures what a task uses, for its checkpoint: the CPU
// time and resident memory of each process run's tree, and the disk use of
// the task's run directory. The executor samples at a modest interval
// (Record) so that dewar-observer shows resource use without reading /proc
// itself, also for finished tasks and for tasks in another PID namespace.
package usage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// userHZ is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times:
// 100 on every Linux architecture dewar runs on.
const userHZ = 100

// Tree is the resource use of one session: a process run is `bash -c` in a
// session of its own whose id is the run's pid (package sandbox), so the
// session is the run and every descendant that did not start a session of
// its own.
type Tree struct {
	// CPUSeconds is utime+stime+cutime+cstime of the live members: what
	// they used plus what their reaped children used, so a shell's
	// short-lived commands count.
	CPUSeconds float64
	RSSBytes   int64
	Processes  int
	// LeaderStart is when the session leader (the run) started; zero when
	// it is gone.
	LeaderStart time.Time
}

// Sampler reads process trees from /proc.
type Sampler struct {
	root string  // where /proc is mounted
	boot float64 // boot time, seconds since the epoch
	// cgroup is the executor's container cgroup directory (see
	// containerCgroup); "" means every process must be looked at.
	cgroup string
}

// NewSampler reads /proc at root ("" for /proc). When the executor runs in
// a container cgroup of its own (as every Mesos container does), only the
// processes of that cgroup are looked at.
func NewSampler(root string) (*Sampler, error) {
	if root == "" {
		root = "/proc"
	}
	return newSampler(root, filepath.Join(root, "self", "cgroup"), DefaultCgroupMount)
}

// NewMachineSampler reads /proc at root ("" for /proc) and looks at every
// process on the machine, whatever cgroup the caller is in: for
// dewar-observer, which sees every container of the agent.
func NewMachineSampler(root string) (*Sampler, error) {
	if root == "" {
		root = "/proc"
	}
	return newSampler(root, "", "")
}

func newSampler(root, selfCgroup, cgroupMount string) (*Sampler, error) {
	boot, err := bootTime(root)
	if err != nil {
		return nil, fmt.Errorf("read the boot time: %w (is /proc mounted at %s?)", err, root)
	}
	s := &Sampler{root: root, boot: float64(boot)}
	if selfCgroup != "" {
		if b, err := os.ReadFile(selfCgroup); err == nil {
			s.cgroup = containerCgroup(b, cgroupMount)
		}
	}
	return s, nil
}

// Scope says which processes Sessions looks at: the container cgroup
// directory, or "" for every process.
func (s *Sampler) Scope() string { return s.cgroup }

// Sessions sums the live processes of each session in sids. Every
// candidate's stat is read once. The candidates are the processes of the
// executor's container cgroup and its children (Scope), so the cost grows
// with the task's processes; in the root cgroups (no container) or when the
// cgroup cannot be read, every process on the machine, which is what
// BenchmarkSample measures. /proc/<pid>/task/<tid>/children would be
// exact, but CONFIG_PROC_CHILDREN is missing on some kernels. A process
// moved out of the container's cgroup on purpose is not counted. A nil
// sids sums every session.
//
// RSS is each member's VmRSS (/proc/<pid>/status), which the kernel sums
// exactly; /proc/<pid>/stat's rss reads its per-CPU counters without
// folding in what each CPU has not flushed yet, and shows a small process
// that has just started as 0.
func (s *Sampler) Sessions(ctx context.Context, sids map[int]bool) (map[int]Tree, error) {
	out := make(map[int]Tree, len(sids))
	if sids != nil && len(sids) == 0 {
		return out, nil
	}
	pids, err := s.candidates()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for i, pid := range pids {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		st, err := readStat(s.root, pid)
		if err != nil || st.session <= 0 || (sids != nil && !sids[st.session]) {
			continue // gone meanwhile, or not ours
		}
		t := out[st.session]
		t.CPUSeconds += float64(st.utime+st.stime) / userHZ
		t.CPUSeconds += float64(st.cutime+st.cstime) / userHZ
		rss := st.rssPages * int64(os.Getpagesize())
		if vmRSS, ok := readVmRSS(s.root, pid); ok {
			rss = vmRSS
		}
		t.RSSBytes += rss
		t.Processes++
		if st.pid == st.session {
			sec := s.boot + float64(st.starttime)/userHZ
			t.LeaderStart = time.UnixMilli(int64(sec * 1000))
		}
		out[st.session] = t
	}
	return out, nil
}

// candidates are the processes Sessions reads.
func (s *Sampler) candidates() ([]int, error) {
	if s.cgroup != "" {
		pids, err := cgroupPIDs(s.cgroup)
		if err == nil {
			return pids, nil
		}
		// The cgroup went away under us (the container is being
		// destroyed): look at everything rather than report nothing.
	}
	return allPIDs(s.root)
}
