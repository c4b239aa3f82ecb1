package aurora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ParseJob reads the executor config JSON (TaskConfig.executorConfig.data):
// a pystachio MesosJob, or a legacy MesosTaskInstance when it has an
// "instance" key. Missing optional fields get pystachio's defaults; fields
// this package does not know are ignored, as newer clients add some. A wrong
// type, a missing required field or a task Thermos would refuse to plan is a
// *JobError naming the field.
func ParseJob(data []byte) (*MesosJob, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &JobError{Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &JobError{Err: errors.New("invalid JSON: trailing data after the config object")}
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, &JobError{Err: fmt.Errorf("want a JSON object, got %s", describe(doc))}
	}
	p := &parser{}
	job := p.job(object{m: m})
	if p.err != nil {
		return nil, p.err
	}
	if err := validateTask(&job.Task); err != nil {
		return nil, err
	}
	return job, nil
}

// parser keeps the first error, so that reading a struct is one line a field.
type parser struct{ err error }

func (p *parser) keep(err error) {
	if p.err == nil && err != nil {
		p.err = err
	}
}

func (p *parser) str(o object, key, def string) string {
	v, err := o.str(key, def)
	p.keep(err)
	return v
}

func (p *parser) integer(o object, key string, def int) int {
	v, err := o.integer(key, def)
	p.keep(err)
	return v
}

func (p *parser) float(o object, key string, def float64) float64 {
	v, err := o.float(key, def)
	p.keep(err)
	return v
}

func (p *parser) boolean(o object, key string, def bool) bool {
	v, err := o.boolean(key, def)
	p.keep(err)
	return v
}

func (p *parser) required(o object, keys ...string) {
	for _, k := range keys {
		p.keep(o.required(k))
	}
}

func (p *parser) obj(o object, key string) (object, bool) {
	v, ok, err := o.obj(key)
	p.keep(err)
	return v, ok && err == nil
}

func (p *parser) objects(o object, key string) []object {
	v, err := o.objects(key)
	p.keep(err)
	return v
}

func (p *parser) job(o object) *MesosJob {
	j := &MesosJob{}
	legacy := o.has("instance")
	if legacy {
		// MesosTaskInstance: Required task, instance, role, environment.
		p.required(o, "task", "role", "environment")
		n := p.integer(o, "instance", 0)
		j.Instance = &n
	} else {
		p.required(o, "task", "role", "environment", "cluster")
	}
	j.Role = p.str(o, "role", "")
	j.Environment = p.str(o, "environment", "")
	j.Cluster = p.str(o, "cluster", "")
	j.Contact = p.str(o, "contact", "")
	j.Instances = p.integer(o, "instances", 1)
	j.Tier = p.str(o, "tier", "")
	j.CronSchedule = p.str(o, "cron_schedule", "")
	j.CronCollisionPolicy = p.str(o, "cron_collision_policy", "KILL_EXISTING")
	j.Service = p.boolean(o, "service", false)
	j.MaxTaskFailures = p.integer(o, "max_task_failures", 1)
	j.Production = p.boolean(o, "production", false)
	j.Priority = p.integer(o, "priority", 0)
	if t, ok := p.obj(o, "task"); ok {
		j.Task = p.task(t)
	}
	j.Name = p.str(o, "name", j.Task.Name)
	if a, ok := p.obj(o, "announce"); ok {
		j.Announce = p.announcer(a)
	}
	j.HealthCheckConfig = DefaultHealthCheckConfig()
	if h, ok := p.obj(o, "health_check_config"); ok {
		j.HealthCheckConfig = p.healthCheck(h)
	}
	// A MesosJob defaults to the HTTP lifecycle; a MesosTaskInstance has
	// no default (Aurora's schema/base.py).
	if !legacy {
		j.Lifecycle = DefaultLifecycle()
	}
	if l, ok := p.obj(o, "lifecycle"); ok {
		j.Lifecycle = p.lifecycle(l)
	}
	for _, m := range p.objects(o, "metadata") {
		p.required(m, "key", "value")
		j.Metadata = append(j.Metadata, Metadata{Key: p.str(m, "key", ""), Value: p.str(m, "value", "")})
	}
	j.Networks = p.networks(o)
	return j
}

