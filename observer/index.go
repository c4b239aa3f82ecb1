// Package observer is dewar-observer: it finds every dewar task under a
// Mesos agent's work directory, reads their checkpoints (package
// checkpoint) and serves them in a browser with Thermos' observer URLs, as
// JSON, and as Prometheus metrics.
package observer

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/checkpoint"
)

// Entry is one task found under the work directory. Entries are never
// changed once made: a refresh replaces them.
type Entry struct {
	// ID is the task id; for an unreadable checkpoint, the executor id
	// (the path's only clue).
	ID string
	// RunDir is the run directory ($MESOS_DIRECTORY) the checkpoint is in;
	// every file the observer serves lies below it.
	RunDir string
	// Task is the checkpoint; nil when Err says why it cannot be read.
	Task *checkpoint.Task
	Err  error

	key fileKey
}

// Active reports whether the task has not reached a terminal state. An
// unreadable task counts as active: nobody knows it ended.
func (e *Entry) Active() bool { return e.Task == nil || !e.Task.Terminal() }

// fileKey tells whether a checkpoint changed since it was parsed: the
// writer replaces the file, so a new inode or mtime means a new document.
type fileKey struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// Index is the set of tasks under a Mesos work directory. It rescans at
// most once per TTL, when asked (no goroutine, no timer: an idle observer
// costs nothing), re-reading only the checkpoints whose file changed.
type Index struct {
	root string
	ttl  time.Duration
	log  *zap.Logger
	now  func() time.Time

	scanMu sync.Mutex // one scan at a time; readers keep the old snapshot meanwhile
	// rescanned is called after each scan with the run directories it
	// indexed (OnRescan), under scanMu.
	rescanned []func(runDirs map[string]bool)

	// mu guards the following fields.
	mu      sync.Mutex
	scanned time.Time
	byDir   map[string]*Entry // run dir -> entry
	sorted  []*Entry          // newest first
	byID    map[string]*Entry
}

// NewIndex indexes the tasks under root, the agent's --work_dir.
func NewIndex(root string, ttl time.Duration, log *zap.Logger) *Index {
	if log == nil {
		log = zap.NewNop()
	}
	return &Index{root: root, ttl: ttl, log: log, now: time.Now, byDir: map[string]*Entry{}, byID: map[string]*Entry{}}
}

// OnRescan has f called after every scan with the run directories it
// indexed, so that the caches kept beside the index (a page's disk walk,
// the agent's status update streams) drop the tasks that are gone with
// the scan that found them gone, whether or not anyone scrapes the
// metrics. Call it before the index is used.
func (x *Index) OnRescan(f func(runDirs map[string]bool)) {
	x.scanMu.Lock()
	defer x.scanMu.Unlock()
	x.rescanned = append(x.rescanned, f)
}

// Tasks returns every task, the most recently changed first. The slice is
// the caller's; the entries are shared and must not be changed.
func (x *Index) Tasks() []*Entry {
	x.refresh()
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.sorted)
}

// Get returns the task with id, or nil.
func (x *Index) Get(id string) *Entry {
	x.refresh()
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.byID[id]
}

func (x *Index) refresh() {
	x.mu.Lock()
	fresh := !x.scanned.IsZero() && x.now().Sub(x.scanned) < x.ttl
	x.mu.Unlock()
	if fresh {
		return
	}
	x.mu.Lock()
	have := !x.scanned.IsZero()
	x.mu.Unlock()
	if !x.scanMu.TryLock() {
		if have {
			return // another request is rescanning: the last snapshot will do
		}
		x.scanMu.Lock() // the first scan: wait for it
	}
	defer x.scanMu.Unlock()
	x.mu.Lock()
	fresh = !x.scanned.IsZero() && x.now().Sub(x.scanned) < x.ttl
	old := x.byDir
	x.mu.Unlock()
	if fresh {
		return // another request scanned while this one waited
	}
	next := map[string]*Entry{}
	for _, dir := range x.runDirs() {
		// A task in a terminal state never changes its checkpoint again:
		// while its run directory is listed, skip even the stat.
		if prev := old[dir]; prev != nil && prev.Task != nil && prev.Task.Terminal() {
			next[dir] = prev
			continue
		}
		if e := x.load(dir, old[dir]); e != nil {
			next[dir] = e
		}
	}
	sorted := make([]*Entry, 0, len(next))
	byID := make(map[string]*Entry, len(next))
	for _, e := range next {
		sorted = append(sorted, e)
	}
	slices.SortFunc(sorted, func(a, b *Entry) int {
		if c := b.key.mtime.Compare(a.key.mtime); c != 0 {
			return c
		}
		return cmp.Compare(a.RunDir, b.RunDir)
	})
	// Several run directories may claim one task id (an executor
	// relaunched for the same task): the most recently changed wins.
	for _, e := range sorted {
		if _, ok := byID[e.ID]; !ok {
			byID[e.ID] = e
		}
	}
	x.mu.Lock()
	x.byDir, x.sorted, x.byID, x.scanned = next, sorted, byID, x.now()
	x.mu.Unlock()
	if len(x.rescanned) > 0 {
		dirs := make(map[string]bool, len(next))
		for dir := range next {
			dirs[dir] = true
		}
		for _, f := range x.rescanned {
			f(dirs)
		}
	}
}

// load returns the entry of dir, reusing prev when the file did not
// change; nil when dir holds no dewar checkpoint.
func (x *Index) load(dir string, prev *Entry) *Entry {
	path := checkpoint.Path(dir)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	e := &Entry{ID: filepath.Base(filepath.Dir(filepath.Dir(dir))), RunDir: dir}
	if err != nil {
		e.Err = err
		return e
	}
	e.key = keyOf(fi)
	if prev != nil && prev.key == e.key {
		return prev
	}
	t, err := checkpoint.ReadFile(path)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return nil // the run directory vanished meanwhile
	}
	if err != nil {
		x.log.Debug("unreadable checkpoint", zap.String("path", path), zap.Error(err))
		e.Err = err
		return e
	}
	e.ID, e.Task = t.TaskID, t
	return e
}

func keyOf(fi fs.FileInfo) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ino = st.Ino
	}
	return k
}

// runDirs lists the run directories of every executor, as Mesos lays out
// its work directory (src/slave/paths.cpp, getExecutorRunPath):
// <root>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>,
// which dewar-agent follows too, and which Aurora's own tools assume
// (src/main/python/apache/aurora/executor/common/executor_detector.py,
// ExecutorDetector.PATTERN). Thermos' checkpoint root
// (<root>/checkpoints/<task_id>, apache/thermos/common/path.py) is not
// looked at: dewar writes no Thermos checkpoints. "latest" symlinks
// (Mesos' LATEST_SYMLINK) point at one of the runs and are skipped, as are
// all symlinks.
func (x *Index) runDirs() []string {
	var out []string
	for _, agent := range subdirs(filepath.Join(x.root, "slaves")) {
		for _, fw := range subdirs(filepath.Join(agent, "frameworks")) {
			for _, ex := range subdirs(filepath.Join(fw, "executors")) {
				out = append(out, subdirs(filepath.Join(ex, "runs"))...)
			}
		}
	}
	return out
}

// subdirs lists the real directories in dir (no symlinks, no "latest").
func subdirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "latest" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
