// Package taskrun is the lifecycle of one dewar task: decode what the
// scheduler sent, discover the container's addresses (MESOS-6281), render
// the command lines, run the processes, check health, announce, report,
// and kill gracefully. It implements executor.Launcher.
package taskrun

import (
	"context"
	"os"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
	"github.com/dewarhq/dewar/usage"
)

// Options are the executor-wide settings (the executor's flags).
type Options struct {
	// Announcer is nil when no ensemble is configured: nothing is announced.
	Announcer *announcer.Config
	// Hostname overrides the agent's host name in templates and host
	// networking announcements (--announcer-hostname).
	Hostname string
	// Log is the default process log configuration (--runner-logger-*).
	Log sandbox.LogConfig
	// NoSetuid runs processes as the executor's own user (--nosetuid).
	NoSetuid bool
	// ExecuteAsUser replaces the task's user (the Aurora role) for the
	// processes and the sandbox's owner (--execute-as-user).
	ExecuteAsUser string
	// NoSetuidHealthChecks runs shell health checks as the executor's own
	// user (--nosetuid-health-checks).
	NoSetuidHealthChecks bool
	// PreserveEnv gives the processes the executor's environment (minus the
	// agent's secrets) instead of Thermos' HOME, USER, LOGNAME and PATH
	// (--preserve_env).
	PreserveEnv bool
	// StopTimeout bounds a kill from the scheduler from its start to the
	// SIGKILL of whatever is left (--stop_timeout_in_secs); 0: DefaultStopTimeout.
	StopTimeout time.Duration
	// SignalTimeout bounds each request to the HTTP lifecycle endpoints;
	// 0: health.DefaultSignalTimeout (Thermos' HttpSignaler takes it from
	// AURORA_HTTP_SIGNALER_TIMEOUT_SECS).
	SignalTimeout time.Duration
	// PreemptionWait is the time from SIGTERM to SIGKILL of a kill without
	// a kill policy; 0: DefaultPreemptionWait.
	PreemptionWait time.Duration
	// DiskCheckInterval is how often the sandbox's disk use is measured
	// against the task's disk reservation; a task above it is killed and
	// FAILED, as Thermos' ResourceManager. 0 turns enforcement off.
	DiskCheckInterval time.Duration
	// DiscoveryTimeout bounds the wait for addresses (IPv6 DAD included).
	DiscoveryTimeout time.Duration
	// DefaultNetworks names, in order, the CNI networks of the agent's
	// --default_container_info (--default-networks). The agent puts an
	// executor launched without a ContainerInfo into them but tells it
	// nothing (src/slave/slave.cpp, Slave::_run changes only the copy it
	// launches; SUBSCRIBED carries the framework's ExecutorInfo), so the
	// executor must be told their names to report and announce them.
	// Used only when the ExecutorInfo has no ContainerInfo.
	DefaultNetworks []string
	// CheckpointSampleInterval is how often the processes' CPU and memory
	// and the sandbox's disk use are sampled into the task's checkpoint
	// (--checkpoint-sample-interval); 0: usage.DefaultInterval, < 0: never.
	CheckpointSampleInterval time.Duration
	// Container is how tasks with a container image run.
	Container ContainerOptions
	Logger    *zap.Logger
}

// Launcher starts tasks; it is the executor's executor.Launcher.
type Launcher struct {
	opt  Options
	deps deps
}

var _ executor.Launcher = (*Launcher)(nil)

// New returns a Launcher with opt.
func New(opt Options) *Launcher {
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.DiscoveryTimeout <= 0 {
		opt.DiscoveryTimeout = netdiscover.DefaultTentativeWait
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = DefaultStopTimeout
	}
	if opt.PreemptionWait <= 0 {
		opt.PreemptionWait = DefaultPreemptionWait
	}
	return &Launcher{opt: opt, deps: realDeps()}
}

// Launch starts the task's lifecycle in its own goroutine.
func (l *Launcher) Launch(ctx context.Context, env executor.LaunchEnv, info mesos.TaskInfo, report executor.Reporter) executor.Task {
	t := &task{
		opt:       l.opt,
		deps:      l.deps,
		env:       env,
		info:      info,
		report:    report,
		killed:    make(chan struct{}),
		shutdownc: make(chan struct{}),
		done:      make(chan struct{}),
		log:       l.opt.Logger.With(zap.String("task_id", info.TaskID.Value)),
	}
	t.disk = t.sharedDisk()
	t.ckpt = t.openCheckpoint(ctx)
	t.report = t.recordingReporter(report)
	go func() {
		defer close(t.done)
		t.run(ctx)
		t.ckpt.Close()
	}()
	return t
}

// Done is closed when run has returned, and with it every deferred
// teardown (the announcement's withdrawal and ZooKeeper session, the
// address watcher, the health checks), and the checkpoint is closed.
func (t *task) Done() <-chan struct{} { return t.done }

// task is one running task.
type task struct {
	opt    Options
	deps   deps
	env    executor.LaunchEnv
	info   mesos.TaskInfo
	report executor.Reporter
	log    *zap.Logger
	ckpt   *checkpoint.Writer // the observer's record; nil-safe (see checkpoint.go)
	// disk is the one walk of the run directory that the checkpoint's disk
	// samples and the disk limit share (disk.go).
	disk *usage.SharedDisk

	done chan struct{} // closed after run and its teardown (Done)

	killOnce   sync.Once
	killed     chan struct{} // closed by Kill; killPolicy and killReason are set before
	killPolicy *mesos.KillPolicy
	killReason string

	shutdownOnce sync.Once
	shutdownc    chan struct{} // closed by Shutdown; shutdownBy is set before
	shutdownBy   time.Time     // everything must be over by then
}

// Kill asks the lifecycle to kill the task; only the first call counts.
func (t *task) Kill(policy *mesos.KillPolicy, reason string) {
	t.killOnce.Do(func() {
		t.killPolicy, t.killReason = policy, reason
		close(t.killed)
	})
}

// Shutdown kills the task within grace, cutting short a kill under way;
// only the first call counts.
func (t *task) Shutdown(grace time.Duration, reason string) {
	t.shutdownOnce.Do(func() {
		t.shutdownBy = time.Now().Add(max(grace, 0))
		close(t.shutdownc)
	})
	t.Kill(nil, reason)
}

func (t *task) hostname() string {
	if t.opt.Hostname != "" {
		return t.opt.Hostname
	}
	if h := t.env.Agent.GetHostname(); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// networks are the NetworkInfos the agent attached, from ExecutorInfo: the
// executor trusts what it was launched with, not the job's wish list.
func (t *task) networks() []netdiscover.Network {
	var out []netdiscover.Network
	if t.env.Executor.GetContainer() == nil {
		for _, name := range t.opt.DefaultNetworks {
			out = append(out, netdiscover.Network{Name: name})
		}
		return out
	}
	for _, ni := range t.env.Executor.GetContainer().GetNetworkInfos() {
		n := netdiscover.Network{Name: ni.GetName()}
		for _, l := range ni.GetLabels().GetLabels() {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[l.GetKey()] = l.GetValue()
		}
		out = append(out, n)
	}
	return out
}
