// Command dewar-agent is a single-node stand-in for a Mesos master and agent:
// it serves the v1 executor API (and the scheduler API of devcluster/fakeagent/master),
// launches executors such as dewar-executor, attaches their containers to CNI
// networks, and survives restarts without killing its executors.
//
//	dewar-agent [flags]                          serve
//	dewar-agent launch [--agent URL] task.json   launch a task on a running agent
//	dewar-agent run [flags] task.json            one-shot: agent, task, exit
//
// A task file is a Mesos TaskInfo in mesos-go's JSON form (protobuf field
// names). The minimal command task:
//
//	{"name": "hello", "command": {"value": "echo hello; sleep 1"}}
//
// task_id defaults to "<name>-<random>"; agent_id is filled in. Without an
// "executor" the task runs under --executor (dewar-executor), as Mesos runs
// command tasks; "container": {"type": "MESOS", "network_infos": [{"name":
// "net1"}]} attaches it to CNI networks. Each update is printed as one line:
// state, task, source, reason, message and container addresses.
//
// `run` exits 0 iff the task ends TASK_FINISHED, after its executor exited;
// its work dir (default: a new temp dir, printed) keeps the sandbox.
//
// Stopping the agent (SIGINT, SIGTERM) leaves executors running; starting it
// again with the same --work-dir recovers them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/devcluster/fakeagent/master"
	"github.com/dewarhq/dewar/devcluster/isolator"
)

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dewar-agent:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(args []string) (int, error) {
	if len(args) > 0 {
		switch args[0] {
		case "launch":
			return launch(args[1:])
		case "run":
			return runOnce(args[1:])
		}
	}
	return serve(args)
}

type agentFlags struct {
	workDir, listen, hostname, resources, executor string
	cniConfigDir, cniPluginsDir, logLevel          string
	heartbeat, grace, recovery, reregistration     time.Duration
	recoveryDelay                                  time.Duration
	domainSocket, authenticate                     bool
	executorEnv, imageDir                          string
	defaultContainer                               string
}

