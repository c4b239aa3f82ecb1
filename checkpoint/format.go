// Package checkpoint is the record of one dewar task that the executor
// keeps in the task's run directory and dewar-observer reads: who the task
// is, its state history, its processes and their runs, its health, every
// network with its addresses, its ports, its serverset members, and the
// resource use the executor samples (package usage).
//
// The record is one JSON document, $MESOS_DIRECTORY/dewar/task.json,
// replaced atomically (written to a temporary file beside it, then renamed
// over it) whenever something in it changes. A reader therefore always sees
// a whole document, old or new. There is no fsync: after a machine crash
// the observer may show an older state, which the agent's own checkpoints
// (not ours) make authoritative anyway.
//
// Thermos keeps its runner state as an append-only log of thrift records
// under the checkpoint root (src/main/python/apache/thermos/common/ckpt.py,
// CheckpointDispatcher); a dewar task is small (a few KiB), so a whole
// document rewritten on change is simpler to read and costs little.
package checkpoint

import (
	"time"

	"github.com/dewarhq/dewar/internal/taskstate"
)

// Version is the format this package writes. Readers accept every version
// up to theirs; fields are only ever added within a version, so a reader
// ignores fields it does not know. A change that renames or removes a
// field, or changes a field's meaning, bumps Version.
const Version = 1

// Dir and File name the checkpoint inside the task's run directory
// ($MESOS_DIRECTORY): <run dir>/dewar/task.json.
const (
	Dir  = "dewar"
	File = "task.json"
)

// Task is the whole checkpoint of one task.
type Task struct {
	Version int    `json:"version"`
	TaskID  string `json:"task_id"`
	// Name is the task's name (Aurora: the task config's name; a command
	// task: TaskInfo.name).
	Name        string `json:"name,omitempty"`
	Role        string `json:"role,omitempty"`
	Environment string `json:"environment,omitempty"`
	Job         string `json:"job,omitempty"`
	Instance    int    `json:"instance"`
	User        string `json:"user,omitempty"`
	Hostname    string `json:"hostname,omitempty"`

	FrameworkID string `json:"framework_id,omitempty"`
	ExecutorID  string `json:"executor_id,omitempty"`
	AgentID     string `json:"agent_id,omitempty"`
	ContainerID string `json:"container_id,omitempty"`

	// Sandbox is $MESOS_SANDBOX as the executor saw it; LogDir holds the
	// process logs, <LogDir>/<process>/<run>/{stdout,stderr}; WorkDir is the
	// processes' working directory. The observer trusts none of them for
	// file access: it serves files only below the run directory it found
	// the checkpoint in.
	Sandbox string `json:"sandbox,omitempty"`
	LogDir  string `json:"log_dir,omitempty"`
	WorkDir string `json:"work_dir,omitempty"`

	// States is the Mesos state history (TASK_STARTING, TASK_RUNNING, ...,
	// a terminal state last), as the executor reported it.
	States []Transition `json:"states"`
	// RunnerStates is the Thermos runner's history (ACTIVE, CLEANING,
	// FINALIZING, SUCCESS|FAILED|KILLED).
	RunnerStates []Transition `json:"runner_states,omitempty"`

	Processes []Process `json:"processes"`
	Health    *Health   `json:"health,omitempty"`
	// Networks are the task's networks in network_infos order; with host
	// networking, one network named "host" with Host set.
	Networks   []Network      `json:"networks"`
	Ports      map[string]int `json:"ports,omitempty"`
	Serversets []Serverset    `json:"serversets,omitempty"`
	// Disk is the run directory's disk use as the executor last sampled
	// it; nil before the first sample (or from an executor that does not
	// sample).
	Disk *Disk `json:"disk,omitempty"`

	// Updated is when the executor last changed the document.
	Updated time.Time `json:"updated"`
}

// Transition is a state entered at a time.
type Transition struct {
	State   string    `json:"state"`
	Time    time.Time `json:"time"`
	Message string    `json:"message,omitempty"`
}

// Process run states, Thermos' ProcessState names
// (src/main/thrift/org/apache/thermos/thermos_internal.thrift).
const (
	RunRunning = "RUNNING"
	RunSuccess = "SUCCESS"
	RunFailed  = "FAILED"
	RunKilled  = "KILLED"
)

