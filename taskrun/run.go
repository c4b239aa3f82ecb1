package taskrun

import (
	"context"

	"fmt"
	"os"
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
	var facts Facts
	fail := func(msg string, reason mesos.TaskStatus_Reason) {
		t.log.Error("task failed", zap.String("message", msg))
		t.report(executor.Status{State: mesos.TASK_FAILED, Message: msg, Reason: reason.Enum(),
			Networks: NetworkInfos(facts.Networks)})
	}

	p, err := makePlan(t.info, t.env.Framework)
	if err != nil {
		fail(err.Error(), mesos.REASON_TASK_INVALID)
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
	if err := t.discover(ctx, &facts); err != nil {
		fail(err.Error(), mesos.REASON_CONTAINER_LAUNCH_FAILED)
		return
	}
	t.report(executor.Status{State: mesos.TASK_STARTING, Networks: NetworkInfos(facts.Networks),
		Message: "addresses: " + facts.summary()})

	select {
	case <-t.killCh:
		t.report(executor.Status{State: mesos.TASK_KILLED, Message: "killed before any process started",
			Networks: NetworkInfos(facts.Networks)})
		return
	default:
	}

	if p.aurora {
		if err := renderPlan(p, facts.Scope()); err != nil {
			fail(err.Error(), mesos.REASON_TASK_INVALID)
			return
		}
	}
	var ann *announcement
	if p.job != nil && p.job.Announce != nil && t.opt.Announcer != nil {
		ann, err = t.connectAnnouncer(ctx, p, &facts)
		if err != nil {
			fail(err.Error(), mesos.REASON_TASK_INVALID)
			return
		}
		defer ann.close()
	}

	applyLoggers(p, t.opt.Log)
	sopt := t.sandboxOptions(p, facts)
	hc, err := t.prepareHealth(p, facts, sopt)
	if err != nil {
		fail(err.Error(), mesos.REASON_TASK_INVALID)
		return
	}
	runner, err := sandbox.Start(ctx, p.task, sopt)
	if err != nil {
		fail(fmt.Sprintf("cannot start task: %v", err), mesos.REASON_TASK_INVALID)
		return
	}
	if err := hc.start(ctx, t.log); err != nil {
		t.log.Error("cannot start the health monitor; the task will stay STARTING", zap.Error(err))
	}
	defer hc.close()
	t.supervise(ctx, p, &facts, runner, ann, hc)
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
		h, err := netdiscover.Host(ctx, facts.Hostname, opt)
		if err != nil {
			// Host networking still works by name, as Thermos; say why
			// the IP variables are missing.
			t.log.Warn("cannot list the host's addresses; {{mesos.ip}} is unset", zap.Error(err))
			return nil
		}
		facts.HostAddrs = h.Addrs
		return nil
	}
	addrs, err := netdiscover.Discover(ctx, nets, opt)
	if err != nil {
		return fmt.Errorf("discovering the container's CNI addresses: %w", err)
	}
	facts.Networks = addrs
	t.log.Info("discovered addresses", zap.String("networks", describe(addrs)))
	return nil
}

// summary is a one-line description of the addresses for status messages.
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