func (p *parser) task(o object) Task {
	t := Task{
		MaxFailures:      p.integer(o, "max_failures", DefaultTaskMaxFailures),
		MaxConcurrency:   p.integer(o, "max_concurrency", DefaultTaskMaxConcurrency),
		FinalizationWait: p.integer(o, "finalization_wait", DefaultFinalizationWait),
		User:             p.str(o, "user", ""),
	}
	for _, po := range p.objects(o, "processes") {
		t.Processes = append(t.Processes, p.process(po))
	}
	def := ""
	if len(t.Processes) > 0 {
		def = t.Processes[0].Name
	}
	t.Name = p.str(o, "name", def)
	for _, co := range p.objects(o, "constraints") {
		order, err := co.strings("order")
		p.keep(err)
		t.Constraints = append(t.Constraints, Constraint{Order: order})
	}
	if r, ok := p.obj(o, "resources"); ok {
		t.Resources = p.resources(r)
	}
	return t
}

func (p *parser) process(o object) Process {
	p.required(o, "name", "cmdline")
	pr := Process{
		Name:        p.str(o, "name", ""),
		Cmdline:     p.str(o, "cmdline", ""),
		MaxFailures: p.integer(o, "max_failures", DefaultProcessMaxFailures),
		Daemon:      p.boolean(o, "daemon", false),
		Ephemeral:   p.boolean(o, "ephemeral", false),
		MinDuration: p.integer(o, "min_duration", DefaultProcessMinDuration),
		Final:       p.boolean(o, "final", false),
	}
	if l, ok := p.obj(o, "logger"); ok {
		pr.Logger = p.logger(l)
	}
	if r, ok := p.obj(o, "resources"); ok {
		pr.Resources = p.resources(r)
	}
	if pr.MaxFailures < 0 {
		p.keep(jobErr(o.at("max_failures"), "must be >= 0 (0 retries forever), got %d", pr.MaxFailures))
	}
	if pr.MinDuration < 0 {
		p.keep(jobErr(o.at("min_duration"), "must be >= 0, got %d", pr.MinDuration))
	}
	return pr
}

func (p *parser) resources(o object) *Resources {
	r := &Resources{CPU: p.float(o, "cpu", 0), GPU: p.integer(o, "gpu", 0)}
	var err error
	r.RAM, err = o.int64("ram")
	p.keep(err)
	r.Disk, err = o.int64("disk")
	p.keep(err)
	return r
}

func (p *parser) logger(o object) *Logger {
	l := &Logger{
		Destination: p.str(o, "destination", LogFile),
		Mode:        p.str(o, "mode", LogStandard),
	}
	switch l.Destination {
	case LogFile, LogConsole, LogBoth, LogNone:
	default:
		p.keep(jobErr(o.at("destination"), "want one of file, console, both, none; got %q", l.Destination))
	}
	switch l.Mode {
	case LogStandard, LogRotate:
	default:
		p.keep(jobErr(o.at("mode"), "want standard or rotate; got %q", l.Mode))
	}
	if r, ok := p.obj(o, "rotate"); ok {
		var err error
		l.Rotate = &RotatePolicy{Backups: p.integer(r, "backups", DefaultRotateBackups), LogSize: DefaultRotateLogSize}
		if r.has("log_size") {
			l.Rotate.LogSize, err = r.int64("log_size")
			p.keep(err)
		}
		if l.Rotate.LogSize <= 0 {
			p.keep(jobErr(r.at("log_size"), "must be > 0, got %d", l.Rotate.LogSize))
		}
		if l.Rotate.Backups < 0 {
			p.keep(jobErr(r.at("backups"), "must be >= 0, got %d", l.Rotate.Backups))
		}
	}
	return l
}

func (p *parser) announcer(o object) *Announcer {
	a := &Announcer{
		PrimaryPort: p.str(o, "primary_port", DefaultPrimaryPort),
		ZkPath:      p.str(o, "zk_path", ""),
	}
	pm, ok, err := o.stringMap("portmap")
	p.keep(err)
	if !ok {
		pm = map[string]string{"aurora": "{{primary_port}}"}
	}
	// The client renders {{primary_port}} before sending; resolve it here
	// too so that a hand-written config means the same.
	for k, v := range pm {
		if v == "{{primary_port}}" {
			pm[k] = a.PrimaryPort
		}
	}
	a.Portmap = pm
	return a
}