// Process is one process of the task and every run it had.
type Process struct {
	Name string `json:"name"`
	Runs []Run  `json:"runs"`
}

// Run is one run of a process, numbered from 0 as the log directories.
type Run struct {
	Run   int        `json:"run"`
	PID   int        `json:"pid,omitempty"`
	State string     `json:"state"`
	Start *time.Time `json:"start,omitempty"`
	Stop  *time.Time `json:"stop,omitempty"`
	// ExitCode is set once the run ended: its exit status, -1 when it died
	// of a signal or could not start.
	ExitCode *int   `json:"exit_code,omitempty"`
	Message  string `json:"message,omitempty"`
	// Usage is the run's process tree's resource use as the executor last
	// sampled it (kept after the run ended); nil before the first sample.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is one sample of a run's process tree: every process in the run's
// session (the run's pid is its session id, package sandbox).
type Usage struct {
	// CPUSeconds is user plus system time of the tree's live processes,
	// including what they reaped of their children (stat's cutime and
	// cstime), so that short-lived children count.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RSSBytes is the sum of the live processes' resident memory (shared
	// pages are counted once per process, as ps does).
	RSSBytes  int64 `json:"rss_bytes"`
	Processes int   `json:"processes"`
	// Time is when the values were measured; a sample equal to the
	// previous one is not written, so it may be older than the interval.
	Time time.Time `json:"time"`
}

// Disk is one sample of the disk use of the task's run directory, as du
// counts it: allocated blocks, symbolic links not followed.
type Disk struct {
	Bytes   int64 `json:"bytes"`
	Entries int   `json:"entries"`
	// Truncated means the walk stopped early (too many entries): Bytes is
	// a lower bound.
	Truncated bool      `json:"truncated,omitempty"`
	Time      time.Time `json:"time"`
}

// Health states.
const (
	HealthUnknown   = "UNKNOWN" // a health check exists and has not passed yet
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
)

// Health is the task's health check verdict.
type Health struct {
	State   string    `json:"state"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`
}

// Network is one network the task joined, as the executor discovered it
// inside the container (MESOS-6281: the executor is not told).
type Network struct {
	Name      string            `json:"name"`
	Interface string            `json:"interface,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Addresses are CIDR prefixes ("198.18.0.2/24", "2001:db8::2/64"),
	// every IPv4 address first, in discovery order.
	Addresses []string `json:"addresses"`
	// Host marks host networking: the addresses are the agent's own.
	Host bool `json:"host,omitempty"`
}

// Serverset is one serverset the task is (or was) a member of.
type Serverset struct {
	// Path is the serverset's ZooKeeper path (the member znode is
	// <Path>/member_<sequence>).
	Path string `json:"path"`
	// Network is the network whose address the member carries ("" under
	// host networking).
	Network string `json:"network,omitempty"`
	// Endpoint is the serviceEndpoint; Additional the additionalEndpoints.
	Endpoint   Endpoint            `json:"endpoint"`
	Additional map[string]Endpoint `json:"additional,omitempty"`
	// Joined is false once the member was withdrawn.
	Joined bool      `json:"joined"`
	Time   time.Time `json:"time"`
}

// Endpoint is a serverset endpoint: a bare host (IPv6 without brackets)
// and a port.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// State is the task's current Mesos state ("" before the first status).
func (t *Task) State() string {
	if len(t.States) == 0 {
		return ""
	}
	return t.States[len(t.States)-1].State
}

// Terminal reports whether the task has ended.
func (t *Task) Terminal() bool { return TerminalState(t.State()) }

// TerminalState reports whether a Mesos task state is terminal.
func TerminalState(s string) bool { return taskstate.Terminal(s) }

// Launched is the time of the first state, zero without one.
func (t *Task) Launched() time.Time {
	if len(t.States) == 0 {
		return time.Time{}
	}
	return t.States[0].Time
}

// Process returns the named process, nil if the task has none by that name.
func (t *Task) Process(name string) *Process {
	for i := range t.Processes {
		if t.Processes[i].Name == name {
			return &t.Processes[i]
		}
	}
	return nil
}

// Last is the latest run, nil before the first.
func (p *Process) Last() *Run {
	if len(p.Runs) == 0 {
		return nil
	}
	return &p.Runs[len(p.Runs)-1]
}
