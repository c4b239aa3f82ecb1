// Command dewar-executor is the executor a Mesos agent launches for each
// Aurora (or plain Mesos command) task. See README.md for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/disklimit"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/sandbox"
	"github.com/dewarhq/dewar/taskrun"
	"github.com/dewarhq/dewar/usage"
)

func main() {
	tuneGC(os.LookupEnv)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dewar-executor:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("dewar-executor", flag.ContinueOnError)
	var (
		logDest        = fs.String("runner-logger-destination", sandbox.LogFile, "where process stdout/stderr go: file, console, both or none")
		logMode        = fs.String("runner-logger-mode", sandbox.LogStandard, "process log mode: standard or rotate")
		rotateMB       = fs.Int("runner-rotate-log-size-mb", 100, "rotate mode: rotate a process log at this size (MiB)")
		rotateBackups  = fs.Int("runner-rotate-log-backups", 5, "rotate mode: rotated files kept per log")
		noSetuid       = fs.Bool("nosetuid", false, "run processes as the executor's user even when it is root (Thermos' --nosetuid)")
		executeAs      = fs.String("execute-as-user", "", "run the processes as this user, and give it the sandbox, instead of the task's role (Thermos' --execute-as-user)")
		noSetuidHealth = fs.Bool("nosetuid-health-checks", false, "run shell health checks as the executor's user, not the task's (Thermos' --nosetuid-health-checks)")
		preserveEnv    = fs.Bool("preserve_env", false, "give the processes the executor's environment instead of only HOME, USER, LOGNAME and PATH (Thermos' --preserve_env)")
		containerizer  = fs.String("mesos-containerizer-path", "/usr/libexec/mesos/mesos-containerizer", "mesos-containerizer that runs the processes of a task with a Mesos filesystem image (Thermos' flag; the agent's --launcher_dir holds it)")
		mountPoint     = fs.String("sandbox-mount-point", sandbox.DefaultMountPoint, "where the sandbox is mounted inside a task's filesystem image (Thermos' flag; match the agent's --sandbox_directory)")
		noCreateUser   = fs.Bool("no-create-user", false, "do not create the task's user and group in its filesystem image (Thermos' flag)")
		stopTimeout    = fs.Int("stop_timeout_in_secs", int(taskrun.DefaultStopTimeout/time.Second), "a kill from the scheduler SIGKILLs whatever is left this many seconds after it began (Thermos' --stop_timeout_in_secs)")
		diskInterval   = fs.Duration("disk-check-interval", disklimit.DefaultInterval, "measure the sandbox's disk use this often and fail a task above its disk reservation, as Thermos' resource manager (\"Disk limit exceeded.\"); 0 turns the check off")
		discovery      = fs.Duration("discovery-timeout", 10*time.Second, "how long to wait for every CNI network to have a usable address (IPv6 DAD included)")
		defaultNets    = fs.String("default-networks", "", "comma-separated CNI networks, in order, of the agent's --default_container_info: the networks an executor launched without a ContainerInfo is in (the agent does not tell it)")
		logLevel       = fs.String("log-level", "info", "executor log level: debug, info, warn, error")
		sampleEvery    = fs.Duration("checkpoint-sample-interval", usage.DefaultInterval, "how often to sample each process's CPU and memory and the sandbox's disk use into the task checkpoint that dewar-observer reads; 0 turns sampling off")
		ackTimeout     = fs.Duration("status-ack-timeout", executor.DefaultAckTimeout, "once every task has ended, exit after this long even if the agent has not acknowledged every update (the agent drops some without an ACK)")
	)
	var ann announcer.Flags
	ann.Register(fs)
	inert := thermosOnlyFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	inert.logSet(fs, log)
	signalTimeout, err := signalerTimeout(os.Getenv)
	if err != nil {
		return err
	}
	if *stopTimeout <= 0 {
		return fmt.Errorf("--stop_timeout_in_secs=%d: want a number of seconds above 0", *stopTimeout)
	}

	cfg, err := executor.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if *diskInterval < 0 {
		return fmt.Errorf("--disk-check-interval=%s: want a duration of 0 (off) or more", *diskInterval)
	}
	if *ackTimeout < 0 {
		return fmt.Errorf("--status-ack-timeout=%s: want a duration of 0 or more", *ackTimeout)
	}
	cfg.AckTimeout = *ackTimeout
	log.Info("starting", zap.Stringer("config", cfg))
	if err := checkLogFlags(*logDest, *logMode, *rotateMB, *rotateBackups); err != nil {
		return err
	}
	// As a child subreaper the executor inherits every orphaned descendant
	// of the task, so a double-forked daemon cannot outlive the task.
	if err := sandbox.BecomeSubreaper(); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	opt := taskrun.Options{
		Hostname: ann.Hostname,
		Log: sandbox.LogConfig{
			Destination:     *logDest,
			Mode:            *logMode,
			RotateSizeBytes: int64(*rotateMB) << 20,
			RotateBackups:   *rotateBackups,
		},
		NoSetuid:             *noSetuid,
		ExecuteAsUser:        *executeAs,
		NoSetuidHealthChecks: *noSetuidHealth,
		PreserveEnv:          *preserveEnv,
		StopTimeout:          time.Duration(*stopTimeout) * time.Second,
		SignalTimeout:        signalTimeout,
		DiscoveryTimeout:     *discovery,
		DiskCheckInterval:    *diskInterval,
		Container: taskrun.ContainerOptions{
			MesosContainerizerPath: *containerizer,
			SandboxMountPoint:      *mountPoint,
			NoCreateUser:           *noCreateUser,
		},
		Logger: log,
	}
	if opt.DefaultNetworks, err = parseNetworkList(*defaultNets); err != nil {
		return fmt.Errorf("--default-networks: %w", err)
	}
	switch {
	case *sampleEvery == 0:
		opt.CheckpointSampleInterval = -1
	case *sampleEvery < time.Second:
		return fmt.Errorf("--checkpoint-sample-interval=%s: want 0 (off) or at least 1s", *sampleEvery)
	default:
		opt.CheckpointSampleInterval = *sampleEvery
	}
	// The ensemble, the serverset root and the auth file are checked
	// here, so that a bad one fails the executor at start, not its task.
	if ac, enabled, err := ann.Config(); err != nil {
		return err
	} else if enabled {
		opt.Announcer = &ac
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := executor.New(cfg, taskrun.New(opt), log)
	// The first SIGTERM/SIGINT is a graceful shutdown, as the agent's
	// SHUTDOWN: the task gets its grace period and its final update is
	// delivered. A second one stops at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			ex.Shutdown("the executor received " + sig.String())
		case <-ex.Done():
			return
		}
		select {
		case sig := <-sigs:
			log.Warn("second signal: stopping now", zap.Stringer("signal", sig))
			cancel()
		case <-ex.Done():
		}
	}()
	err = ex.Run(ctx)
	if errors.Is(err, context.Canceled) {
		log.Info("stopped by signal")
		return nil
	}
	return err
}

