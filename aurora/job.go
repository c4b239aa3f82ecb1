package aurora

import (
	"time"
)

// MesosJob is the executor config Aurora's client renders from a .aurora
// file (pystachio's MesosJob), with pystachio's defaults applied. Legacy
// clients send a MesosTaskInstance instead; ParseJob maps it onto the same
// struct and sets Instance.
type MesosJob struct {
	Name                string // default: task.name
	Role                string
	Contact             string
	Cluster             string // required for a MesosJob, absent from a MesosTaskInstance
	Environment         string
	Instances           int // default 1
	Task                Task
	Announce            *Announcer // nil: the job does not announce
	Tier                string
	CronSchedule        string
	CronCollisionPolicy string // default "KILL_EXISTING"
	Service             bool
	MaxTaskFailures     int // default 1
	Production          bool
	Priority            int
	HealthCheckConfig   HealthCheckConfig
	Lifecycle           LifecycleConfig // MesosJob default: HTTP lifecycle on port "health"
	Metadata            []Metadata

	// Networks is dewar's CNI extension: the networks the scheduler asks the
	// agent to attach (copied into ExecutorInfo.container.network_infos).
	Networks []Network

	// Instance is set when the config was a legacy MesosTaskInstance, which
	// carries its own instance id.
	Instance *int
}

// Network is one CNI network the task joins.
type Network struct {
	Name   string
	Labels map[string]string
}

// Task is a Thermos task.
type Task struct {
	Name             string // default: the first process' name
	Processes        []Process
	Constraints      []Constraint
	Resources        *Resources
	MaxFailures      int // default 1; failed processes before the task fails
	MaxConcurrency   int // default 0: unlimited
	FinalizationWait int // default 30 seconds
	User             string
}

// FinalizationWaitDuration is FinalizationWait as a duration.
func (t *Task) FinalizationWaitDuration() time.Duration {
	return time.Duration(t.FinalizationWait) * time.Second
}

// Process is a Thermos process, run with bash -c.
type Process struct {
	Name        string
	Cmdline     string
	MaxFailures int  // default 1; 0 retries forever
	Daemon      bool // rerun after success
	Ephemeral   bool // not waited for when deciding the task is done
	MinDuration int  // default 5 seconds between runs
	Final       bool // runs in the finalizing phase
	Logger      *Logger
	Resources   *Resources
}

// MinDurationDuration is MinDuration as a duration.
func (p *Process) MinDurationDuration() time.Duration {
	return time.Duration(p.MinDuration) * time.Second
}

// Constraint orders processes: each waits for the one before it to succeed.
type Constraint struct {
	Order []string
}

// Resources are the task's or a process' resources. RAM and Disk are bytes.
type Resources struct {
	CPU  float64
	RAM  int64
	Disk int64
	GPU  int
}

// Logger destinations and modes (Thermos' LoggerDestination and LoggerMode).
const (
	LogFile    = "file"
	LogConsole = "console"
	LogBoth    = "both"
	LogNone    = "none"

	LogStandard = "standard"
	LogRotate   = "rotate"
)

// Logger says where a process' stdout and stderr go.
type Logger struct {
	Destination string        // default "file"
	Mode        string        // default "standard"
	Rotate      *RotatePolicy // nil: the executor's --runner-rotate-* flags decide
}

// RotatePolicy is size-based log rotation.
type RotatePolicy struct {
	LogSize int64 // bytes, default 100 MiB
	Backups int   // default 5
}

// Announcer asks for serverset announcement.
type Announcer struct {
	PrimaryPort string            // default "http"
	Portmap     map[string]string // default {"aurora": "{{primary_port}}"}; values are port names or numbers
	ZkPath      string
}

// HealthCheckConfig is pystachio's HealthCheckConfig.
type HealthCheckConfig struct {
	HealthChecker           HealthChecker
	InitialIntervalSecs     float64 // default 15
	IntervalSecs            float64 // default 10
	MaxConsecutiveFailures  int     // default 0
	MinConsecutiveSuccesses int     // default 1
	TimeoutSecs             float64 // default 1
}

// InitialInterval is InitialIntervalSecs as a duration.
func (h *HealthCheckConfig) InitialInterval() time.Duration { return seconds(h.InitialIntervalSecs) }

// Interval is IntervalSecs as a duration.
func (h *HealthCheckConfig) Interval() time.Duration { return seconds(h.IntervalSecs) }

