package observer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// errForbidden is a path the observer refuses to serve: it leaves the
// task's run directory.
var errForbidden = errors.New("path leaves the task's sandbox")

// cleanRel checks a path given in a URL, relative to the run directory:
// no absolute path, no "..", nothing Clean would change beyond slashes.
// Thermos' observer does the same check by realpath prefix
// (task_observer.py, _sanitize_path); we refuse rather than rewrite.
func cleanRel(p string) (string, error) {
	if p == "" || p == "/" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return "", errForbidden
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", errForbidden
		}
	}
	return path.Clean(p), nil
}

// openIn opens rel below dir without leaving it: symlinks are followed
// only while they stay inside dir (os.Root), and the resolved path is
// checked too, so a link out is refused with errForbidden, not served.
func openIn(dir, rel string) (*os.File, fs.FileInfo, error) {
	rel, err := cleanRel(rel)
	if err != nil {
		return nil, nil, err
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, err // the run dir vanished: not found
	}
	if resolved, err := filepath.EvalSymlinks(filepath.Join(realDir, filepath.FromSlash(rel))); err == nil {
		if resolved != realDir && !strings.HasPrefix(resolved, realDir+string(filepath.Separator)) {
			return nil, nil, errForbidden
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	root, err := os.OpenRoot(realDir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		// A symlink swapped in between the check and the open.
		return nil, nil, fmt.Errorf("%w: %v", errForbidden, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// tail reads at most n bytes from the end of f; it reports the offset the
// data starts at.
func tail(f *os.File, size, n int64) ([]byte, int64, error) {
	off := max(size-n, 0)
	b := make([]byte, size-off)
	m, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, off, err
	}
	return b[:m], off, nil
}
