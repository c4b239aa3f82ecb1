package taskrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
)

// run is the whole life of the task; it reports exactly one terminal
// status before it returns.
func (t *task) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Discovery and the ZooKeeper connect can take a while; a kill during
	// them abandons them.
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go func() {
		select {
		case <-t.killed:
			pcancel()
		case <-pctx.Done():
		}
	}()
	var facts Facts
	fail := func(msg string, reason mesos.TaskStatus_Reason) {
		t.log.Error("task failed", zap.String("message", msg))
		t.report(executor.Status{State: mesos.TASK_FAILED, Message: msg, Reason: reason.Enum(),
			Networks: NetworkInfos(facts.Networks)})
	}
	killedEarly := func() bool {
		select {
		case <-t.killed:
			t.report(executor.Status{State: mesos.TASK_KILLED, Networks: NetworkInfos(facts.Networks),
				Message: t.killReason + " before any process started"})
			return true
		default:
			return false
		}
	}

	p, err := newTaskSpec(t.info, t.env.Framework)
	if err != nil {
		fail(err.Error(), failureReason(err))
		return
	}
	facts = Facts{
		TaskID:   t.info.TaskID.Value,
		User:     p.user,
		Instance: p.instance,
		Hostname: t.hostname(),
		Sandbox:  t.env.Config.Sandbox,
		Ports:    p.ports,
	}
	t.recordSpec(p, &facts)
	// TASK_STARTING as soon as the task is decoded, before anything that
	// can take a while, as Thermos: AuroraExecutor.launchTask validates the
	// task (a bad one is TASK_FAILED without STARTING), then _run sends
	// TASK_STARTING first (aurora_executor.py). The addresses are not known
	// yet; they come in TASK_RUNNING and every update after it.
	t.report(executor.Status{State: mesos.TASK_STARTING, Message: "launching"})
	if err := t.discover(pctx, &facts); err != nil {
		if !killedEarly() {
			// Nothing of the task ran: the executor could not start it in
			// time, which Thermos reports as TASK_LOST (aurora_executor.py,
			// _start_runner: "Timed out waiting for task to start!"), so
			// that Aurora reschedules without counting a task failure.
			t.log.Error("task lost", zap.Error(err))
			t.report(executor.Status{State: mesos.TASK_LOST, Message: err.Error(),
				Reason: mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum()})
		}
		return
	}
	t.recordNetworks(&facts)
	t.log.Info("discovered addresses", zap.String("addresses", facts.summary()))
	if killedEarly() {
		return
	}
	if p.aurora {
		if err := renderSpec(p, facts.Scope()); err != nil {
			fail(err.Error(), failureReason(err))
			return
		}
	}
	var (
		ann     membership
		closeZK func()
	)
	if p.job != nil && p.job.Announce != nil && t.opt.Announcer != nil {
		ann, closeZK, err = t.connectAnnouncer(pctx, p, &facts)
		if err != nil {
			if !killedEarly() {
				fail(err.Error(), failureReason(err))
			}
			return
		}
	}
	annc := startAnnouncing(ann, closeZK, t.log)
	defer annc.close()
	if killedEarly() {
		return
	}

	applyLoggers(p, t.opt.Log)
	sopt := t.sandboxOptions(p, facts)
	if err := t.containerize(p, &sopt); err != nil {
		fail(err.Error(), failureReason(err))
		return
	}
	hc, err := t.prepareHealth(p, facts, sopt)
	if err != nil {
		fail(err.Error(), failureReason(err))
		return
	}
	if hc != nil {
		t.recordHealthPending()
	}
	runner, err := t.deps.start(ctx, p.task, sopt)
	if err != nil {
		fail(fmt.Sprintf("cannot start task: %v", err), failureReason(err))
		return
	}
	if err := hc.start(ctx, t.deps.monitor, t.log); err != nil {
		t.log.Error("cannot start the health monitor; the task will stay STARTING", zap.Error(err))
	}
	defer hc.close()
	t.supervise(ctx, p, &facts, runner, annc, hc)
}

