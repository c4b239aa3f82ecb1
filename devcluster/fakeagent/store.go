package fakeagent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// The checkpoint layout under <work>/meta, one directory per framework,
// executor and task, so that recovery is a directory walk:
//
//	meta/agent.json
//	meta/frameworks/<fw>/framework.info                 FrameworkInfo (protobuf)
//	meta/frameworks/<fw>/executors/<ex>/executor.info   ExecutorInfo (protobuf)
//	meta/frameworks/<fw>/executors/<ex>/run.json        container, pid, token (0600)
//	meta/frameworks/<fw>/executors/<ex>/tasks/<t>/task.info   TaskInfo (protobuf)
//	meta/frameworks/<fw>/executors/<ex>/tasks/<t>/launched    marker: LAUNCH was sent
//	meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/tasks/<t>/task.updates
//	                    the task's status updates, where and as Mesos writes them (appendUpdate)
//
// Every write is fsync'd (file and directory) before the agent acts on it:
// an acknowledgement promises the update survives a crash.
type store struct{ root string }

type agentMeta struct {
	AgentID string `json:"agent_id"`
	Listen  string `json:"listen"`
}

// runInfo is one run (container) of an executor.
type runInfo struct {
	ContainerID string `json:"container_id"`
	PID         int    `json:"pid"`
	// StartTime (field 22 of /proc/<pid>/stat) tells our executor from a
	// process that reused its pid while the agent was down.
	StartTime uint64 `json:"start_time"`
	// Token is the executor's bearer token; the file is 0600 and the token
	// is never logged.
	Token      string   `json:"token"`
	Sandbox    string   `json:"sandbox"`
	Networks   [][]byte `json:"networks,omitempty"` // NetworkInfo protobufs from the isolator
	NetNSPath  string   `json:"netns_path,omitempty"`
	Terminated bool     `json:"terminated"`
	Shutdown   bool     `json:"shutdown"`
}

func openStore(workDir string) (*store, agentMeta, error) {
	s := &store{root: filepath.Join(workDir, "meta")}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, agentMeta{}, fmt.Errorf("fakeagent: create %s: %w", s.root, err)
	}
	var m agentMeta
	b, err := os.ReadFile(filepath.Join(s.root, "agent.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.AgentID = "dewar-agent-" + newID()
	case err != nil:
		return nil, m, fmt.Errorf("fakeagent: read agent checkpoint: %w", err)
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, m, fmt.Errorf("fakeagent: agent checkpoint %s is corrupt: %w; remove the work dir to start afresh", s.root, err)
		}
	}
	return s, m, nil
}

func (s *store) saveMeta(m agentMeta) error {
	b, _ := json.Marshal(m)
	return writeFileSync(filepath.Join(s.root, "agent.json"), b, 0o644)
}

func (s *store) frameworkDir(fw string) string { return filepath.Join(s.root, "frameworks", fw) }
func (s *store) executorDir(fw, ex string) string {
	return filepath.Join(s.frameworkDir(fw), "executors", ex)
}
func (s *store) taskDir(fw, ex, task string) string {
	return filepath.Join(s.executorDir(fw, ex), "tasks", task)
}

type marshaler interface{ Marshal() ([]byte, error) }

func writeProto(path string, m marshaler) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("fakeagent: encode %s: %w", path, err)
	}
	return writeFileSync(path, b, 0o644)
}

type unmarshaler interface{ Unmarshal([]byte) error }

func readProto(path string, m unmarshaler) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("fakeagent: read checkpoint: %w", err)
	}
	if err := m.Unmarshal(b); err != nil {
		return fmt.Errorf("fakeagent: checkpoint %s is corrupt: %w", path, err)
	}
	return nil
}

func writeRun(path string, r runInfo) error {
	b, _ := json.Marshal(r)
	return writeFileSync(path, b, 0o600)
}

func readRun(path string) (runInfo, error) {
	var r runInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("fakeagent: read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("fakeagent: checkpoint %s is corrupt: %w", path, err)
	}
	return r, nil
}

// writeFileSync replaces path atomically and durably: temp file, fsync,
// rename, fsync of the directory.
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fakeagent: checkpoint dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("fakeagent: checkpoint %s: %w", path, err)
	}
	tmp := f.Name()
	err = errors.Join(f.Chmod(perm), write(f, data), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fakeagent: checkpoint %s: %w", path, err)
	}
	return syncDir(dir)
}

func write(w io.Writer, b []byte) error { _, err := w.Write(b); return err }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fakeagent: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fakeagent: sync %s: %w", dir, err)
	}
	return nil
}

// taskUpdatesPath is where Mesos checkpoints the status updates of task in
// the executor's run containerID (src/slave/paths.cpp, getTaskUpdatesPath):
// meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/tasks/<task>/task.updates.
func (s *store) taskUpdatesPath(agent, fw, ex, containerID, task string) string {
	return filepath.Join(s.root, "slaves", agent, "frameworks", fw, "executors", ex, "runs", containerID, "tasks", task, mesosmeta.UpdatesFile)
}