func (t *task) sandboxOptions(p *plan, facts Facts) sandbox.Options {
	user := p.user
	if t.opt.NoSetuid || os.Geteuid() != 0 {
		user = ""
	}
	env := append(executorEnv(), p.env...)
	env = append(env, facts.Env()...)
	return sandbox.Options{
		Sandbox: t.env.Config.Sandbox,
		Env:     env,
		User:    user,
		Log:     t.opt.Log,
		Logger:  t.log,
	}
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

// supervise drives a started task to its end: RUNNING when started (and
// healthy), address changes, health failures and kills.
func (t *task) supervise(ctx context.Context, p *plan, facts *Facts, runner *sandbox.Runner, ann *announcement, hc *healthWatch) {
	var watch <-chan []netdiscover.NetworkAddrs
	if len(facts.Networks) > 0 {
		w, err := netdiscover.Watch(ctx, t.networks(), netdiscover.Options{TentativeWait: t.opt.DiscoveryTimeout, Log: t.log})
		if err != nil {
			t.log.Warn("cannot watch addresses; changes will not be reported", zap.Error(err))
		} else {
			defer w.Close()
			watch = w.Updates()
		}
	}
	var (
		running           bool
		killing           bool
		failReason        string                  // set when the executor kills because of a failure
		failCode          mesos.TaskStatus_Reason // Mesos' reason for that failure
		killedByScheduler bool
		killDone          = make(chan struct{})
		events            = runner.Events()
		healthy           = hc.healthy()
	)
	status := func(s mesos.TaskState, msg string) executor.Status {
		st := executor.Status{State: s, Message: msg, Networks: NetworkInfos(facts.Networks)}
		if hc != nil && s == mesos.TASK_RUNNING {
			h := true
			st.Healthy = &h
		}
		return st
	}
	// join runs the announcement in the background so that a slow or
	// unreachable ensemble never blocks a kill; it is bounded by
	// joinTimeout and waited for before Leave.
	var (
		join   *joining
		joined <-chan struct{} // join.done until handled
	)
	startKill := func(policy *mesos.KillPolicy, why string) {
		if killing {
			return
		}
		killing = true
		t.log.Info("killing", zap.String("why", why))
		grace := killGrace(policy, t.env.Config.ShutdownGracePeriod)
		j := join
		go func() {
			defer close(killDone)
			if j != nil {
				j.cancel()
				<-j.done
			}
			t.kill(ctx, p, runner, ann, grace)
		}()
	}
	runningMsg := ""
	becomeRunning := func(msg string) {
		if running || killing || join != nil {
			return
		}
		if ann == nil {
			running = true
			t.report(status(mesos.TASK_RUNNING, msg))
			return
		}
		runningMsg = msg
		join = startJoin(ctx, ann, *facts, t.joinTimeout())
		joined = join.done
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Kind == sandbox.EventStarted && hc == nil {
				becomeRunning(fmt.Sprintf("process %s started", ev.Process))
			}
		case <-joined:
			joined = nil
			if killing {
				continue
			}
			if join.err != nil {
				failReason = fmt.Sprintf("announcing into ZooKeeper failed: %v", join.err)
				failCode = mesos.REASON_EXECUTOR_TERMINATED
				startKill(nil, failReason)
				continue
			}
			running = true
			if describe(facts.Networks) != describe(join.facts.Networks) {
				t.updateAnnouncement(ctx, ann, facts)
			}
			t.report(status(mesos.TASK_RUNNING, runningMsg))
		case <-healthy:
			healthy = nil // closed: take it once
			becomeRunning("healthy")
		case why := <-hc.failed():
			if killing {
				continue // a task being killed may well stop answering
			}
			failReason, failCode = why, mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
			startKill(nil, why)
		case nets, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			if describe(nets) == describe(facts.Networks) {
				continue // the watcher's first value is the state we already know
			}
			facts.Networks = nets
			t.log.Info("addresses changed", zap.String("networks", describe(nets)))
			if ann != nil && running {
				t.updateAnnouncement(ctx, ann, facts)
			}
			if running && !killing {
				t.report(status(mesos.TASK_RUNNING, "addresses changed: "+describe(nets)))
			}
		case policy := <-t.killCh:
			killedByScheduler = !killing
			startKill(policy, "killed by the scheduler")
		case <-runner.Done():
			if killing {
				<-killDone
			}
			t.report(t.terminalStatus(runner.Result(), killedByScheduler, failReason, failCode, facts))
			return
		}
	}
}

// kill is the graceful kill: withdraw the announcement first, so no client
// is sent to a dying instance; then the HTTP lifecycle endpoints; then
// signals. All of it within grace.
func (t *task) kill(ctx context.Context, p *plan, runner *sandbox.Runner, ann *announcement, grace time.Duration) {
	deadline := time.Now().Add(grace)
	kctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if ann != nil {
		if err := ann.leave(kctx); err != nil {
			t.log.Warn("withdrawing the announcement failed", zap.Error(err))
		}
	}
	t.lifecycleShutdown(kctx, p, runner)
	runner.Kill(ctx, time.Until(deadline))
}

func (t *task) terminalStatus(r sandbox.Result, killed bool, failReason string, failCode mesos.TaskStatus_Reason, facts *Facts) executor.Status {
	nets := NetworkInfos(facts.Networks)
	switch {
	case failReason != "":
		return executor.Status{State: mesos.TASK_FAILED, Message: failReason, Networks: nets,
			Reason: failCode.Enum()}
	case killed:
		// Thermos reports a kill as TASK_KILLED even when the processes
		// exited cleanly on /quitquitquit before any signal.
		return executor.Status{State: mesos.TASK_KILLED, Message: "killed by the scheduler: " + orDefault(r.Message, "task killed"), Networks: nets}
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

// joining is an announcement in progress.
type joining struct {
	facts  Facts
	cancel context.CancelFunc
	done   chan struct{} // closed when err is set
	err    error
}

func startJoin(ctx context.Context, ann *announcement, facts Facts, timeout time.Duration) *joining {
	jctx, cancel := context.WithTimeout(ctx, timeout)
	j := &joining{facts: facts, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		defer cancel()
		j.err = ann.join(jctx, &j.facts)
	}()
	return j
}

func (t *task) joinTimeout() time.Duration {
	if t.opt.Announcer != nil && t.opt.Announcer.ConnectTimeout > 0 {
		return t.opt.Announcer.ConnectTimeout
	}
	return 30 * time.Second
}

// updateAnnouncement sets the members' data to the new addresses. The
// announcer keeps converging in the background, so a slow ensemble gets a
// short wait here, never a blocked task.
func (t *task) updateAnnouncement(ctx context.Context, ann *announcement, facts *Facts) {
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ann.update(uctx, facts); err != nil {
		t.log.Warn("updating the serverset members failed", zap.Error(err))
	}
}