func (f *agentFlags) register(fs *flag.FlagSet, defaultWorkDir, defaultListen string) {
	fs.StringVar(&f.workDir, "work-dir", defaultWorkDir, "checkpoints, sandboxes and the executor socket; reuse it to recover after a restart")
	fs.StringVar(&f.listen, "listen", defaultListen, "TCP address of the HTTP API (port 0: any free port; printed)")
	fs.StringVar(&f.hostname, "hostname", "", "agent hostname (default: the machine's)")
	fs.StringVar(&f.resources, "resources", "cpus:4;mem:4096;ports:[31000-32000]", "resources offered, in Mesos' --resources syntax")
	fs.StringVar(&f.executor, "executor", defaultExecutor(), "executor binary for command tasks (TaskInfo without executor)")
	fs.StringVar(&f.cniConfigDir, "network-cni-config-dir", "", "directory of CNI network configs (as the Mesos agent flag); empty: host networking only")
	fs.StringVar(&f.cniPluginsDir, "network-cni-plugins-dir", os.Getenv("DEWAR_CNI_PLUGINS_DIR"), "colon-separated directories of CNI plugin binaries")
	fs.DurationVar(&f.heartbeat, "heartbeat-interval", fakeagent.DefaultHeartbeatInterval, "interval of HEARTBEAT events to executors (Mesos: 30 minutes)")
	fs.DurationVar(&f.grace, "executor-shutdown-grace-period", 5*time.Second, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD; the agent kills an executor this long after SHUTDOWN")
	fs.DurationVar(&f.recovery, "recovery-timeout", 15*time.Minute, "MESOS_RECOVERY_TIMEOUT for checkpointing frameworks")
	fs.DurationVar(&f.reregistration, "executor-reregistration-timeout", fakeagent.DefaultExecutorReregistrationTimeout,
		"after a restart, how long recovered executors have to re-subscribe before they are destroyed (at most 15s); also MESOS_SUBSCRIPTION_BACKOFF_MAX")
	fs.DurationVar(&f.reregistration, "subscription-backoff-max", fakeagent.DefaultExecutorReregistrationTimeout, "old name of --executor-reregistration-timeout")
	fs.StringVar(&f.imageDir, "image-dir", "", "root filesystems of container images: an executor's image volume naming image N (Aurora's taskfs) gets a copy of the directory <image-dir>/N, as Mesos' volume/image isolator provisions one; empty: such executors fail to launch")
	fs.DurationVar(&f.recoveryDelay, "recovery-delay", 0, "after a restart, how long every executor call gets 503 'Agent has not finished recovery' (the containerizer's recovery)")
	fs.BoolVar(&f.domainSocket, "http-executor-domain-sockets", true, "serve the executor API on a unix socket in --work-dir and give every executor MESOS_DOMAIN_SOCKET (Mesos' flag; its default there is false)")
	fs.StringVar(&f.executorEnv, "executor-environment-variables", "", `JSON object of variables every executor gets, e.g. '{"PATH": "/bin:/usr/bin"}' (Mesos' flag): nothing else of dewar-agent's own environment is passed on`)
	fs.StringVar(&f.defaultContainer, "default-container-info", "", `JSON ContainerInfo for every executor launched without one (Mesos' --default_container_info), e.g. '{"type": "MESOS", "network_infos": [{"name": "blue"}]}'`)
	fs.BoolVar(&f.authenticate, "authenticate-http-executors", true, "give every executor a MESOS_EXECUTOR_AUTHENTICATION_TOKEN and require it (Mesos' flag; its default there is false)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// defaultExecutor is dewar-executor next to this binary, if it is there.
func defaultExecutor() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "dewar-executor")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func (f *agentFlags) newAgent(log *zap.Logger, out *os.File) (*fakeagent.Agent, error) {
	cfg := fakeagent.Config{
		WorkDir: f.workDir, Listen: f.listen, Hostname: f.hostname, Resources: f.resources,
		ExecutorPath: f.executor, HeartbeatInterval: f.heartbeat, ShutdownGracePeriod: f.grace,
		RecoveryTimeout: f.recovery, ExecutorReregistrationTimeout: f.reregistration, RecoveryDelay: f.recoveryDelay,
		NoDomainSocket: !f.domainSocket, AuthenticateExecutors: f.authenticate, ImageDir: f.imageDir, Out: out, Log: log,
	}
	if f.executorEnv != "" {
		// src/slave/flags.cpp: a JSON object whose values are strings.
		if err := json.Unmarshal([]byte(f.executorEnv), &cfg.ExecutorEnvironment); err != nil {
			return nil, fmt.Errorf("--executor-environment-variables: want a JSON object of strings: %w", err)
		}
	}
	if f.defaultContainer != "" {
		// src/slave/flags.cpp: default_container_info is a JSON ContainerInfo;
		// Mesos parses it with the protobuf field names, as encoding/json
		// does with mesos-go's types.
		var ci mesos.ContainerInfo
		dec := json.NewDecoder(strings.NewReader(f.defaultContainer))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ci); err != nil {
			return nil, fmt.Errorf("--default-container-info: want a JSON ContainerInfo such as '{\"type\": \"MESOS\", \"network_infos\": [{\"name\": \"blue\"}]}': %w", err)
		}
		if ci.Type == nil {
			return nil, errors.New(`--default-container-info: "type" is required (a required field of ContainerInfo); use "MESOS"`)
		}
		if ci.GetType() != mesos.ContainerInfo_MESOS {
			return nil, fmt.Errorf("--default-container-info: type %s: the fake agent runs only MESOS containers", ci.GetType())
		}
		cfg.DefaultContainerInfo = &ci
	}
	if cfg.ExecutorPath != "" {
		abs, err := filepath.Abs(cfg.ExecutorPath)
		if err != nil {
			return nil, fmt.Errorf("--executor %q: %w", cfg.ExecutorPath, err)
		}
		cfg.ExecutorPath = abs
	}
	if f.cniConfigDir != "" {
		var dirs []string
		if f.cniPluginsDir != "" {
			dirs = strings.Split(f.cniPluginsDir, ":")
		}
		iso, err := isolator.New(isolator.Config{
			ConfigDir: f.cniConfigDir, PluginDirs: dirs,
			StateDir: filepath.Join(f.workDir, "cni"), Log: log,
		})
		if err != nil {
			return nil, err
		}
		cfg.Isolator = fakeagent.CNI(iso)
	}
	return fakeagent.New(cfg)
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = "console"
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func serve(args []string) (int, error) {
	fs := flag.NewFlagSet("dewar-agent", flag.ContinueOnError)
	var f agentFlags
	f.register(fs, "/var/lib/dewar-agent", "127.0.0.1:5051")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return 2, err
	}
	defer log.Sync() //nolint:errcheck
	agent, err := f.newAgent(log, os.Stdout)
	if err != nil {
		return 1, err
	}
	m := master.New(log, agent, master.Config{})
	agent.Tasks(m.Recover)
	agent.OnUpdate(m.Update)
	agent.Handle("/api/v1/scheduler", m)
	agent.Start()
	fmt.Printf("dewar-agent listening on %s (executor socket %s)\n", agent.Addr(), agent.SocketPath())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fatal := agent.FatalChan()
	select {
	case <-ctx.Done():
	case err := <-fatal:
		// A real Mesos agent aborts here; so does the fake one, loudly.
		return 70, errors.Join(fmt.Errorf("a real Mesos agent would have aborted: %w", err), m.Close(), agent.Close())
	}
	// Executors keep running: restart with the same --work-dir to recover.
	return 0, errors.Join(m.Close(), agent.Close())
}

func launch(args []string) (int, error) {
	fs := flag.NewFlagSet("dewar-agent launch", flag.ContinueOnError)
	agentURL := fs.String("agent", "http://127.0.0.1:5051", "URL of the running dewar-agent")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() != 1 {
		return 2, errors.New("usage: dewar-agent launch [--agent URL] task.json")
	}
	task, err := fakeagent.LoadTask(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	last, err := fakeagent.LaunchRemote(ctx, *agentURL, task, func(st mesos.TaskStatus) {
		fmt.Println(fakeagent.FormatUpdate(st))
	})
	if err != nil {
		return 1, err
	}
	return exitCode(last), nil
}

func runOnce(args []string) (int, error) {
	fs := flag.NewFlagSet("dewar-agent run", flag.ContinueOnError)
	var f agentFlags
	f.register(fs, "", "127.0.0.1:0")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() != 1 {
		return 2, errors.New("usage: dewar-agent run [--executor bin/dewar-executor] [flags] task.json")
	}
	task, err := fakeagent.LoadTask(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	if f.workDir == "" {
		// Kept after the run: the task's sandbox and logs are the result.
		d, err := os.MkdirTemp("", "dewar-agent-run-")
		if err != nil {
			return 1, fmt.Errorf("work dir: %w", err)
		}
		f.workDir = d
	}
	if f.logLevel == "info" {
		f.logLevel = "warn" // the updates are the output
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return 2, err
	}
	defer log.Sync() //nolint:errcheck
	agent, err := f.newAgent(log, os.Stdout)
	if err != nil {
		return 1, err
	}
	defer agent.Close()
	agent.Start()
	fmt.Printf("work dir %s\n", f.workDir)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	last, err := agent.RunTask(ctx, task)
	if fatal := agent.Fatal(); len(fatal) > 0 {
		return 70, fmt.Errorf("a real Mesos agent would have aborted: %w", errors.Join(fatal...))
	}
	if err != nil {
		return 1, err
	}
	return exitCode(last), nil
}

func exitCode(last mesos.TaskStatus) int {
	if last.GetState() == mesos.TASK_FINISHED {
		return 0
	}
	return 1
}
