package taskrun

import (
	"fmt"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/pystachio"
)

// renderSpec fills the {{...}} variables of the whole Aurora job the way
// Thermos does: task_info.py, mesos_task_instance_from_assigned_task,
// binds and interpolates the whole MesosTaskInstance (command lines,
// health check, lifecycle endpoints, announce fields, metadata, every
// string) before anything runs, and ThermosTaskValidator.
// assert_all_refs_bound refuses one with a reference left unbound. So an
// unknown variable anywhere fails the task here, naming the field.
//
// Identifiers are not rendered: process names, the task name and
// constraint orders were checked and recorded when the task spec was made (a
// template in them would make the spec disagree with itself), the announce
// portmap was resolved into the task's ports before the scope existed, and
// networks are the agent's business before the executor starts. A
// reference in them stays as written.
func renderSpec(p *taskSpec, scope map[string]string) error {
	if p.job == nil {
		return nil
	}
	r := renderer{scope: pystachio.Scope(scope)}
	renderJob(&r, p.job)
	if r.err != nil {
		return r.err
	}
	for i := range p.task.Processes {
		if i < len(p.job.Task.Processes) {
			p.task.Processes[i].Cmdline = p.job.Task.Processes[i].Cmdline
		}
	}
	return nil
}

// renderer renders one field at a time and keeps the first error.
type renderer struct {
	scope pystachio.Scope
	err   error
}

func (r *renderer) field(name string, s *string) {
	if r.err != nil || s == nil || *s == "" {
		return
	}
	out, err := pystachio.Render(*s, r.scope)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	*s = out
}

// renderJob renders every string field of job in place, named as in the
// job's JSON.
func renderJob(r *renderer, j *aurora.MesosJob) {
	r.field("name", &j.Name)
	r.field("role", &j.Role)
	r.field("contact", &j.Contact)
	r.field("cluster", &j.Cluster)
	r.field("environment", &j.Environment)
	r.field("tier", &j.Tier)
	r.field("cron_schedule", &j.CronSchedule)
	r.field("task.user", &j.Task.User)
	for i := range j.Task.Processes {
		pr := &j.Task.Processes[i]
		r.field(fmt.Sprintf("process %q cmdline (task.processes[%d].cmdline)", pr.Name, i), &pr.Cmdline)
	}
	if a := j.Announce; a != nil {
		r.field("announce.primary_port", &a.PrimaryPort)
		r.field("announce.zk_path", &a.ZkPath)
	}
	hc := &j.HealthCheckConfig.HealthChecker
	if h := hc.HTTP; h != nil {
		r.field("health_check_config.health_checker.http.endpoint", &h.Endpoint)
		r.field("health_check_config.health_checker.http.expected_response", &h.ExpectedResponse)
	}
	if sh := hc.Shell; sh != nil {
		r.field("health_check_config.health_checker.shell.shell_command", &sh.ShellCommand)
	}
	if l := j.Lifecycle.HTTP; l != nil {
		r.field("lifecycle.http.port", &l.Port)
		r.field("lifecycle.http.graceful_shutdown_endpoint", &l.GracefulShutdownEndpoint)
		r.field("lifecycle.http.shutdown_endpoint", &l.ShutdownEndpoint)
	}
	for i := range j.Metadata {
		r.field(fmt.Sprintf("metadata[%d].key", i), &j.Metadata[i].Key)
		r.field(fmt.Sprintf("metadata[%d].value", i), &j.Metadata[i].Value)
	}
}
