package taskrun

import (
	"context"
	"fmt"
	"syscall"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/sandbox"
)

// healthWatch follows the task's health monitor. A nil *healthWatch means
// the task has no health check: it is healthy as soon as a process runs.
type healthWatch struct {
	checker health.Checker
	cfg     health.MonitorConfig
	mon     healthMonitor
	ok      chan struct{} // closed once healthy
	bad     chan string
	okSent  bool
}

// prepareHealth builds the checker Thermos would build, before anything
// runs, so that a bad shell command template fails the task early.
func (t *task) prepareHealth(p *taskSpec, facts Facts, opt sandbox.Options) (*healthWatch, error) {
	if p.job == nil {
		return nil, nil
	}
	// The job is rendered already (renderSpec), the shell command with it.
	hopt := health.Options{
		Ports: p.ports,
		// .healthchecksnooze lives in the task's sandbox
		// (health_checker.py: os.path.join(sandbox.root, ...)); shell
		// checks run where the executor runs, $MESOS_DIRECTORY, since
		// Thermos' ShellHealthCheck sets no cwd.
		Sandbox: opt.WorkDir,
		Dir:     t.env.Config.Sandbox,
		Env:     opt.Env,
	}
	user := opt.User
	if t.opt.NoSetuidHealthChecks {
		// --nosetuid-health-checks (health_checker.py, HealthCheckerProvider).
		user = ""
	}
	cred, err := sandbox.Credential(user)
	if err != nil {
		return nil, fmt.Errorf("health check user: %w", err)
	}
	if cred != nil {
		hopt.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	imageHealth(opt, user, &hopt)
	c, mc, err := health.FromJob(p.job.HealthCheckConfig, hopt)
	if err != nil || c == nil {
		return nil, err
	}
	return &healthWatch{checker: c, cfg: mc, ok: make(chan struct{}), bad: make(chan string, 1)}, nil
}

// start runs the monitor and translates its events.
func (h *healthWatch) start(ctx context.Context, monitor startMonitor, log *zap.Logger) error {
	if h == nil {
		return nil
	}
	m, err := monitor(ctx, h.checker, h.cfg, log)
	if err != nil {
		return err
	}
	h.mon = m
	go func() {
		for ev := range m.Events() {
			switch ev.State {
			case health.Healthy:
				if !h.okSent {
					h.okSent = true
					close(h.ok)
				}
			case health.Unhealthy:
				msg := "failed health check"
				if ev.Reason != "" {
					msg += ": " + ev.Reason
				}
				select {
				case h.bad <- msg:
				default:
				}
			}
		}
	}()
	return nil
}

func (h *healthWatch) close() {
	if h != nil && h.mon != nil {
		h.mon.Close()
	}
}

func (h *healthWatch) healthy() <-chan struct{} {
	if h == nil {
		return nil
	}
	return h.ok
}

func (h *healthWatch) failed() <-chan string {
	if h == nil {
		return nil
	}
	return h.bad
}

// lifecycleShutdown calls the task's HTTP lifecycle endpoints
// (/quitquitquit, then /abortabortabort) before any signal is sent, as
// Thermos' HttpLifecycleManager, returning early when the task ends.
func (t *task) lifecycleShutdown(ctx context.Context, p *taskSpec, runner processes) {
	if p.job == nil {
		return
	}
	port, cfg, ok := health.ShutdownFromJob(p.job.Lifecycle, p.ports)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-runner.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	t.deps.lifecycle(t.log, t.opt.SignalTimeout).Shutdown(ctx, port, cfg)
}
