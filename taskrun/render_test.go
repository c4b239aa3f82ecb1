package taskrun

import (
	"errors"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/pystachio"
	"github.com/dewarhq/dewar/sandbox"
)

// Thermos renders the whole MesosTaskInstance, not only command lines
// (task_info.py, mesos_task_instance_from_assigned_task: interpolate).
func TestRenderSpecRendersEveryStringField(t *testing.T) {
	scope := map[string]string{
		"mesos.instance":      "3",
		"mesos.hostname":      "agent1",
		"mesos.ip":            "198.18.0.7",
		"thermos.task_id":     "t-1",
		"thermos.ports[http]": "31000",
	}
	base := func() string {
		return `{"name": "web", "role": "www", "environment": "prod", "cluster": "c",
		  "task": {"name": "web", "processes": [{"name": "serve", "cmdline": "serve --port {{thermos.ports[http]}}"}]},
		  "announce": {"primary_port": "http", "zk_path": "/aurora/{{mesos.instance}}"},
		  "health_check_config": {"health_checker": {"http": {"endpoint": "/health/{{mesos.instance}}", "expected_response": "ok {{thermos.task_id}}"}}},
		  "lifecycle": {"http": {"port": "health", "graceful_shutdown_endpoint": "/quit/{{mesos.hostname}}", "shutdown_endpoint": "/abort?ip={{mesos.ip}}"}},
		  "contact": "{{mesos.hostname}}@example.com"}`
	}
	for _, tt := range []struct {
		name string
		edit func(string) string
		get  func(*taskSpec) string
		want string
	}{
		{"process cmdline", nil, func(p *taskSpec) string { return p.task.Processes[0].Cmdline }, "serve --port 31000"},
		{"HTTP health endpoint", nil, func(p *taskSpec) string { return p.job.HealthCheckConfig.HealthChecker.HTTP.Endpoint }, "/health/3"},
		{"HTTP health expected response", nil, func(p *taskSpec) string { return p.job.HealthCheckConfig.HealthChecker.HTTP.ExpectedResponse }, "ok t-1"},
		{"lifecycle graceful endpoint", nil, func(p *taskSpec) string { return p.job.Lifecycle.HTTP.GracefulShutdownEndpoint }, "/quit/agent1"},
		{"lifecycle shutdown endpoint", nil, func(p *taskSpec) string { return p.job.Lifecycle.HTTP.ShutdownEndpoint }, "/abort?ip=198.18.0.7"},
		{"announce zk_path", nil, func(p *taskSpec) string { return p.job.Announce.ZkPath }, "/aurora/3"},
		{"contact", nil, func(p *taskSpec) string { return p.job.Contact }, "agent1@example.com"},
		{"shell health check", func(s string) string {
			return strings.Replace(s, `{"http": {"endpoint": "/health/{{mesos.instance}}", "expected_response": "ok {{thermos.task_id}}"}}`,
				`{"shell": {"shell_command": "check {{mesos.ip}}"}}`, 1)
		}, func(p *taskSpec) string { return p.job.HealthCheckConfig.HealthChecker.Shell.ShellCommand }, "check 198.18.0.7"},
		{"escape stays literal, rendered once", func(s string) string {
			return strings.Replace(s, `"/quit/{{mesos.hostname}}"`, `"/quit/{{&mesos.nope}}"`, 1)
		}, func(p *taskSpec) string { return p.job.Lifecycle.HTTP.GracefulShutdownEndpoint }, "/quit/{{mesos.nope}}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := base()
			if tt.edit != nil {
				doc = tt.edit(doc)
			}
			p := renderTestSpec(t, doc)
			if err := renderSpec(p, scope); err != nil {
				t.Fatalf("renderSpec: %v", err)
			}
			if got := tt.get(p); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// An unknown variable anywhere fails the task before anything runs, and
// the message names the field.
func TestRenderSpecUnknownVariableNamesTheField(t *testing.T) {
	scope := map[string]string{"mesos.instance": "0", "thermos.ports[http]": "31000"}
	for _, tt := range []struct {
		name, job, field string
	}{
		{"cmdline", `"task": {"processes": [{"name": "web", "cmdline": "run {{thermos.nope}}"}]}`, `process "web" cmdline (task.processes[0].cmdline)`},
		{"HTTP health endpoint", `"health_check_config": {"health_checker": {"http": {"endpoint": "/{{mesos.nope}}"}}}`, "health_check_config.health_checker.http.endpoint"},
		{"shell health check", `"health_check_config": {"health_checker": {"shell": {"shell_command": "{{mesos.nope}}"}}}`, "health_check_config.health_checker.shell.shell_command"},
		{"lifecycle endpoint", `"lifecycle": {"http": {"shutdown_endpoint": "/{{mesos.nope}}"}}`, "lifecycle.http.shutdown_endpoint"},
		{"lifecycle port", `"lifecycle": {"http": {"port": "{{mesos.nope}}"}}`, "lifecycle.http.port"},
		{"announce primary_port", `"announce": {"primary_port": "{{mesos.nope}}", "portmap": {}}`, "announce.primary_port"},
		{"metadata value", `"metadata": [{"key": "k", "value": "{{mesos.nope}}"}]`, "metadata[0].value"},
		{"tier", `"tier": "{{mesos.nope}}"`, "tier"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"role": "www", "environment": "prod", "cluster": "c", ` + tt.job
			if !strings.Contains(tt.job, `"task"`) {
				doc += `, "task": {"processes": [{"name": "web", "cmdline": "true"}]}`
			}
			doc += "}"
			p := renderTestSpec(t, doc)
			err := renderSpec(p, scope)
			if err == nil {
				t.Fatal("renderSpec accepted an unknown variable")
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("error %q does not start with the field %q", err, tt.field)
			}
			var unbound *pystachio.UnboundError
			if !errors.As(err, &unbound) {
				t.Errorf("error %v is not a *pystachio.UnboundError", err)
			}
		})
	}
}

func renderTestSpec(t *testing.T, doc string) *taskSpec {
	t.Helper()
	job, err := aurora.ParseJob([]byte(doc))
	if err != nil {
		t.Fatalf("ParseJob: %v", err)
	}
	p := &taskSpec{job: job, aurora: true}
	for _, pr := range job.Task.Processes {
		p.task.Processes = append(p.task.Processes, sandbox.Process{Name: pr.Name, Cmdline: pr.Cmdline})
	}
	return p
}
