package health

import (
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/dewarhq/dewar/aurora"
)

// HealthPort is the port name Thermos sends HTTP checks to.
const HealthPort = "health"

// Options are the run-time facts a checker needs beyond the job.
type Options struct {
	Ports       map[string]int               // resolved port name → number (assigned ports plus portmap aliases)
	Render      func(string) (string, error) // renders the shell command's {{...}}; nil leaves it as is
	Sandbox     string                       // sandbox root, where the snooze file lives; "" disables snoozing
	Dir         string                       // working directory of shell checks
	Env         []string                     // environment of shell checks; nil inherits
	SysProcAttr *syscall.SysProcAttr         // e.g. the task user's Credential for shell checks
	// Wrap, when set, turns the rendered shell command into the argv that
	// runs it (ShellChecker.Wrapped), e.g. inside the task's filesystem image.
	Wrap func(command string) []string
}

// FromJob builds the checker Thermos would build for hc
// (HealthCheckerProvider.from_assigned_task). It returns a nil Checker when
// the check is HTTP and the task has no "health" port: Thermos then assumes
// the task healthy at once.
func FromJob(hc aurora.HealthCheckConfig, opts Options) (Checker, MonitorConfig, error) {
	mc := MonitorConfig{
		InitialInterval:         hc.InitialInterval(),
		Interval:                hc.Interval(),
		MaxConsecutiveFailures:  hc.MaxConsecutiveFailures,
		MinConsecutiveSuccesses: hc.MinConsecutiveSuccesses,
	}
	if opts.Sandbox != "" {
		mc.SnoozePath = filepath.Join(opts.Sandbox, SnoozeFile)
	}
	if sh := hc.HealthChecker.Shell; sh != nil {
		cmd := sh.ShellCommand
		if opts.Render != nil {
			var err error
			if cmd, err = opts.Render(cmd); err != nil {
				return nil, mc, fmt.Errorf("health_check_config.health_checker.shell.shell_command: %w", err)
			}
		}
		sc := &ShellChecker{
			Command:     cmd,
			Timeout:     hc.Timeout(),
			Dir:         opts.Dir,
			Env:         opts.Env,
			SysProcAttr: opts.SysProcAttr,
		}
		if opts.Wrap != nil {
			sc.Wrapped = opts.Wrap(cmd)
		}
		return sc, mc, nil
	}
	port, ok := opts.Ports[HealthPort]
	if !ok {
		return nil, mc, nil
	}
	h := hc.HealthChecker.HTTP
	if h == nil {
		d := aurora.DefaultHealthCheckConfig()
		h = d.HealthChecker.HTTP
	}
	return &HTTPChecker{
		Port:                 port,
		Endpoint:             h.Endpoint,
		ExpectedResponse:     h.ExpectedResponse,
		ExpectedResponseCode: h.ExpectedResponseCode,
		Timeout:              hc.Timeout(),
	}, mc, nil
}

// ShutdownFromJob returns the port and the ShutdownConfig of the job's HTTP
// lifecycle; ok is false when the job has none or the task lacks the port,
// and then no endpoint is called (HttpLifecycleManager.wrap).
func ShutdownFromJob(lc aurora.LifecycleConfig, ports map[string]int) (port int, cfg ShutdownConfig, ok bool) {
	h := lc.HTTP
	if h == nil {
		return 0, ShutdownConfig{}, false
	}
	port, ok = ports[h.Port]
	if !ok {
		return 0, ShutdownConfig{}, false
	}
	return port, ShutdownConfig{
		GracefulShutdownEndpoint: h.GracefulShutdownEndpoint,
		GracefulShutdownWait:     h.GracefulShutdownWait(),
		ShutdownEndpoint:         h.ShutdownEndpoint,
		ShutdownWait:             h.ShutdownWait(),
	}, true
}