func (p *parser) healthCheck(o object) HealthCheckConfig {
	h := HealthCheckConfig{
		InitialIntervalSecs:     p.float(o, "initial_interval_secs", DefaultInitialIntervalSecs),
		IntervalSecs:            p.float(o, "interval_secs", DefaultIntervalSecs),
		MaxConsecutiveFailures:  p.integer(o, "max_consecutive_failures", DefaultMaxConsecutiveFailures),
		MinConsecutiveSuccesses: p.integer(o, "min_consecutive_successes", DefaultMinConsecutiveSuccesses),
		TimeoutSecs:             p.float(o, "timeout_secs", DefaultTimeoutSecs),
	}
	if hc, ok := p.obj(o, "health_checker"); ok {
		if so, ok := p.obj(hc, "shell"); ok {
			p.required(so, "shell_command")
			h.HealthChecker.Shell = &ShellHealthChecker{ShellCommand: p.str(so, "shell_command", "")}
		} else {
			ho, _ := p.obj(hc, "http")
			h.HealthChecker.HTTP = p.httpChecker(ho)
		}
	} else if p.str(o, "type", "http") == "shell" {
		// Before Aurora 0.13 the checker fields sat in HealthCheckConfig
		// itself, chosen by "type".
		p.required(o, "shell_command")
		h.HealthChecker.Shell = &ShellHealthChecker{ShellCommand: p.str(o, "shell_command", "")}
	} else {
		h.HealthChecker.HTTP = p.httpChecker(o)
	}
	if h.IntervalSecs <= 0 {
		p.keep(jobErr(o.at("interval_secs"), "must be > 0, got %v", h.IntervalSecs))
	}
	if h.InitialIntervalSecs < 0 {
		p.keep(jobErr(o.at("initial_interval_secs"), "must be >= 0, got %v", h.InitialIntervalSecs))
	}
	if h.TimeoutSecs <= 0 {
		p.keep(jobErr(o.at("timeout_secs"), "must be > 0, got %v", h.TimeoutSecs))
	}
	if h.MaxConsecutiveFailures < 0 {
		p.keep(jobErr(o.at("max_consecutive_failures"), "must be >= 0, got %d", h.MaxConsecutiveFailures))
	}
	// The Aurora client accepts 0 (client/config.py,
	// _validate_update_config: only negative values are refused); Thermos
	// then becomes healthy on the first success.
	if h.MinConsecutiveSuccesses < 0 {
		p.keep(jobErr(o.at("min_consecutive_successes"), "must be >= 0, got %d", h.MinConsecutiveSuccesses))
	}
	return h
}

// httpChecker reads an HttpHealthChecker; o may be the zero object (absent).
func (p *parser) httpChecker(o object) *HTTPHealthChecker {
	return &HTTPHealthChecker{
		Endpoint:             p.str(o, "endpoint", DefaultHealthEndpoint),
		ExpectedResponse:     p.str(o, "expected_response", DefaultExpectedResponse),
		ExpectedResponseCode: p.integer(o, "expected_response_code", 0),
	}
}

func (p *parser) lifecycle(o object) LifecycleConfig {
	h, ok := p.obj(o, "http")
	if !ok {
		return LifecycleConfig{}
	}
	l := &HTTPLifecycleConfig{
		Port:                     p.str(h, "port", DefaultLifecyclePort),
		GracefulShutdownEndpoint: p.str(h, "graceful_shutdown_endpoint", DefaultGracefulShutdownEndpoint),
		ShutdownEndpoint:         p.str(h, "shutdown_endpoint", DefaultShutdownEndpoint),
		GracefulShutdownWaitSecs: p.integer(h, "graceful_shutdown_wait_secs", DefaultShutdownWaitSecs),
		ShutdownWaitSecs:         p.integer(h, "shutdown_wait_secs", DefaultShutdownWaitSecs),
	}
	if l.GracefulShutdownWaitSecs < 0 {
		p.keep(jobErr(h.at("graceful_shutdown_wait_secs"), "must be >= 0, got %d", l.GracefulShutdownWaitSecs))
	}
	if l.ShutdownWaitSecs < 0 {
		p.keep(jobErr(h.at("shutdown_wait_secs"), "must be >= 0, got %d", l.ShutdownWaitSecs))
	}
	return LifecycleConfig{HTTP: l}
}

func (p *parser) networks(o object) []Network {
	var out []Network
	seen := map[string]bool{}
	for _, no := range p.objects(o, "networks") {
		p.required(no, "name")
		n := Network{Name: p.str(no, "name", "")}
		labels, _, err := no.stringMap("labels")
		p.keep(err)
		n.Labels = labels
		if n.Name == "" && no.has("name") {
			p.keep(jobErr(no.at("name"), "must not be empty"))
		}
		if seen[n.Name] {
			p.keep(jobErr(no.at("name"), "network %q is listed twice", n.Name))
		}
		seen[n.Name] = true
		out = append(out, n)
	}
	return out
}
