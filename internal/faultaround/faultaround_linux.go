package faultaround

import (
	"syscall"
	"unsafe"
)

// From include/uapi/linux/userfaultfd.h.
const (
	uffdAPI              = 0xAA
	uffdFeatureWPAsync   = 1 << 15
	uffdUserModeOnly     = 1          // O_ flag of userfaultfd(2): faults from user space only, allowed without privilege
	uffdioAPI            = 0xc018aa3f // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister       = 0xc020aa00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioRegisterModeWP = 1 << 1
	pageSize             = 4096
	maxMapsSize          = 256 << 10
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRegisterArg struct{ start, len, mode, ioctls uint64 }

// state is what init did; the userfaultfd stays open for the process's
// life (closing it would undo the registration).
var state struct {
	fd    int
	bytes uint64 // registered
	err   error
	off   bool // DEWAR_FAULT_AROUND=kernel
}

func init() {
	state.fd = -1
	if v, _ := syscall.Getenv(EnvVar); v == "kernel" {
		state.off = true
		return
	}
	state.bytes, state.err = disableForExecutable()
}

// Status says what init did: the bytes of the executable's mappings
// registered (fault-around off there), or why not. kept is true when
// DEWAR_FAULT_AROUND=kernel asked to keep the kernel's fault-around.
func Status() (registered uint64, kept bool, err error) {
	return state.bytes, state.off, state.err
}

// disableForExecutable registers every read-only mapping of
// /proc/self/exe.
func disableForExecutable() (uint64, error) {
	exe, err := readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := readFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var ranges [][2]uint64
	for _, m := range parseMaps(maps) {
		if m.path == exe && !m.writable {
			ranges = append(ranges, [2]uint64{m.start, m.end})
		}
	}
	if len(ranges) == 0 {
		return 0, &Error{Op: "find the executable's mappings in /proc/self/maps", Err: syscall.ENOENT}
	}
	fd, err := open()
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, r := range ranges {
		if err := register(fd, r[0], r[1]-r[0]); err != nil {
			return n, err
		}
		n += r[1] - r[0]
	}
	state.fd = fd
	return n, nil
}

// open makes a userfaultfd with UFFD_FEATURE_WP_ASYNC: write-protection
// faults, should any happen, are resolved by the kernel without a reader.
func open() (int, error) {
	if sysUserfaultfd == 0 {
		return -1, &Error{Op: "userfaultfd", Err: syscall.ENOSYS}
	}
	r, _, errno := syscall.RawSyscall(sysUserfaultfd, syscall.O_CLOEXEC|syscall.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return -1, &Error{Op: "userfaultfd", Err: errno}
	}
	fd := int(r)
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 {
		_ = syscall.Close(fd)
		// EINVAL: a kernel before 6.7, without UFFD_FEATURE_WP_ASYNC.
		return -1, &Error{Op: "UFFDIO_API with UFFD_FEATURE_WP_ASYNC", Err: errno}
	}
	return fd, nil
}

// register registers [start, start+length) for write-protection, which
// turns fault-around off there.
func register(fd int, start, length uint64) error {
	reg := uffdioRegisterArg{start: start, len: length, mode: uffdioRegisterModeWP}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uffdioRegister, uintptr(unsafe.Pointer(&reg))); errno != 0 {
		return &Error{Op: "UFFDIO_REGISTER " + hexRange(start, start+length), Err: errno}
	}
	return nil
}

// Error is why fault-around stays on.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

type mapping struct {
	start, end uint64
	writable   bool
	path       string
}

// parseMaps reads the lines of /proc/<pid>/maps: "start-end perms offset
// dev inode path".
func parseMaps(b []byte) []mapping {
	var out []mapping
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := fields(line, 6)
		if len(f) < 6 {
			continue
		}
		dash := indexByte(f[0], '-')
		if dash < 0 || len(f[1]) < 2 {
			continue
		}
		out = append(out, mapping{
			start:    parseHex(f[0][:dash]),
			end:      parseHex(f[0][dash+1:]),
			writable: f[1][1] == 'w',
			path:     string(f[5]),
		})
	}
	return out
}

// fields splits line at spaces into at most n fields, the last one the
// rest of the line (a path may hold spaces).
func fields(line []byte, n int) [][]byte {
	var out [][]byte
	for len(line) > 0 && len(out) < n-1 {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		i := indexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		if i > 0 {
			out = append(out, line[:i])
		}
		line = line[i:]
	}
	for len(line) > 0 && line[0] == ' ' {
		line = line[1:]
	}
	if len(line) > 0 {
		out = append(out, line)
	}
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func parseHex(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		}
	}
	return v
}

func hexRange(start, end uint64) string {
	return "0x" + hexString(start) + "-0x" + hexString(end)
}

func hexString(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			return string(b[i:])
		}
	}
}

func readlink(path string) (string, error) {
	buf := make([]byte, 4096)
	n, err := syscall.Readlink(path, buf)
	if err != nil {
		return "", &Error{Op: "readlink " + path, Err: err}
	}
	return string(buf[:n]), nil
}

// readFile reads a /proc file (whose size stat does not tell).
func readFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &Error{Op: "open " + path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 16<<10)
	for len(buf) < maxMapsSize {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &Error{Op: "read " + path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, &Error{Op: "read " + path, Err: syscall.EFBIG}
}
