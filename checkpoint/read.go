package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxSize bounds what Read accepts: a checkpoint is a few KiB; anything
// near this size was not written by an executor.
const MaxSize = 16 << 20

// ErrNotFound means the run directory holds no checkpoint: not a dewar
// task, or one that has not written its first record yet.
var ErrNotFound = errors.New("no dewar checkpoint")

// Path is the checkpoint's path in a task's run directory.
func Path(runDir string) string { return filepath.Join(runDir, Dir, File) }

// Read reads the checkpoint in runDir. A missing file is ErrNotFound; a
// truncated or corrupt one, or one of a newer version, is an error that
// says what is wrong with it.
func Read(runDir string) (*Task, error) {
	return ReadFile(Path(runDir))
}

// ReadFile reads a checkpoint file.
func ReadFile(path string) (*Task, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("checkpoint %s is larger than %d bytes: not written by dewar", path, MaxSize)
	}
	return Parse(b)
}

// Parse decodes a checkpoint document.
func Parse(b []byte) (*Task, error) {
	var t Task
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("corrupt checkpoint (%d bytes): %w", len(b), err)
	}
	switch {
	case t.Version <= 0:
		return nil, errors.New("corrupt checkpoint: no version")
	case t.Version > Version:
		return nil, fmt.Errorf("checkpoint version %d is newer than this reader's %d: upgrade dewar-observer", t.Version, Version)
	case t.TaskID == "":
		return nil, errors.New("corrupt checkpoint: no task_id")
	}
	return &t, nil
}
