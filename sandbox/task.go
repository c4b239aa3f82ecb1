package sandbox

import (
	"time"

	"go.uber.org/zap"
)

// Process is one process of a task, as Thermos' Process schema. The caller
// fills pystachio's defaults (MaxFailures 1, MinDuration 5 s).
type Process struct {
	Name string
	// Cmdline is already rendered; it runs as `bash -c Cmdline`.
	Cmdline string
	// MaxFailures is the number of failed runs after which the process is
	// failed; 0 retries forever.
	MaxFailures int
	// MinDuration is the least time between the end of one run and the start
	// of the next (Thermos min_duration).
	MinDuration time.Duration
	// Daemon processes run again after they succeed, until the task ends.
	Daemon bool
	// Ephemeral processes are not waited for: the task completes without
	// them, and they are killed in CLEANING.
	Ephemeral bool
	// Final processes run in FINALIZING, after the regular ones (or a kill).
	Final bool
	// Log overrides Options.Log for this process (Thermos' per-process
	// logger); nil uses the Runner's.
	Log *LogConfig
}

// Task is the process part of a Thermos task.
type Task struct {
	Name      string
	Processes []Process
	// Order holds ordering constraints: in each chain a process starts only
	// after every process before it has succeeded.
	Order [][]string
	// MaxFailures is the number of failed processes that fail the task;
	// 0 means no limit (Thermos).
	MaxFailures int
	// MaxConcurrency limits how many processes run at once; 0 = unlimited.
	MaxConcurrency int
	// FinalizationWait bounds CLEANING plus FINALIZING.
	FinalizationWait time.Duration
}

// Log destinations and modes, as Thermos' Logger schema and the executor's
// --runner-logger-* flags.
const (
	LogFile    = "file"
	LogConsole = "console"
	LogBoth    = "both"
	LogNone    = "none"

	LogStandard = "standard"
	LogRotate   = "rotate"
)

// LogConfig says where the stdout and stderr of process runs go.
type LogConfig struct {
	// Destination is file (default), console (the executor's own
	// stdout/stderr), both, or none.
	Destination string
	// Mode is standard (default: one file per stream and run) or rotate.
	Mode string
	// RotateSizeBytes and RotateBackups apply in rotate mode: a file is
	// rotated when it reaches RotateSizeBytes, keeping stdout.1 ...
	// stdout.<RotateBackups>.
	RotateSizeBytes int64
	RotateBackups   int
}

// Options are the per-executor settings of a Runner.
type Options struct {
	// Sandbox is $MESOS_DIRECTORY, the directory the agent made for the
	// executor. When User is set it is given to that user, as Thermos'
	// DirectorySandbox.create does: Mesos >= 1.6 creates it root-owned and
	// 0750 (MESOS-8332), which a task user could not even enter.
	Sandbox string
	// WorkDir is the task's sandbox, Thermos' DirectorySandbox root and the
	// processes' working directory: default <Sandbox>/sandbox. It is
	// created, given to User and made 0700 (DirectorySandbox.create). Logs
	// go to <WorkDir>/.logs/<process>/<run>/{stdout,stderr}, run = 0, 1, 2,
	// ... (thermos/core/runner.py: log_dir defaults to <sandbox>/.logs).
	WorkDir string
	// Env is the full environment of every process (never the executor's
	// own), plus DEWAR_SANDBOX_RUNNER (see the package comment). HOME (the
	// work directory, as Thermos), USER and LOGNAME are always set to the
	// user the processes run as (thermos/core/process.py, _setup_env... in
	// Process.execute).
	Env []string
	// User runs the processes as this user when the executor is root ("" =
	// the executor's user). An unknown user fails Start.
	User string
	// Image, when set, runs every process inside the task's Mesos
	// filesystem image through mesos-containerizer (see Image): the
	// processes start as root and the launcher switches to User, their
	// working directory and HOME are Image.MountPoint. Start refuses what
	// cannot do this on this machine instead of running on the host.
	Image  *Image
	Log    LogConfig
	Logger *zap.Logger
}

// State is a Thermos task state.
type State string

// Task states, as thermos_internal.thrift.
const (
	StateActive     State = "ACTIVE"
	StateCleaning   State = "CLEANING"
	StateFinalizing State = "FINALIZING"
	StateSuccess    State = "SUCCESS"
	StateFailed     State = "FAILED"
	StateKilled     State = "KILLED"
)

// Terminal reports whether the task has ended in this state.
func (s State) Terminal() bool {
	return s == StateSuccess || s == StateFailed || s == StateKilled
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	// EventStarted: a run of Process started (Run is its number).
	EventStarted EventKind = "started"
	// EventExited: the run exited with status 0.
	EventExited EventKind = "exited"
	// EventFailed: the run exited non-zero or could not be started;
	// Message says which.
	EventFailed EventKind = "failed"
	// EventLost: the run ended because the runner stopped it (CLEANING,
	// FINALIZING, Kill) or a signal killed it; it does not count as a
	// failure (Thermos "lost": restarted after min_duration).
	EventLost EventKind = "lost"
	// EventState: the task entered TaskState.
	EventState EventKind = "state"
)

// Event is a process start or exit, or a task state change.
type Event struct {
	Time      time.Time
	Process   string
	Run       int
	Kind      EventKind
	PID       int // the run's pid (bash's), in EventStarted
	ExitCode  int // exit status; -1 when the run died of a signal or did not start
	TaskState State
	Message   string
}

// Result is how a task ended.
type Result struct {
	State   State // SUCCESS, FAILED or KILLED; "" while the task runs
	Message string
}
