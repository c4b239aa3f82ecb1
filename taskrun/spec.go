package taskrun

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/sandbox"
)

// taskSpec is everything decided about a task before anything runs.
type taskSpec struct {
	name     string
	user     string // the task's user ("" = the executor's own)
	instance int
	ports    map[string]int
	task     sandbox.Task // Cmdlines still hold their {{templates}} in Aurora mode
	env      []string     // extra environment (CommandInfo.environment)
	aurora   bool         // render templates

	job      *aurora.MesosJob // nil for a plain Mesos command task
	assigned *aurora.AssignedTask
}

// errInvalid marks a task the executor refuses before running anything.
var errInvalid = errors.New("invalid task")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

// newTaskSpec decides how to run info: an Aurora AssignedTask in data, or a
// plain Mesos CommandInfo.
func newTaskSpec(info mesos.TaskInfo, fw mesos.FrameworkInfo) (*taskSpec, error) {
	switch {
	case len(info.GetData()) > 0:
		return auroraSpec(info)
	case info.Command != nil:
		return commandSpec(info, fw)
	default:
		return nil, invalidf("task %s has neither data (an Aurora AssignedTask) nor a command; dewar runs one or the other", info.TaskID.Value)
	}
}

// commandSpec runs CommandInfo as one process: the mode any Mesos
// framework can use.
func commandSpec(info mesos.TaskInfo, fw mesos.FrameworkInfo) (*taskSpec, error) {
	c := info.Command
	cmdline := c.GetValue()
	if !c.GetShell() && c.Shell != nil {
		// shell=false: value is the program, arguments its argv (argv[0]
		// included), as Mesos' command executor execs it.
		if cmdline == "" {
			return nil, invalidf("command.value is empty")
		}
		parts := []string{"exec", shellQuote(cmdline)}
		args := c.GetArguments()
		if len(args) > 1 {
			for _, a := range args[1:] {
				parts = append(parts, shellQuote(a))
			}
		}
		cmdline = strings.Join(parts, " ")
	}
	if strings.TrimSpace(cmdline) == "" {
		return nil, invalidf("command.value is empty: nothing to run")
	}
	p := &taskSpec{
		name:  info.GetName(),
		user:  c.GetUser(),
		ports: map[string]int{},
	}
	if p.user == "" {
		p.user = fw.GetUser()
	}
	name := "command"
	p.task = sandbox.Task{
		Name: name,
		Processes: []sandbox.Process{{
			Name: name, Cmdline: cmdline, MaxFailures: 1,
		}},
		MaxFailures: 1,
	}
	for _, v := range c.GetEnvironment().GetVariables() {
		if v.GetType() == mesos.Environment_Variable_SECRET {
			return nil, invalidf("environment variable %s is a secret; dewar does not resolve Mesos secrets", v.GetName())
		}
		p.env = append(p.env, v.GetName()+"="+v.GetValue())
	}
	for _, r := range info.GetResources() {
		if r.GetName() != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			for port := rg.Begin; port <= rg.End && len(p.ports) < 64; port++ {
				p.ports[fmt.Sprintf("port%d", len(p.ports))] = int(port)
			}
		}
	}
	return p, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// auroraSpec decodes the AssignedTask Aurora puts in TaskInfo.data and the
// MesosJob JSON inside it.
func auroraSpec(info mesos.TaskInfo) (*taskSpec, error) {
	at, err := aurora.DecodeAssignedTask(info.GetData())
	if err != nil {
		return nil, invalidf("TaskInfo.data is not an Aurora AssignedTask: %v", err)
	}
	if at.Task.ExecutorConfig == nil || at.Task.ExecutorConfig.Data == "" {
		return nil, invalidf("AssignedTask.task.executorConfig.data is empty: the scheduler sent no job configuration")
	}
	job, err := aurora.ParseJob([]byte(at.Task.ExecutorConfig.Data))
	if err != nil {
		return nil, invalidf("AssignedTask.task.executorConfig.data: %v", err)
	}
	p := &taskSpec{
		name:     job.Task.Name,
		instance: int(at.InstanceID),
		ports:    map[string]int{},
		aurora:   true,
		job:      job,
		assigned: at,
	}
	if job.Instance != nil {
		p.instance = *job.Instance
	}
	// Thermos runs the task as its role (the job key's role, else the
	// config's role).
	p.user = at.Task.Key().Role
	if p.user == "" {
		p.user = job.Role
	}
	// Thermos' view of the ports: assigned ones plus the announce
	// portmap's aliases and static ports, so {{thermos.ports[alias]}} and a
	// "health" alias work as on Thermos.
	ports, _, err := aurora.ResolvePorts(job.Announce, at.AssignedPorts)
	if err != nil {
		return nil, invalidf("announce.portmap: %v", err)
	}
	p.ports = ports
	p.task = sandbox.Task{
		Name:             job.Task.Name,
		MaxFailures:      job.Task.MaxFailures,
		MaxConcurrency:   job.Task.MaxConcurrency,
		FinalizationWait: job.Task.FinalizationWaitDuration(),
	}
	for _, pr := range job.Task.Processes {
		p.task.Processes = append(p.task.Processes, sandbox.Process{
			Name:        pr.Name,
			Cmdline:     pr.Cmdline,
			MaxFailures: pr.MaxFailures,
			MinDuration: pr.MinDurationDuration(),
			Daemon:      pr.Daemon,
			Ephemeral:   pr.Ephemeral,
			Final:       pr.Final,
		})
	}
	for _, c := range job.Task.Constraints {
		p.task.Order = append(p.task.Order, c.Order)
	}
	return p, nil
}

// portNames lists the task's port names, for messages.
func (p *taskSpec) portNames() string {
	var names []string
	for n := range p.ports {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// preemptionWait is the time from SIGTERM to SIGKILL of a kill: the KILL's
// kill_policy grace period, else the TaskInfo's (Mesos: used when the kill
// event has none), else def, Thermos' preemption wait. An explicit 0 means
// SIGKILL at once.
func preemptionWait(policy, taskPolicy *mesos.KillPolicy, def time.Duration) time.Duration {
	for _, p := range []*mesos.KillPolicy{policy, taskPolicy} {
		if gp := p.GetGracePeriod(); gp != nil {
			return max(time.Duration(gp.GetNanoseconds()), 0)
		}
	}
	return def
}

// applyLoggers gives every process with its own Thermos logger its log
// configuration; what the logger leaves out (rotation sizes) comes from the
// executor's --runner-* flags, as Thermos does.
func applyLoggers(p *taskSpec, def sandbox.LogConfig) {
	if p.job == nil {
		return
	}
	for i, pr := range p.job.Task.Processes {
		l := pr.Logger
		if l == nil || i >= len(p.task.Processes) {
			continue
		}
		lc := def
		if l.Destination != "" {
			lc.Destination = l.Destination
		}
		if l.Mode != "" {
			lc.Mode = l.Mode
		}
		if r := l.Rotate; r != nil {
			if r.LogSize > 0 {
				lc.RotateSizeBytes = r.LogSize
			}
			if r.Backups > 0 {
				lc.RotateBackups = r.Backups
			}
		}
		p.task.Processes[i].Log = &lc
	}
}