// discover fills facts with the container's addresses: every CNI network's
// from netlink, or the host's with host networking.
func (t *task) discover(ctx context.Context, facts *Facts) error {
	nets := t.networks()
	opt := netdiscover.Options{TentativeWait: t.opt.DiscoveryTimeout, Log: t.log}
	named := 0
	for _, n := range nets {
		if n.Name != "" {
			named++
		}
	}
	if named == 0 {
		h, err := t.deps.addrs.Host(ctx, facts.Hostname, opt)
		if err != nil {
			// Host networking still works by name, as Thermos; say why
			// the IP variables are missing.
			t.log.Warn("cannot list the host's addresses; {{mesos.ip}} is unset", zap.Error(err))
			return nil
		}
		facts.HostAddrs = h.Addrs
		return nil
	}
	addrs, err := t.deps.addrs.Discover(ctx, nets, opt)
	if err != nil {
		return fmt.Errorf("discovering the container's CNI addresses: %w", err)
	}
	facts.Networks = addrs
	return nil
}

// summary is a one-line description of the addresses, for the log.
func (f Facts) summary() string {
	if len(f.Networks) > 0 {
		return describe(f.Networks)
	}
	var as []string
	for _, p := range f.HostAddrs {
		as = append(as, p.Addr().String())
	}
	return "host networking " + f.Hostname + " " + strings.Join(as, "|")
}

func (t *task) sandboxOptions(p *taskSpec, facts Facts) sandbox.Options {
	user := p.user
	if t.opt.ExecuteAsUser != "" {
		// thermos_executor_main.py: UserOverrideDirectorySandboxProvider.
		user = t.opt.ExecuteAsUser
	}
	if t.opt.NoSetuid || os.Geteuid() != 0 {
		user = ""
	}
	env := thermosEnv()
	if t.opt.PreserveEnv {
		env = executorEnv()
	}
	env = append(env, p.env...)
	env = append(env, facts.Env()...)
	return sandbox.Options{
		Sandbox: t.env.Config.Sandbox,
		// Set here, not left to sandbox's default, because shell health
		// checks run in the same directory as the processes.
		WorkDir: filepath.Join(t.env.Config.Sandbox, "sandbox"),
		Env:     env,
		User:    user,
		Log:     t.opt.Log,
		Logger:  t.log,
	}
}

// thermosEnv is what Thermos passes on from the executor's environment
// without --preserve_env: PATH only; HOME, USER and LOGNAME are set by the
// sandbox (thermos/core/process.py, Process.execute). dewar adds
// MESOS_DIRECTORY: it marks every process of the container, which is how
// the fake agent (and an operator with ps) finds what a dead executor left.
func thermosEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "MESOS_DIRECTORY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// executorEnv is the executor's environment minus what the task must not
// see: the agent's secret token and the executor-only MESOS_* variables.
func executorEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "MESOS_DOMAIN_SOCKET", "MESOS_AGENT_ENDPOINT",
			"MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX", "MESOS_CHECKPOINT", "MESOS_SANDBOX":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (t *task) joinTimeout() time.Duration {
	if t.opt.Announcer != nil && t.opt.Announcer.ConnectTimeout > 0 {
		return t.opt.Announcer.ConnectTimeout
	}
	return 30 * time.Second
}

func (t *task) terminalStatus(r sandbox.Result, killReason, failReason string, failCode mesos.TaskStatus_Reason, facts *Facts) executor.Status {
	nets := NetworkInfos(facts.Networks)
	switch {
	case failReason != "":
		return executor.Status{State: mesos.TASK_FAILED, Message: failReason, Networks: nets,
			Reason: failCode.Enum()}
	case killReason != "":
		// Thermos reports a kill as TASK_KILLED even when the processes
		// exited cleanly on /quitquitquit before any signal.
		return executor.Status{State: mesos.TASK_KILLED, Message: killReason + ": " + orDefault(r.Message, "task killed"), Networks: nets}
	case r.State == sandbox.StateSuccess:
		return executor.Status{State: mesos.TASK_FINISHED, Message: orDefault(r.Message, "task finished"), Networks: nets}
	case r.State == sandbox.StateKilled:
		return executor.Status{State: mesos.TASK_KILLED, Message: orDefault(r.Message, "task killed"), Networks: nets}
	default:
		return executor.Status{State: mesos.TASK_FAILED, Message: orDefault(r.Message, "task failed"), Networks: nets}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
