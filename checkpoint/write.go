package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
)

// coalesce is the least time between two writes: a burst of changes (a
// crash-looping process, the states of a kill) becomes one write.
const coalesce = 100 * time.Millisecond

// Writer keeps one task's checkpoint. Changes go through Update; a writer
// goroutine writes the latest document at most every coalesce, and only
// after a change (no timer runs while nothing changes). Flush writes at
// once; Close flushes and stops the goroutine.
type Writer struct {
	path string
	log  *zap.Logger

	wake chans.Wake // the document changed
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// cancel stops the goroutines started by Go; wg waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the following fields.
	mu      sync.Mutex
	t       Task
	dirty   bool
	lastErr error

	// wmu serialises writes (the goroutine's and Flush's).
	wmu sync.Mutex
}

// NewWriter creates <runDir>/dewar and writes t there at once, so that the
// observer sees the task from its start. A nil *Writer (returned with an
// error) is valid: its methods do nothing.
func NewWriter(runDir string, t Task, log *zap.Logger) (*Writer, error) {
	if log == nil {
		log = zap.NewNop()
	}
	dir := filepath.Join(runDir, Dir)
	// 0755: the observer may run as another user than the executor.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create checkpoint directory: %w", err)
	}
	t.Version = Version
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		ctx:    ctx,
		cancel: cancel,
		path:   filepath.Join(dir, File),
		log:    log,
		wake:   chans.NewWake(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		t:      t,
		dirty:  true,
	}
	if err := w.Flush(); err != nil {
		cancel()
		return nil, err
	}
	go w.loop()
	return w, nil
}

// Path is the checkpoint file.
func (w *Writer) Path() string { return w.path }

// Update changes the document with fn (called with the writer's lock held:
// keep it short, never block in it) and schedules a write.
func (w *Writer) Update(fn func(*Task)) {
	if w == nil {
		return
	}
	w.mu.Lock()
	fn(&w.t)
	w.t.Updated = time.Now()
	w.dirty = true
	w.mu.Unlock()
	w.wake.Signal()
}

// UpdateIf is Update for a change that may turn out to be none: fn
// reports whether it changed the document, and nothing is written when it
// did not (a resource sample equal to the last one).
func (w *Writer) UpdateIf(fn func(*Task) bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	changed := fn(&w.t)
	if changed {
		w.t.Updated = time.Now()
		w.dirty = true
	}
	w.mu.Unlock()
	if !changed {
		return
	}
	w.wake.Signal()
}

// View calls fn with the document (the writer's lock held: copy what you
// need, never block, never change it).
func (w *Writer) View(fn func(*Task)) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(&w.t)
}

// Go runs fn in a goroutine that the writer owns (the resource sampler):
// its ctx is cancelled when ctx is, or by Close, which waits for fn to
// return before its last write, so that nothing updates a closed writer.
func (w *Writer) Go(ctx context.Context, fn func(ctx context.Context)) {
	if w == nil {
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(w.ctx, cancel)
		defer stop()
		fn(ctx)
	}()
}

// Flush writes the document now if it changed since the last write.
func (w *Writer) Flush() error {
	if w == nil {
		return nil
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if !w.dirty && w.lastErr == nil && !w.t.Updated.IsZero() {
		w.mu.Unlock()
		return nil
	}
	if w.t.Updated.IsZero() {
		w.t.Updated = time.Now()
	}
	b, err := json.Marshal(&w.t)
	w.dirty = false
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	err = writeAtomic(w.path, b)
	w.mu.Lock()
	w.lastErr = err
	if err != nil {
		w.dirty = true // try again on the next change
	}
	w.mu.Unlock()
	return err
}

// Close writes what is pending and stops the writer goroutine. It is
// idempotent.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.cancel()
	w.wg.Wait()
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush()
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		if err := w.Flush(); err != nil {
			w.log.Warn("cannot write the task checkpoint; dewar-observer shows an older state", zap.String("path", w.path), zap.Error(err))
		}
		// Let a burst of changes collect before the next write.
		t := time.NewTimer(coalesce)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			return
		}
	}
}

// writeAtomic replaces path with b: a reader sees the old document or the
// new one, never a part. No fsync (see the package comment). The temporary
// name is fixed: one Writer owns a run directory, and it serialises its
// writes.
func writeAtomic(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		// Readable by an observer running as another user, whatever the
		// executor's umask.
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return nil
}
