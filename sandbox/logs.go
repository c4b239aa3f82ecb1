package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// copierGrace is how long the end of a task waits for log copiers to see
// EOF before closing their pipes. Once the sweep has killed everything, EOF
// is immediate; the bound only matters for a writer that escaped entirely.
const copierGrace = 2 * time.Second

func checkLogConfig(c *LogConfig) error {
	if c.Destination == "" {
		c.Destination = LogFile
	}
	if c.Mode == "" {
		c.Mode = LogStandard
	}
	switch c.Destination {
	case LogFile, LogConsole, LogBoth, LogNone:
	default:
		return fmt.Errorf("log destination %q is invalid: use file, console, both or none", c.Destination)
	}
	switch c.Mode {
	case LogStandard:
	case LogRotate:
		if c.RotateSizeBytes <= 0 || c.RotateBackups <= 0 {
			return fmt.Errorf("rotating logs need a size (%d bytes) and a number of backups (%d) of at least 1",
				c.RotateSizeBytes, c.RotateBackups)
		}
	default:
		return fmt.Errorf("log mode %q is invalid: use standard or rotate", c.Mode)
	}
	return nil
}

// output is where one stream of one run goes.
type output struct {
	forChild   *os.File  // handed to the process; nil = /dev/null
	closeChild bool      // forChild is ours and is closed once the child has it
	src        *os.File  // read end of a pipe to copy from, if any
	dst        io.Writer // where src goes
	closeDst   io.Closer
}

// openOutput builds the stream name ("stdout" or "stderr") of a run whose
// log directory is dir, as cfg says; console is the executor's own stream.
func (r *Runner) openOutput(cfg LogConfig, dir, name string, console *os.File) (output, error) {
	path := filepath.Join(dir, name)
	toFile := cfg.Destination == LogFile || cfg.Destination == LogBoth
	switch {
	case cfg.Destination == LogNone:
		return output{}, nil
	case cfg.Destination == LogConsole:
		return output{forChild: console}, nil
	case cfg.Destination == LogFile && cfg.Mode == LogStandard:
		f, err := r.createLog(path)
		if err != nil {
			return output{}, err
		}
		return output{forChild: f, closeChild: true}, nil
	}
	// Rotation, or a copy to two places: a pipe and a copier goroutine.
	var file io.WriteCloser
	var err error
	if toFile && cfg.Mode == LogRotate {
		file, err = newRotatingWriter(path, cfg.RotateSizeBytes, cfg.RotateBackups, r.createLog)
	} else {
		file, err = r.createLog(path)
	}
	if err != nil {
		return output{}, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		file.Close()
		return output{}, fmt.Errorf("pipe for %s: %w", path, err)
	}
	o := output{forChild: pw, closeChild: true, src: pr, dst: file, closeDst: file}
	if cfg.Destination == LogBoth {
		o.dst = tee{file: file, console: console}
	}
	return o, nil
}

// createLog creates (truncates) a log file owned by the task's user.
func (r *Runner) createLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", path, err)
	}
	if err := r.chown(path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writer is what exec.Cmd gets: a nil interface (exec opens /dev/null),
// never an interface holding a nil *os.File.
func (o *output) writer() io.Writer {
	if o.forChild == nil {
		return nil
	}
	return o.forChild
}

// started closes the parent's copy of the child's end.
func (o *output) started() {
	if o.closeChild {
		o.forChild.Close()
	}
}

// abort releases an output whose child never started.
func (o *output) abort() {
	if o.closeChild {
		o.forChild.Close()
	}
	if o.src != nil {
		o.src.Close()
	}
	if o.closeDst != nil {
		o.closeDst.Close()
	}
}

// copy runs the copier of a piped output until every writer is gone.
func (r *Runner) copy(o output) {
	if o.src == nil {
		return
	}
	r.pipes.add(o.src)
	r.copiers.Add(1)
	go func() {
		defer r.copiers.Done()
		_, _ = io.Copy(o.dst, o.src)
		r.pipes.remove(o.src)
		o.src.Close()
		o.closeDst.Close()
	}()
}

// tee writes to the log file and, best effort, to the console: a closed
// console must not stop the file copy.
type tee struct {
	file    io.Writer
	console io.Writer
}

func (t tee) Write(p []byte) (int, error) {
	_, _ = t.console.Write(p)
	return t.file.Write(p)
}

// pipeSet holds the read ends copiers are reading.
type pipeSet struct {
	mu    sync.Mutex
	files map[*os.File]struct{}
}

func (s *pipeSet) add(f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = make(map[*os.File]struct{})
	}
	s.files[f] = struct{}{}
}

func (s *pipeSet) remove(f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, f)
}

// waitOrClose waits for the copiers; past grace it closes the remaining read
// ends (a writer escaped the sweep), which ends their copies.
func (s *pipeSet) waitOrClose(wg *sync.WaitGroup, grace time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	s.mu.Lock()
	for f := range s.files {
		f.Close()
	}
	s.mu.Unlock()
	<-done
}

// rotatingWriter is Thermos' rotate mode: when the file reaches max bytes it
// becomes path.1, path.1 becomes path.2, ... keeping backups files.
type rotatingWriter struct {
	path    string
	max     int64
	backups int
	create  func(string) (*os.File, error)
	f       *os.File
	size    int64
}

func newRotatingWriter(path string, max int64, backups int, create func(string) (*os.File, error)) (*rotatingWriter, error) {
	f, err := create(path)
	if err != nil {
		return nil, err
	}
	return &rotatingWriter{path: path, max: max, backups: backups, create: create, f: f}, nil
}

// Write splits p at the size limit so no file grows past max.
func (w *rotatingWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.size >= w.max {
			if err := w.rotate(); err != nil {
				return n, err
			}
		}
		chunk := p
		if room := w.max - w.size; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		m, err := w.f.Write(chunk)
		n += m
		w.size += int64(m)
		p = p[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (w *rotatingWriter) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close %s for rotation: %w", w.path, err)
	}
	for i := w.backups - 1; i >= 1; i-- {
		from, to := w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1)
		if err := os.Rename(from, to); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", from, err)
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	f, err := w.create(w.path)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

func (w *rotatingWriter) Close() error { return w.f.Close() }
