package executore2e

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mem is where a process's resident pages are, in MiB.
type mem struct {
	rss, hwm                   float64 // VmRSS, VmHWM (/proc/<pid>/status)
	rssAnon, rssFile, rssShmem float64 // VmRSS by kind (status): anonymous, file-backed, shared memory
	// From smaps_rollup: Pss divides each page by the processes that map
	// it; shared pages are mapped by another process too, private ones
	// by this one alone (clean and dirty both). A file page only this
	// process maps counts as private although the page cache may still
	// hold it for others.
	pss, pssAnon, pssFile, shared, private float64
	exe, libs, anon                        float64 // smaps Rss: the executable's mappings, other files, anonymous
	// The executable's resident pages by section (/proc/<pid>/pagemap
	// against its ELF section headers), and its 64 KiB windows (the
	// kernel's fault-around unit) with any page resident, and with all.
	text, rodata, pclntab, data float64
	windows, wholeWindows       int
	minflt                      int64 // minor page faults over the process's life (/proc/<pid>/stat)
	threads                     int
}

func (m mem) String() string {
	return fmt.Sprintf("VmRSS %.1f MiB (HWM %.1f): RssAnon %.1f, RssFile %.1f, RssShmem %.1f; Pss %.1f (anon %.1f, file %.1f), private %.1f, shared %.1f; "+
		"executable %.1f (text %.1f, rodata %.1f, pclntab %.1f, data %.1f; %d of %d touched 64 KiB windows whole), libraries %.1f, anonymous %.1f; %d minor faults; %d threads",
		m.rss, m.hwm, m.rssAnon, m.rssFile, m.rssShmem, m.pss, m.pssAnon, m.pssFile, m.private, m.shared,
		m.exe, m.text, m.rodata, m.pclntab, m.data, m.wholeWindows, m.windows, m.libs, m.anon, m.minflt, m.threads)
}

// breakdown reads pid's /proc/<pid>/status, smaps_rollup, smaps, stat and
// pagemap; exe is the path of the process's executable.
func breakdown(tb testing.TB, pid int, exe string) mem {
	tb.Helper()
	var m mem
	dir := fmt.Sprintf("/proc/%d/", pid)
	status := kbFields(tb, dir+"status")
	m.rss, m.hwm = status["VmRSS"], status["VmHWM"]
	m.rssAnon, m.rssFile, m.rssShmem = status["RssAnon"], status["RssFile"], status["RssShmem"]
	m.threads = int(status["Threads"])
	rollup := kbFields(tb, dir+"smaps_rollup")
	m.pss, m.pssAnon, m.pssFile = rollup["Pss"], rollup["Pss_Anon"], rollup["Pss_File"]
	m.shared = rollup["Shared_Clean"] + rollup["Shared_Dirty"]
	m.private = rollup["Private_Clean"] + rollup["Private_Dirty"]

	exeReal, _ := filepath.EvalSymlinks(exe)
	isExe := func(path string) bool { return path != "" && (path == exe || path == exeReal) }
	var exeMaps [][2]uint64
	f, err := os.Open(dir + "smaps")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var path string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			path = ""
			if len(fields) >= 6 {
				path = fields[5]
			}
			if isExe(path) {
				start, end, _ := strings.Cut(fields[0], "-")
				s, _ := strconv.ParseUint(start, 16, 64)
				e, _ := strconv.ParseUint(end, 16, 64)
				exeMaps = append(exeMaps, [2]uint64{s, e})
			}
			continue
		}
		if len(fields) != 3 || fields[0] != "Rss:" {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch {
		case isExe(path):
			m.exe += kb / 1024
		case strings.HasPrefix(path, "/"):
			m.libs += kb / 1024
		default: // anonymous, [heap], [stack], [vdso]...
			m.anon += kb / 1024
		}
	}
	m.sections(tb, pid, exe, exeMaps)
	if st, err := os.ReadFile(dir + "stat"); err == nil {
		f := bytes.Fields(st[bytes.LastIndexByte(st, ')')+1:])
		m.minflt, _ = strconv.ParseInt(string(f[10-3]), 10, 64)
	}
	return m
}

// kbFields reads the "Key: N kB" (or "Key: N") lines of a /proc file, in
// MiB (counts as they are).
func kbFields(tb testing.TB, path string) map[string]float64 {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if len(f) == 2 && f[1] == "kB" {
			n /= 1024
		}
		out[k] = n
	}
	return out
}

// sections attributes the resident pages of the executable's mappings
// (present bit of /proc/<pid>/pagemap) to its ELF sections, and counts
// its touched and whole 64 KiB windows.
func (m *mem) sections(tb testing.TB, pid int, exe string, maps [][2]uint64) {
	tb.Helper()
	ef, err := elf.Open(exe)
	if err != nil {
		tb.Fatalf("read the sections of %s: %v", exe, err)
	}
	defer ef.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer pm.Close()
	const page, window = 4096, 64 << 10
	perWindow := map[uint64]int{} // resident pages by 64 KiB window
	for _, r := range maps {
		n := (r[1] - r[0]) / page
		buf := make([]byte, 8*n)
		if _, err := pm.ReadAt(buf, int64(r[0]/page*8)); err != nil {
			tb.Fatalf("read /proc/%d/pagemap: %v", pid, err)
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[8*i:])&(1<<63) == 0 {
				continue
			}
			a := r[0] + i*page
			perWindow[a/window]++
			switch sectionOf(ef, a) {
			case ".text":
				m.text += 1.0 / 256
			case ".gopclntab":
				m.pclntab += 1.0 / 256
			case ".rodata", ".typelink", ".itablink":
				m.rodata += 1.0 / 256
			default:
				m.data += 1.0 / 256
			}
		}
	}
	m.windows = len(perWindow)
	for _, c := range perWindow {
		if c == window/page {
			m.wholeWindows++
		}
	}
}

// sectionOf names the allocated section that holds the page at a (the
// first one when sections share the page).
func sectionOf(ef *elf.File, a uint64) string {
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Addr != 0 && a+4096 > s.Addr && a < s.Addr+s.Size {
			return s.Name
		}
	}
	return ""
}

// freshCopy copies exe to a new file whose pages are not in the page cache
// (written, synced, then dropped with POSIX_FADV_DONTNEED), as an agent's
// fetcher puts -thermos_executor_path into every sandbox: each executor
// then runs its own file, and the page cache that file needs is read in by,
// and charged to the memory cgroup of, that executor's container alone.
func freshCopy(tb testing.TB, exe string) string {
	tb.Helper()
	data, err := os.ReadFile(exe)
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "dewar-executor")
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if c := pageCacheMiB(tb, out); c > 0.5 {
		tb.Fatalf("%s: %.1f MiB still in the page cache after POSIX_FADV_DONTNEED", out, c)
	}
	return out
}

// pageCacheMiB is how much of the file at path the page cache holds
// (mincore over a read-only mapping of it, which itself touches nothing).
func pageCacheMiB(tb testing.TB, path string) float64 {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	pg := os.Getpagesize()
	vec := make([]byte, (len(m)+pg-1)/pg)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		tb.Fatal(fmt.Errorf("mincore %s: %w", path, errno))
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n*pg) / (1 << 20)
}
