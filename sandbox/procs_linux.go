package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes this process the child subreaper of its
// descendants (prctl PR_SET_CHILD_SUBREAPER): an orphan, even one that
// double-forked out of its session, is reparented here instead of to init,
// so the Runner can still find, kill and reap it.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// reg is the process-wide registry shared by all Runners. mu guards the
// following fields, and is held across cmd.Start and across every
// scan-then-signal, so a fresh child is never mistaken for an orphan and a
// pid is never signalled after it could have been reused by a new run.
var reg = struct {
	mu sync.Mutex
	// children are the runs started by any Runner whose Wait has not
	// returned; their statuses belong to exec.Cmd.Wait.
	children map[int]*child
	// sessions maps a session id (the pid of a run's bash) to its Runner,
	// until the session is empty and its leader reaped (see classifyLocked).
	sessions map[int]*Runner
	// runners maps the markers of live Runners to them.
	runners map[string]*Runner
}{children: map[int]*child{}, sessions: map[int]*Runner{}, runners: map[string]*Runner{}}

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	pid, ppid, sid int
	state          byte // 'Z' for a zombie
}

// scanProcs reads every process's stat. Processes that vanish meanwhile are
// skipped.
func scanProcs() ([]procInfo, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	out := make([]procInfo, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		if pi, ok := parseStat(pid, b); ok {
			out = append(out, pi)
		}
	}
	return out, nil
}

// parseStat reads "pid (comm) state ppid pgrp session ...". comm may hold
// spaces and parentheses, so fields start after the last ')'.
func parseStat(pid int, b []byte) (procInfo, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	pi := procInfo{pid: pid, state: f[0][0]}
	var err error
	if pi.ppid, err = strconv.Atoi(string(f[1])); err != nil {
		return procInfo{}, false
	}
	if pi.sid, err = strconv.Atoi(string(f[3])); err != nil {
		return procInfo{}, false
	}
	return pi, true
}

// classifyLocked splits a snapshot into the processes of r and adopted
// children. r's processes are the members of its sessions, the orphans
// reparented to this process that carry r's marker in their environment,
// and the descendants of both. Adopted children are the other children of
// this process that no Runner started, no live Runner claims and that live
// in a session other than this process's; they only exist when this process
// is a subreaper (otherwise every child of it was started by some code in
// it, which must not be killed). reg.mu must be held.
func (r *Runner) classifyLocked(ps []procInfo) (mine, adopted []procInfo) {
	self := os.Getpid()
	ownSession := -1
	live := make(map[int]bool) // r's sessions that still have members
	kids := make(map[int][]procInfo)
	in := make(map[int]bool)
	var queue []procInfo
	claim := func(p procInfo) {
		in[p.pid] = true
		queue = append(queue, p)
	}
	for _, p := range ps {
		if p.pid == self {
			ownSession = p.sid
		}
		kids[p.ppid] = append(kids[p.ppid], p)
		// Every member of a run's session has its id as sid, whatever
		// process group it moved to; only a process with that very pid
		// could start a new session of that id.
		if p.pid != self && reg.sessions[p.sid] == r {
			claim(p)
			live[p.sid] = true
		}
	}
	// Forget r's empty sessions whose leader has been reaped: nothing can
	// join them any more, and their ids may now be reused by anyone.
	for sid, owner := range reg.sessions {
		if owner == r && !live[sid] && reg.children[sid] == nil {
			delete(reg.sessions, sid)
		}
	}
	subreaper := isSubreaper()
	for _, p := range kids[self] {
		if in[p.pid] || reg.children[p.pid] != nil || reg.sessions[p.sid] != nil {
			continue
		}
		switch owner := markedBy(p.pid); {
		case owner == r:
			claim(p)
		case owner == nil && subreaper && p.sid != ownSession:
			// A child still in this process's session was started by code
			// here (exec.Command, health checks), not orphaned by a task: a
			// task's processes all start in sessions of their own.
			adopted = append(adopted, p)
		}
	}
	// Descendants, also those that left the session while their parent lives.
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		mine = append(mine, p)
		for _, k := range kids[p.pid] {
			if !in[k.pid] && k.pid != self {
				claim(k)
			}
		}
	}
	return mine, adopted
}

// markerEnv names the variable every process of a Runner inherits, so that
// an orphan which left its session can still be told apart: its value is
// "<executor pid>-<runner number>".
const markerEnv = "DEWAR_SANDBOX_RUNNER"

var runnerSeq atomic.Uint64

func newMarker() string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(runnerSeq.Add(1), 10)
}

