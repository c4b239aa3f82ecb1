package faultaround

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/dewarhq/dewar/internal/testenv"
)

// needUserfaultfd skips (or fails under DEWAR_REQUIRE_INTEGRATION=1) when
// this kernel or sandbox refuses what the package needs.
func needUserfaultfd(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if errors.As(err, &e) && (errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EPERM)) {
		testenv.Missing(t, "userfaultfd with UFFD_FEATURE_WP_ASYNC (Linux 6.7+, not refused by seccomp): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// mapped counts the pages of b this process has mapped (bit 63 of each
// /proc/self/pagemap entry), which is what VmRSS counts, whatever the page
// cache holds.
func mapped(t *testing.T, b []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := len(b) / pageSize
	buf := make([]byte, 8*n)
	if _, err := f.ReadAt(buf, int64(uintptr(unsafe.Pointer(&b[0]))/pageSize*8)); err != nil {
		t.Fatal(err)
	}
	c := 0
	for i := range n {
		if binary.LittleEndian.Uint64(buf[8*i:])&(1<<63) != 0 {
			c++
		}
	}
	return c
}

// cachedFile maps a 1 MiB file whose pages are all in the page cache (it
// was just written) read-only and private, as the ELF loader maps an
// executable's code.
func cachedFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := syscall.Mmap(int(f.Fd()), 0, 1<<20, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(b) })
	return b
}

var sink byte

// The reason for the package: one read maps the 64 KiB around it, unless
// the mapping is registered; then it maps the one page read.
func TestRegisteredMappingMapsOnlyTouchedPages(t *testing.T) {
	fd, err := open()
	needUserfaultfd(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })

	plain := cachedFile(t)
	sink += plain[5*pageSize]
	if got := mapped(t, plain); got <= 1 {
		t.Logf("without registration one read mapped %d page: this kernel's fault_around_bytes is one page", got)
	} else {
		t.Logf("without registration one read mapped %d pages (fault-around)", got)
	}

	reg := cachedFile(t)
	if err := register(fd, uint64(uintptr(unsafe.Pointer(&reg[0]))), uint64(len(reg))); err != nil {
		t.Fatal(err)
	}
	for _, page := range []int{5, 6, 200} {
		sink += reg[page*pageSize]
	}
	if got := mapped(t, reg); got != 3 {
		t.Errorf("registered mapping: 3 pages read, %d mapped; want 3", got)
	}
}

// init registered every read-only mapping of the test binary, and only
// those: the kernel flags them "uw" (VM_UFFD_WP) in smaps.
func TestInitRegistersTheExecutable(t *testing.T) {
	n, kept, err := Status()
	if kept {
		t.Skipf("%s=kernel in the environment", EnvVar)
	}
	needUserfaultfd(t, err)
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	var perms, path string
	for _, line := range strings.Split(string(smaps), "\n") {
		if m := parseMaps([]byte(line)); len(m) == 1 {
			perms, path = strings.Fields(line)[1], m[0].path
			if path == exe && !m[0].writable {
				want += m[0].end - m[0].start
			}
			continue
		}
		flags, ok := strings.CutPrefix(line, "VmFlags:")
		if !ok || path != exe {
			continue
		}
		registered := strings.Contains(flags, " uw")
		if registered == (perms[1] == 'w') {
			t.Errorf("%s mapping of the executable: VmFlags%s; want uw exactly on the read-only ones", perms, flags)
		}
	}
	if want == 0 || n != want {
		t.Errorf("Status: %d bytes registered; the executable's read-only mappings are %d", n, want)
	}
}

func TestParseMaps(t *testing.T) {
	in := "00400000-00a7f000 r-xp 00000000 fe:00 1234 /opt/dewar/bin/dewar-executor\n" +
		"01073000-010e2000 rw-p 00673000 fe:00 1234 /opt/dewar/bin/dewar-executor\n" +
		"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n" +
		"7ffd1000-7ffd2000 r--p 00000000 fe:00 99 /var/lib/mesos/slaves/x/my sandbox/dewar-executor (deleted)\n"
	got := parseMaps([]byte(in))
	want := []mapping{
		{0x400000, 0xa7f000, false, "/opt/dewar/bin/dewar-executor"},
		{0x1073000, 0x10e2000, true, "/opt/dewar/bin/dewar-executor"},
		{0x7ffd1000, 0x7ffd2000, false, "/var/lib/mesos/slaves/x/my sandbox/dewar-executor (deleted)"},
	}
	if len(got) != len(want) {
		t.Fatalf("parseMaps: %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v; want %+v", i, got[i], want[i])
		}
	}
}
