package usage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The few /proc files the sampler reads, parsed here rather than with
// prometheus/procfs: that package compiles some twenty regular expressions
// at start whether they are used or not (96 KB of heap for the executor's
// life, 892 allocations, GODEBUG=inittrace=1), and its code and tables add
// to the executor's resident pages (README, "Executor overhead to reserve
// in Aurora"). Field positions are proc(5)'s.

// procStat is what Sessions needs of /proc/<pid>/stat.
type procStat struct {
	pid, session   int
	utime, stime   uint64 // clock ticks (userHZ)
	cutime, cstime int64
	starttime      uint64 // clock ticks after boot
	rssPages       int64
}

// readStat reads /proc/<pid>/stat under root. The command name (field 2)
// is in parentheses and may hold spaces and parentheses itself: the fields
// after it start after the last ')'.
func readStat(root string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')' after the command name", pid)
	}
	// f[0] is field 3 (state).
	f := bytes.Fields(b[i+1:])
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 22", pid, len(f))
	}
	st := procStat{pid: pid}
	var errs [7]error
	st.session, errs[0] = strconv.Atoi(string(f[6-3]))
	st.utime, errs[1] = strconv.ParseUint(string(f[14-3]), 10, 64)
	st.stime, errs[2] = strconv.ParseUint(string(f[15-3]), 10, 64)
	st.cutime, errs[3] = strconv.ParseInt(string(f[16-3]), 10, 64)
	st.cstime, errs[4] = strconv.ParseInt(string(f[17-3]), 10, 64)
	st.starttime, errs[5] = strconv.ParseUint(string(f[22-3]), 10, 64)
	st.rssPages, errs[6] = strconv.ParseInt(string(f[24-3]), 10, 64)
	for _, err := range errs {
		if err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return st, nil
}

// readVmRSS is VmRSS of /proc/<pid>/status under root, in bytes; ok is
// false when the file or the line is missing (a kernel thread, a zombie).
func readVmRSS(root string, pid int) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, false
	}
	return parseVmRSS(b)
}

func parseVmRSS(b []byte) (int64, bool) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "1234 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}

// bootTime is the btime line of /proc/stat under root: when the machine
// booted, in seconds since the epoch.
func bootTime(root string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/stat has no btime line", root)
}

// allPIDs lists the numeric entries of root.
func allPIDs(root string) ([]int, error) {
	d, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