func checkLogFlags(dest, mode string, sizeMB, backups int) error {
	switch dest {
	case sandbox.LogFile, sandbox.LogConsole, sandbox.LogBoth, sandbox.LogNone:
	default:
		return fmt.Errorf("--runner-logger-destination=%q: want file, console, both or none", dest)
	}
	switch mode {
	case sandbox.LogStandard, sandbox.LogRotate:
	default:
		return fmt.Errorf("--runner-logger-mode=%q: want standard or rotate", mode)
	}
	if sizeMB <= 0 || backups < 1 {
		return fmt.Errorf("--runner-rotate-log-size-mb and --runner-rotate-log-backups must be at least 1 (got %d and %d)", sizeMB, backups)
	}
	return nil
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	// The agent captures the executor's stderr into the sandbox.
	cfg.OutputPaths = []string{"stderr"}
	cfg.Sampling = nil
	return cfg.Build()
}

// parseNetworkList reads --default-networks: names as in the agent's
// --default_container_info network_infos, in the same order (the isolator
// names the interfaces eth0, eth1, ... after that order).
func parseNetworkList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, fmt.Errorf("%q has an empty network name; want NAME[,NAME...] as in the agent's --default_container_info", s)
		case seen[n]:
			return nil, fmt.Errorf("network %q named twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}
