// Command dewar-scheduler is the scheduler stub: an Aurora-shaped Mesos
// framework that launches one job's instances with dewar-executor.
//
//	dewar-scheduler run --master HOST:PORT --db FILE --job job.json --executor-command PATH [flags]
//	dewar-scheduler status --db FILE [--endpoints PORT]
//	dewar-scheduler kill --db FILE [--instance N] [--master HOST:PORT]
//
// `kill` talks to the running `run` through its control endpoint (its
// address is in the database), so that the stub knows the kill was wanted
// and does not relaunch the instance. With no `run` up and --master given,
// it subscribes as the recorded framework itself and kills directly.
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

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/scheduler"
)

const usage = `usage:
  dewar-scheduler run --master HOST:PORT --db FILE --job JOB.json --executor-command PATH [flags]
  dewar-scheduler status --db FILE [--endpoints PORT]
  dewar-scheduler kill --db FILE [--instance N] [--master HOST:PORT]
Run a subcommand with -h for its flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dewar-scheduler:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return errors.New("no subcommand")
	}
	switch args[0] {
	case "run":
		return runJob(ctx, args[1:])
	case "status":
		return status(args[1:])
	case "kill":
		return kill(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q\n%s", args[0], usage)
}

func runJob(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var (
		master      = fs.String("master", "127.0.0.1:5050", "Mesos master (or dewar-agent) as host:port or URL")
		db          = fs.String("db", "dewar-scheduler.db", "bbolt database holding the framework id and every task's state and addresses")
		jobFile     = fs.String("job", "", "MesosJob JSON (as pystachio renders it) to run")
		name        = fs.String("framework-name", "dewar-scheduler", "framework name")
		user        = fs.String("user", "", "user the tasks run as (default: the user the framework in --db was registered with, else the current user)")
		enableCNI   = fs.Bool("enable-cni", false, "let jobs join CNI networks (the job's \"networks\"); off: such jobs are rejected")
		allowed     = fs.String("allowed-networks", "", "comma-separated CNI networks jobs may join (with --enable-cni)")
		execCmd     = fs.String("executor-command", "", "path of dewar-executor on the agent")
		execFlags   = fs.String("executor-flags", "", "more flags for the executor, split at white space (as Aurora's -thermos_executor_flags), e.g. \"--default-networks blue\"")
		execCPUs    = fs.Float64("executor-cpus", 0.25, "cpus added to each task for the executor itself")
		execMem     = fs.Float64("executor-mem-mb", 128, "memory (MB) added to each task for the executor itself")
		control     = fs.String("control", "127.0.0.1:0", "listen address of the control endpoint that `kill` uses")
		verbose     = fs.Bool("v", false, "debug logging")
		passthrough = announcerFlags(fs)
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jobFile == "" {
		return errors.New("run: pass --job FILE (a MesosJob JSON)")
	}
	data, err := os.ReadFile(*jobFile)
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	job, err := aurora.ParseJob(data)
	if err != nil {
		return fmt.Errorf("job %s: %w", *jobFile, err)
	}
	log, err := newLogger(level(*verbose, zap.InfoLevel))
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	store, err := scheduler.OpenStore(*db)
	if err != nil {
		return err
	}
	fw, err := scheduler.New(scheduler.Config{
		Master:        *master,
		FrameworkName: *name,
		User:          *user,
		Policy:        scheduler.Policy{EnableCNI: *enableCNI, AllowedNetworks: splitList(*allowed)},
		Executor: scheduler.ExecutorSettings{
			Command: *execCmd, Args: append(passthrough.args(), strings.Fields(*execFlags)...), CPUs: *execCPUs, MemMB: *execMem,
		},
		Store:       store,
		ControlAddr: *control,
		Log:         log,
	}, job, data)
	if err != nil {
		return err
	}
	err = fw.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil // Ctrl-C: tasks keep running; `run` again to resume
	}
	return err
}

func status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	db := fs.String("db", "dewar-scheduler.db", "the stub's database")
	endpoints := fs.String("endpoints", "", "instead, print \"<instance> <network> <address> <port>\" for this port name of every running instance (for scripts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*db); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	store, err := scheduler.OpenStore(*db)
	if err != nil {
		return err
	}
	if *endpoints != "" {
		return scheduler.WriteEndpoints(os.Stdout, store, *endpoints)
	}
	return scheduler.WriteStatus(os.Stdout, store)
}

func kill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	db := fs.String("db", "dewar-scheduler.db", "the stub's database (it records where the running stub listens)")
	instance := fs.Int("instance", -1, "instance to kill; default: every instance (the job)")
	master := fs.String("master", "", "when no `run` is up: subscribe to this master as the recorded framework and kill directly")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := scheduler.OpenStore(*db)
	if err != nil {
		return err
	}
	out, err := scheduler.RequestKill(ctx, store, *instance)
	if err == nil {
		fmt.Println(out)
		return nil
	}
	if !errors.Is(err, scheduler.ErrStubNotRunning) {
		return err
	}
	if *master == "" {
		return fmt.Errorf("%w; pass --master HOST:PORT to kill without it, or start `dewar-scheduler run` again", err)
	}
	// Quiet: the printed lines are the answer; warnings (such as views that
	// disagree) still show.
	log, lerr := newLogger(level(*verbose, zap.WarnLevel))
	if lerr != nil {
		return lerr
	}
	defer func() { _ = log.Sync() }()
	msgs, err := scheduler.KillDirect(ctx, *master, store, *instance, log)
	for _, m := range msgs {
		fmt.Println(m)
	}
	return err
}

// announcer holds the executor flags the stub passes through unchanged.
type announcer struct {
	ensemble, path, primary, auth *string
	allowCustom                   *bool
}

func announcerFlags(fs *flag.FlagSet) announcer {
	return announcer{
		ensemble:    fs.String("announcer-ensemble", "", "passed to the executor: ZooKeeper ensemble to announce into"),
		path:        fs.String("announcer-serverset-path", "", "passed to the executor: serverset root (default /aurora)"),
		allowCustom: fs.Bool("announcer-allow-custom-serverset-path", false, "passed to the executor: honour announce.zk_path"),
		primary:     fs.String("announcer-primary-network", "", "passed to the executor: network of the classic serverset path"),
		auth:        fs.String("announcer-zookeeper-auth-config", "", "passed to the executor: ZooKeeper auth JSON file on the agent"),
	}
}

func (a announcer) args() []string {
	var out []string
	add := func(name, v string) {
		if v != "" {
			out = append(out, "--"+name+"="+v)
		}
	}
	add("announcer-ensemble", *a.ensemble)
	add("announcer-serverset-path", *a.path)
	if *a.allowCustom {
		out = append(out, "--announcer-allow-custom-serverset-path")
	}
	add("announcer-primary-network", *a.primary)
	add("announcer-zookeeper-auth-config", *a.auth)
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(level zapcore.Level) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Level = zap.NewAtomicLevelAt(level)
	return cfg.Build()
}

func level(verbose bool, quiet zapcore.Level) zapcore.Level {
	if verbose {
		return zap.DebugLevel
	}
	return quiet
}