// findTaskUpdates returns the stream of task among the executor's runs
// (a task's updates all go to the run it was launched in), or "" when no
// run has one. Should several runs have one, the most recently written
// wins, with a warning.
func (s *store) findTaskUpdates(agent, fw, ex, task string, log *zap.Logger) (string, error) {
	// Not a glob: ids may hold its metacharacters.
	runs, err := listDirs(filepath.Join(s.root, "slaves", agent, "frameworks", fw, "executors", ex, "runs"))
	if err != nil {
		return "", err
	}
	var paths []string
	for _, c := range runs {
		if p := s.taskUpdatesPath(agent, fw, ex, c, task); exists(p) {
			paths = append(paths, p)
		}
	}
	if len(paths) > 1 {
		log.Warn("task has a status update stream in more than one run; recovering the newest", zap.String("task_id", task), zap.Strings("streams", paths))
		slices.SortFunc(paths, func(a, b string) int { return modTime(a).Compare(modTime(b)) })
	}
	if len(paths) == 0 {
		return "", nil
	}
	return paths[len(paths)-1], nil
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// appendUpdate checkpoints st where and as the Mesos agent does (the
// task's task.updates, one StatusUpdateRecord of type UPDATE:
// src/slave/task_status_update_manager.cpp, TaskStatusUpdateStream::handle;
// mesosmeta), so that what reads a Mesos work dir (dewar-observer's view
// of the agent's addresses) reads the fake agent's too, and recovery reads
// the same stream back. Only after it returns may the update be
// acknowledged to the executor; unlike Mesos, which writes without O_SYNC
// ("we only read this file if the host did not crash"), it fsyncs: the
// fake agent's acknowledgement promises the update survives a crash.
//
// ACK records (type ACK, written by TaskStatusUpdateStream::acknowledgement
// when the framework acknowledges an update) are not written: the fake
// master keeps the framework's acknowledgements in memory and never hands
// them to the agent, which does not retry updates to the master.
func appendUpdate(path, frameworkID, executorID, agentID string, st mesos.TaskStatus) error {
	rec, err := mesosmeta.AppendUpdate(nil, frameworkID, executorID, agentID, st)
	if err != nil {
		return fmt.Errorf("fakeagent: encode status update record: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fakeagent: checkpoint dir: %w", err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("fakeagent: checkpoint update: %w", err)
	}
	if err := errors.Join(write(f, rec), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("fakeagent: checkpoint update to %s: %w", path, err)
	}
	if statErr != nil { // new file: make its directory entry durable too
		return syncDir(dir)
	}
	return nil
}

// readUpdates returns the task's checkpointed updates in order, and trims
// a torn last record (a crash mid-append; it was never acknowledged) off
// the file so that appending goes on cleanly (mesosmeta.RecoverStream).
// Following TaskStatusUpdateStream::update, an update whose uuid was
// already checkpointed is a duplicate: it is dropped here as there.
func readUpdates(path string) ([]mesos.TaskStatus, error) {
	if path == "" {
		return nil, nil
	}
	recs, err := mesosmeta.RecoverStream(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fakeagent: recover status updates: %w; remove the work dir to start afresh", err)
	}
	var out []mesos.TaskStatus
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Ack || seen[string(r.UUID)] {
			continue
		}
		seen[string(r.UUID)] = true
		out = append(out, r.Status)
	}
	return out, nil
}

func listDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fakeagent: recover %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// newUUID returns 16 random bytes with RFC 4122 version 4 bits, as Mesos'
// id::UUID::random.
func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

func uuidString(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// runDir is the executor run's sandbox, laid out as Mesos does
// (src/slave/paths.cpp, getExecutorRunPath):
// <work_dir>/slaves/<agent_id>/frameworks/<fw>/executors/<ex>/runs/<container_id>.
func (a *Agent) runDir(fw, ex, containerID string) string {
	return filepath.Join(a.cfg.WorkDir, "slaves", a.info.ID.Value, "frameworks", fw, "executors", ex, "runs", containerID)
}

// createRunDir follows src/slave/paths.cpp, createExecutorDirectory and
// createSandboxDirectory: the run dir is 0750 (private task data) and
// owned by the agent's user, as Mesos >= 1.6 makes it without
// --switch_user; then runs/latest points at it.
func createRunDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create sandbox: %w", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil { // the umask may have narrowed it
		return fmt.Errorf("create sandbox: %w", err)
	}
	latest := filepath.Join(filepath.Dir(dir), "latest")
	if err := os.Remove(latest); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", latest, err)
	}
	if err := os.Symlink(dir, latest); err != nil {
		return fmt.Errorf("symlink %s to %s: %w", dir, latest, err)
	}
	return nil
}