// markedBy returns the live Runner whose marker pid's environment carries,
// or nil. reg.mu must be held.
func markedBy(pid int) *Runner {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	prefix := []byte(markerEnv + "=")
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			return reg.runners[string(v)]
		}
	}
	return nil
}

func isSubreaper() bool {
	var v int32
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0)
	return errno == 0 && v != 0
}

// signalAll signals every process of the task and every adopted child, and
// returns how many processes of the task were alive.
func (r *Runner) signalAll(sig syscall.Signal) int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	ps, err := scanProcs()
	if err != nil {
		r.log.Error("cannot find the task's processes", zap.Error(err))
		return 0
	}
	mine, adopted := r.classifyLocked(ps)
	r.signalLocked(adopted, sig)
	return r.signalLocked(mine, sig)
}

// killGroup SIGKILLs what is left in the process group of a run that has
// exited but is not reaped yet, as Thermos does after every run. The group
// id is the run's pid, which the kernel keeps reserved while the run is a
// zombie, so the signal can only reach the run's own group. Descendants that
// left the group are found by the scans of CLEANING and of the final sweep;
// a scan per exit would cost more than the run itself on a busy host.
func (r *Runner) killGroup(pgid int) {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.log.Warn("cannot kill the leftovers of a run", zap.Int("pgid", pgid), zap.Error(err))
	}
}

// signalLocked signals the live processes of ps and returns how many there
// were.
func (r *Runner) signalLocked(ps []procInfo, sig syscall.Signal) int {
	n := 0
	for _, p := range ps {
		if p.state == 'Z' {
			continue
		}
		n++
		if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			r.log.Warn("cannot signal process", zap.Int("pid", p.pid), zap.String("signal", sig.String()), zap.Error(err))
		}
	}
	return n
}

// anyLeft reports whether a process of the task (tracked or not) is alive.
func (r *Runner) anyLeft() bool {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	ps, err := scanProcs()
	if err != nil {
		return false
	}
	mine, _ := r.classifyLocked(ps)
	for _, p := range mine {
		if p.state != 'Z' {
			return true
		}
	}
	return false
}

// reapLocked collects the zombies among ps that are children of this
// process, one pid at a time and never a tracked run (its exec.Cmd.Wait
// owns that status). It returns how many of ps remain: alive, or zombies
// someone else must reap first.
func reapLocked(ps []procInfo) int {
	self := os.Getpid()
	left := 0
	for _, p := range ps {
		if reg.children[p.pid] != nil {
			continue
		}
		if p.state == 'Z' && p.ppid == self {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil); err == nil && pid == p.pid {
				continue
			}
		}
		left++
	}
	return left
}

// reapOrphans reaps zombie orphans of the task while it runs.
func (r *Runner) reapOrphans() {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	ps, err := scanProcs()
	if err != nil {
		r.log.Error("cannot scan for orphans", zap.Error(err))
		return
	}
	mine, _ := r.classifyLocked(ps)
	reapLocked(mine)
}

// sweepLimit bounds the final sweep; only a process stuck in the kernel
// (state D) outlives SIGKILL that long.
const sweepLimit = 30 * time.Second

// sweep ends the task for good: SIGKILL to everything of the task and every
// adopted child, reaping the orphans, until the tracked runs have exited
// and nothing is left.
func (r *Runner) sweep() {
	limit := time.Now().Add(sweepLimit)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		left := r.killAndReap()
		inFlight := r.regular.count(running) + r.final.count(running)
		if inFlight == 0 && left == 0 {
			return
		}
		if time.Now().After(limit) {
			r.log.Error("processes survive SIGKILL; giving up on them", zap.Int("runs", inFlight), zap.Int("others", left))
			return
		}
		select {
		case ex := <-r.exits:
			r.onExit(ex)
		case <-tick.C:
		}
	}
}

// killAndReap is one pass of the sweep; it returns how many processes
// (other than tracked runs) remain.
func (r *Runner) killAndReap() int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	ps, err := scanProcs()
	if err != nil {
		r.log.Error("cannot find the task's processes", zap.Error(err))
		return 0
	}
	mine, adopted := r.classifyLocked(ps)
	all := append(mine, adopted...)
	r.signalLocked(all, syscall.SIGKILL)
	return reapLocked(all)
}

// forgetRunner drops r's sessions from the registry.
func forgetRunner(r *Runner) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	delete(reg.runners, r.marker)
	for sid, owner := range reg.sessions {
		if owner == r {
			delete(reg.sessions, sid)
		}
	}
}

// registerRunner makes r's marker known before any of its processes runs.
func registerRunner(r *Runner) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.runners[r.marker] = r
}