// Timeout is TimeoutSecs as a duration.
func (h *HealthCheckConfig) Timeout() time.Duration { return seconds(h.TimeoutSecs) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// HealthChecker picks the checker: exactly one of HTTP and Shell is set
// after ParseJob (HTTP by default).
type HealthChecker struct {
	HTTP  *HTTPHealthChecker
	Shell *ShellHealthChecker
}

// HTTPHealthChecker GETs Endpoint on the task's "health" port.
type HTTPHealthChecker struct {
	Endpoint             string // default "/health"
	ExpectedResponse     string // default "ok"; compared trimmed and case-insensitively; "" accepts any body
	ExpectedResponseCode int    // default 0: any code
}

// ShellHealthChecker runs a command; exit status 0 is healthy.
type ShellHealthChecker struct {
	ShellCommand string
}

// LifecycleConfig is the graceful-kill protocol; HTTP nil disables it.
type LifecycleConfig struct {
	HTTP *HTTPLifecycleConfig
}

// HTTPLifecycleConfig is pystachio's HttpLifecycleConfig.
type HTTPLifecycleConfig struct {
	Port                     string // default "health"
	GracefulShutdownEndpoint string // default "/quitquitquit"
	ShutdownEndpoint         string // default "/abortabortabort"
	GracefulShutdownWaitSecs int    // default 5
	ShutdownWaitSecs         int    // default 5
}

// GracefulShutdownWait is GracefulShutdownWaitSecs as a duration.
func (l *HTTPLifecycleConfig) GracefulShutdownWait() time.Duration {
	return time.Duration(l.GracefulShutdownWaitSecs) * time.Second
}

// ShutdownWait is ShutdownWaitSecs as a duration.
func (l *HTTPLifecycleConfig) ShutdownWait() time.Duration {
	return time.Duration(l.ShutdownWaitSecs) * time.Second
}

// Pystachio defaults (Aurora's config/schema/base.py and Thermos'
// config/schema_base.py).
const (
	DefaultProcessMaxFailures       = 1
	DefaultProcessMinDuration       = 5
	DefaultTaskMaxFailures          = 1
	DefaultTaskMaxConcurrency       = 0
	DefaultFinalizationWait         = 30
	DefaultInitialIntervalSecs      = 15.0
	DefaultIntervalSecs             = 10.0
	DefaultMaxConsecutiveFailures   = 0
	DefaultMinConsecutiveSuccesses  = 1
	DefaultTimeoutSecs              = 1.0
	DefaultHealthEndpoint           = "/health"
	DefaultExpectedResponse         = "ok"
	DefaultPrimaryPort              = "http"
	DefaultLifecyclePort            = "health"
	DefaultGracefulShutdownEndpoint = "/quitquitquit"
	DefaultShutdownEndpoint         = "/abortabortabort"
	DefaultShutdownWaitSecs         = 5
	DefaultRotateLogSize            = 100 << 20
	DefaultRotateBackups            = 5
)

// DefaultLifecycle is the lifecycle a MesosJob gets when it names none.
func DefaultLifecycle() LifecycleConfig {
	return LifecycleConfig{HTTP: &HTTPLifecycleConfig{
		Port:                     DefaultLifecyclePort,
		GracefulShutdownEndpoint: DefaultGracefulShutdownEndpoint,
		ShutdownEndpoint:         DefaultShutdownEndpoint,
		GracefulShutdownWaitSecs: DefaultShutdownWaitSecs,
		ShutdownWaitSecs:         DefaultShutdownWaitSecs,
	}}
}

// DefaultHealthCheckConfig is pystachio's HealthCheckConfig().
func DefaultHealthCheckConfig() HealthCheckConfig {
	return HealthCheckConfig{
		HealthChecker: HealthChecker{HTTP: &HTTPHealthChecker{
			Endpoint:         DefaultHealthEndpoint,
			ExpectedResponse: DefaultExpectedResponse,
		}},
		InitialIntervalSecs:     DefaultInitialIntervalSecs,
		IntervalSecs:            DefaultIntervalSecs,
		MaxConsecutiveFailures:  DefaultMaxConsecutiveFailures,
		MinConsecutiveSuccesses: DefaultMinConsecutiveSuccesses,
		TimeoutSecs:             DefaultTimeoutSecs,
	}
}
