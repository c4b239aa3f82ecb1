package aurora

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "aurora", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, j *MesosJob)
	}{
		{"hello_world.json", func(t *testing.T, j *MesosJob) {
			want := Process{Name: "hello", Cmdline: "echo hello world from instance {{mesos.instance}} of task {{thermos.task_id}}", MaxFailures: 1, MinDuration: 5}
			if !reflect.DeepEqual(j.Task.Processes, []Process{want}) {
				t.Errorf("processes = %+v", j.Task.Processes)
			}
			if j.Name != "hello_world" || j.Role != "root" || j.Environment != "devel" || j.Cluster != "devcluster" {
				t.Errorf("job key = %s/%s/%s@%s", j.Role, j.Environment, j.Name, j.Cluster)
			}
			if j.Announce != nil {
				t.Errorf("announce = %+v, want none", j.Announce)
			}
			if *j.Task.Resources != (Resources{CPU: 0.1, RAM: 16 << 20, Disk: 16 << 20}) {
				t.Errorf("resources = %+v", *j.Task.Resources)
			}
		}},
		{"web_service.json", func(t *testing.T, j *MesosJob) {
			if !j.Service || j.Instances != 2 || j.Tier != "preferred" {
				t.Errorf("service=%v instances=%d tier=%q", j.Service, j.Instances, j.Tier)
			}
			if a := j.Announce; a == nil || a.PrimaryPort != "http" || !reflect.DeepEqual(a.Portmap, map[string]string{"aurora": "http"}) {
				t.Errorf("announce = %+v", a)
			}
			h := j.HealthCheckConfig
			if h.HealthChecker.HTTP == nil || *h.HealthChecker.HTTP != (HTTPHealthChecker{"/health", "ok", 200}) {
				t.Errorf("http checker = %+v", h.HealthChecker.HTTP)
			}
			if h.InitialIntervalSecs != 5 || h.IntervalSecs != 1 || h.MaxConsecutiveFailures != 2 || h.MinConsecutiveSuccesses != 1 || h.TimeoutSecs != 1 {
				t.Errorf("health check = %+v", h)
			}
			if l := j.Lifecycle.HTTP; l == nil || l.GracefulShutdownWait().Seconds() != 1 || l.ShutdownWait().Seconds() != 1 || l.Port != "health" {
				t.Errorf("lifecycle = %+v", l)
			}
			if !reflect.DeepEqual(j.Metadata, []Metadata{{Key: "owner", Value: "dewar-tests"}}) {
				t.Errorf("metadata = %+v", j.Metadata)
			}
		}},
		{"ordered_final.json", func(t *testing.T, j *MesosJob) {
			var final []string
			for _, p := range j.Task.Processes {
				if p.Final {
					final = append(final, p.Name)
				}
			}
			if !reflect.DeepEqual(final, []string{"archive", "cleanup"}) {
				t.Errorf("final processes = %v", final)
			}
			want := []Constraint{{Order: []string{"fetch", "build", "publish"}}, {Order: []string{"archive", "cleanup"}}}
			if !reflect.DeepEqual(j.Task.Constraints, want) {
				t.Errorf("constraints = %+v", j.Task.Constraints)
			}
		}},
		{"cron_batch.json", func(t *testing.T, j *MesosJob) {
			if j.CronSchedule != "*/5 * * * *" || j.CronCollisionPolicy != "CANCEL_NEW" || j.Service {
				t.Errorf("cron = %q %q service=%v", j.CronSchedule, j.CronCollisionPolicy, j.Service)
			}
			p := j.Task.Processes[0]
			if p.MaxFailures != 3 || p.MinDuration != 1 || j.Task.MaxConcurrency != 1 {
				t.Errorf("process = %+v, task max_concurrency %d", p, j.Task.MaxConcurrency)
			}
			if p.Logger == nil || *p.Logger.Rotate != (RotatePolicy{LogSize: 1 << 20, Backups: 2}) || p.Logger.Mode != LogRotate {
				t.Errorf("logger = %+v", p.Logger)
			}
		}},
		{"cni_service.json", func(t *testing.T, j *MesosJob) {
			want := []Network{{Name: "blue", Labels: map[string]string{"app": "web"}}, {Name: "green", Labels: map[string]string{}}}
			if !reflect.DeepEqual(j.Networks, want) {
				t.Errorf("networks = %+v", j.Networks)
			}
			if s := j.HealthCheckConfig.HealthChecker.Shell; s == nil || s.ShellCommand != "test -n '{{mesos.ip}}'" || j.HealthCheckConfig.HealthChecker.HTTP != nil {
				t.Errorf("health checker = %+v", j.HealthCheckConfig.HealthChecker)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			j, err := ParseJob(readFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if j.Instance != nil {
				t.Errorf("Instance = %d, want nil for a MesosJob", *j.Instance)
			}
			tc.check(t, j)
		})
	}
}

func TestParseAppliesPystachioDefaults(t *testing.T) {
	j, err := ParseJob([]byte(`{"role":"www","environment":"prod","cluster":"c",
		"task":{"processes":[{"name":"p","cmdline":"true"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &MesosJob{
		Name: "p", Role: "www", Environment: "prod", Cluster: "c",
		Instances: 1, CronCollisionPolicy: "KILL_EXISTING", MaxTaskFailures: 1,
		Task: Task{
			Name:             "p",
			Processes:        []Process{{Name: "p", Cmdline: "true", MaxFailures: 1, MinDuration: 5}},
			MaxFailures:      1,
			MaxConcurrency:   0,
			FinalizationWait: 30,
		},
		HealthCheckConfig: HealthCheckConfig{
			HealthChecker:           HealthChecker{HTTP: &HTTPHealthChecker{Endpoint: "/health", ExpectedResponse: "ok"}},
			InitialIntervalSecs:     15,
			IntervalSecs:            10,
			MaxConsecutiveFailures:  0,
			MinConsecutiveSuccesses: 1,
			TimeoutSecs:             1,
		},
		Lifecycle: LifecycleConfig{HTTP: &HTTPLifecycleConfig{
			Port: "health", GracefulShutdownEndpoint: "/quitquitquit", ShutdownEndpoint: "/abortabortabort",
			GracefulShutdownWaitSecs: 5, ShutdownWaitSecs: 5,
		}},
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("got  %+v\nwant %+v", j, want)
	}
}

func TestParseDefaultsOfNestedStructs(t *testing.T) {
	j, err := ParseJob([]byte(`{"role":"www","environment":"prod","cluster":"c",
		"announce":{},
		"health_check_config":{"health_checker":{"http":{}},"interval_secs":2},
		"lifecycle":{"http":{"port":"admin"}},
		"task":{"processes":[{"name":"p","cmdline":"true","logger":{}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a := j.Announce; a.PrimaryPort != "http" || !reflect.DeepEqual(a.Portmap, map[string]string{"aurora": "http"}) {
		t.Errorf("announce = %+v, want primary http and portmap aurora→http", a)
	}
	if h := j.HealthCheckConfig; h.IntervalSecs != 2 || h.InitialIntervalSecs != 15 || *h.HealthChecker.HTTP != (HTTPHealthChecker{"/health", "ok", 0}) {
		t.Errorf("health = %+v", h)
	}
	if l := j.Lifecycle.HTTP; l.Port != "admin" || l.GracefulShutdownEndpoint != "/quitquitquit" || l.ShutdownWaitSecs != 5 {
		t.Errorf("lifecycle = %+v", l)
	}
	if l := j.Task.Processes[0].Logger; *l != (Logger{Destination: "file", Mode: "standard"}) {
		t.Errorf("logger = %+v", l)
	}
}

func TestParseCoercesScalarsAsPystachio(t *testing.T) {
	j, err := ParseJob([]byte(`{"role":"www","environment":"prod","cluster":"c","instances":"3","service":1,
		"health_check_config":{"interval_secs":5,"timeout_secs":"0.5"},
		"task":{"processes":[{"name":"p","cmdline":"true","max_failures":2.0,"daemon":"true"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.Instances != 3 || !j.Service || j.HealthCheckConfig.IntervalSecs != 5 || j.HealthCheckConfig.TimeoutSecs != 0.5 {
		t.Errorf("job = %+v", j)
	}
	if p := j.Task.Processes[0]; p.MaxFailures != 2 || !p.Daemon {
		t.Errorf("process = %+v", p)
	}
}

func TestParseLegacyMesosTaskInstance(t *testing.T) {
	j, err := ParseJob([]byte(`{"instance":4,"role":"www","environment":"prod",
		"health_check_config":{"type":"shell","shell_command":"true","interval_secs":3},
		"task":{"name":"t","processes":[{"name":"p","cmdline":"true"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.Instance == nil || *j.Instance != 4 {
		t.Fatalf("Instance = %v, want 4", j.Instance)
	}
	if j.Lifecycle.HTTP != nil {
		t.Errorf("lifecycle = %+v, want none: MesosTaskInstance has no default lifecycle", j.Lifecycle.HTTP)
	}
	if s := j.HealthCheckConfig.HealthChecker.Shell; s == nil || s.ShellCommand != "true" || j.HealthCheckConfig.IntervalSecs != 3 {
		t.Errorf("health = %+v (pre-0.13 layout with type=shell)", j.HealthCheckConfig)
	}
	if j.Cluster != "" || j.Name != "t" {
		t.Errorf("cluster %q name %q", j.Cluster, j.Name)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	const head = `"role":"www","environment":"prod","cluster":"c"`
	proc := func(name string, extra string) string {
		return `{"name":"` + name + `","cmdline":"true"` + extra + `}`
	}
	task := func(procs []string, constraints string) string {
		return `{` + head + `,"task":{"processes":[` + strings.Join(procs, ",") + `],"constraints":` + constraints + `}}`
	}
	tests := []struct {
		name      string
		json      string
		wantField string
		wantText  string
	}{
		{"invalid JSON", `{"role":`, "", "invalid JSON"},
		{"trailing data", `{} {}`, "", "trailing data"},
		{"not an object", `[1]`, "", "want a JSON object"},
		{"missing role", `{"environment":"e","cluster":"c","task":{"processes":[` + proc("p", "") + `]}}`, "role", "required"},
		{"missing cluster", `{"role":"r","environment":"e","task":{"processes":[` + proc("p", "") + `]}}`, "cluster", "required"},
		{"legacy missing task", `{"instance":0,"role":"r","environment":"e"}`, "task", "required"},
		{"role is a number list", `{"role":[1],"environment":"e","cluster":"c","task":{"processes":[]}}`, "role", "want a string"},
		{"task is a string", `{` + head + `,"task":"x"}`, "task", "want an object"},
		{"processes is an object", `{` + head + `,"task":{"processes":{}}}`, "task.processes", "want a list"},
		{"no processes", `{` + head + `,"task":{"processes":[]}}`, "task.processes", "at least one process"},
		{"process without cmdline", `{` + head + `,"task":{"processes":[{"name":"p"}]}}`, "task.processes[0].cmdline", "required"},
		{"max_failures not integer", task([]string{proc("p", `,"max_failures":"many"`)}, `[]`), "task.processes[0].max_failures", "want an integer"},
		{"max_failures fraction", task([]string{proc("p", `,"max_failures":1.5`)}, `[]`), "task.processes[0].max_failures", "want an integer"},
		{"negative max_failures", task([]string{proc("p", `,"max_failures":-1`)}, `[]`), "task.processes[0].max_failures", ">= 0"},
		{"daemon not boolean", task([]string{proc("p", `,"daemon":"yes"`)}, `[]`), "task.processes[0].daemon", "want a boolean"},
		{"bad logger destination", task([]string{proc("p", `,"logger":{"destination":"syslog"}`)}, `[]`), "task.processes[0].logger.destination", "file, console"},
		{"bad logger mode", task([]string{proc("p", `,"logger":{"mode":"fast"}`)}, `[]`), "task.processes[0].logger.mode", "standard or rotate"},
		{"zero log size", task([]string{proc("p", `,"logger":{"mode":"rotate","rotate":{"log_size":0}}`)}, `[]`), "task.processes[0].logger.rotate.log_size", "> 0"},
		{"duplicate process", task([]string{proc("p", ""), proc("p", "")}, `[]`), "task.processes[1].name", "duplicate process name"},
		{"invalid process name", task([]string{proc(".hidden", "")}, `[]`), "task.processes[0].name", "invalid process name"},
		{"slash in process name", task([]string{proc("a/b", "")}, `[]`), "task.processes[0].name", "invalid process name"},
		{"unknown process in order", task([]string{proc("a", ""), proc("b", "")}, `[{"order":["a","c"]}]`), "task.constraints[0].order", `unknown process "c"`},
		{"order not strings", task([]string{proc("a", "")}, `[{"order":[1]}]`), "task.constraints[0].order[0]", "want a string"},
		{"cycle", task([]string{proc("a", ""), proc("b", ""), proc("c", "")}, `[{"order":["a","b"]},{"order":["b","c"]},{"order":["c","a"]}]`), "task.constraints", "cycle in process order"},
		{"self cycle", task([]string{proc("a", "")}, `[{"order":["a","a"]}]`), "task.constraints", "a -> a"},
		{"final after regular", task([]string{proc("a", ""), proc("f", `,"final":true`)}, `[{"order":["a","f"]}]`), "task.constraints[0].order", `final process "f" cannot be ordered with regular process "a"`},
		{"regular after final", task([]string{proc("a", ""), proc("f", `,"final":true`)}, `[{"order":["f","a"]}]`), "task.constraints[0].order", `final process "f"`},
		{"depends on daemon", task([]string{proc("d", `,"daemon":true`), proc("a", "")}, `[{"order":["d","a"]}]`), "task.constraints[0].order", "daemon process"},
		{"depends on ephemeral", task([]string{proc("e", `,"ephemeral":true`), proc("a", "")}, `[{"order":["e","a"]}]`), "task.constraints[0].order", "ephemeral process"},
		{"negative max_concurrency", `{` + head + `,"task":{"max_concurrency":-1,"processes":[` + proc("p", "") + `]}}`, "task.max_concurrency", ">= 0"},
		{"zero interval", `{` + head + `,"health_check_config":{"interval_secs":0},"task":{"processes":[` + proc("p", "") + `]}}`, "health_check_config.interval_secs", "> 0"},
		{"negative min successes", `{` + head + `,"health_check_config":{"min_consecutive_successes":-1},"task":{"processes":[` + proc("p", "") + `]}}`, "health_check_config.min_consecutive_successes", ">= 0"},
		{"shell checker without command", `{` + head + `,"health_check_config":{"health_checker":{"shell":{}}},"task":{"processes":[` + proc("p", "") + `]}}`, "health_check_config.health_checker.shell.shell_command", "required"},
		{"timeout not a number", `{` + head + `,"health_check_config":{"timeout_secs":"soon"},"task":{"processes":[` + proc("p", "") + `]}}`, "health_check_config.timeout_secs", "want a number"},
		{"portmap value a list", `{` + head + `,"announce":{"portmap":{"a":[1]}},"task":{"processes":[` + proc("p", "") + `]}}`, "announce.portmap.a", "want a string"},
		{"network without name", `{` + head + `,"networks":[{"labels":{}}],"task":{"processes":[` + proc("p", "") + `]}}`, "networks[0].name", "required"},
		{"network twice", `{` + head + `,"networks":[{"name":"a"},{"name":"a"}],"task":{"processes":[` + proc("p", "") + `]}}`, "networks[1].name", "listed twice"},
		{"network labels not strings", `{` + head + `,"networks":[{"name":"a","labels":{"k":{}}}],"task":{"processes":[` + proc("p", "") + `]}}`, "networks[0].labels.k", "want a string"},
		{"lifecycle negative wait", `{` + head + `,"lifecycle":{"http":{"shutdown_wait_secs":-1}},"task":{"processes":[` + proc("p", "") + `]}}`, "lifecycle.http.shutdown_wait_secs", ">= 0"},
		{"instances out of range", `{` + head + `,"instances":99999999999,"task":{"processes":[` + proc("p", "") + `]}}`, "instances", "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob([]byte(tc.json))
			var je *JobError
			if !errors.As(err, &je) {
				t.Fatalf("got %v, want a *JobError", err)
			}
			if je.Field != tc.wantField {
				t.Errorf("field %q, want %q (error: %v)", je.Field, tc.wantField, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
		})
	}
}

func TestParseAcceptsValidOrders(t *testing.T) {
	// Thermos allows ephemeral after regular, regular after regular in
	// several chains sharing a process, and final-only chains.
	_, err := ParseJob([]byte(`{"role":"r","environment":"e","cluster":"c","task":{"processes":[
		{"name":"a","cmdline":"true"},{"name":"b","cmdline":"true"},{"name":"c","cmdline":"true"},
		{"name":"e","cmdline":"true","ephemeral":true},{"name":"d","cmdline":"true","daemon":true},
		{"name":"f1","cmdline":"true","final":true},{"name":"f2","cmdline":"true","final":true}],
		"constraints":[{"order":["a","b"]},{"order":["a","c"]},{"order":["b","e"]},{"order":["c","d"]},{"order":["f1","f2"]},{"order":[]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
}

func TestBuildAssignedTaskCarriesTheJob(t *testing.T) {
	for _, name := range []string{"hello_world.json", "web_service.json", "ordered_final.json", "cron_batch.json", "cni_service.json"} {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			job, err := ParseJob(raw)
			if err != nil {
				t.Fatal(err)
			}
			ports := map[string]int32{"http": 31000, "health": 31001}
			data, err := BuildAssignedTask(job, raw, "task-"+job.Name, 1, ports)
			if err != nil {
				t.Fatal(err)
			}
			at, err := DecodeAssignedTask(data)
			if err != nil {
				t.Fatal(err)
			}
			if at.TaskID != "task-"+job.Name || at.InstanceID != 1 || !reflect.DeepEqual(at.AssignedPorts, ports) {
				t.Errorf("assigned task = %+v", at)
			}
			if k := at.Task.Key(); k != (JobKey{Role: job.Role, Environment: job.Environment, Name: job.Name}) {
				t.Errorf("job key = %+v", k)
			}
			if at.Task.ExecutorConfig == nil || at.Task.ExecutorConfig.Name != ExecutorName {
				t.Fatalf("executor config = %+v", at.Task.ExecutorConfig)
			}
			again, err := ParseJob([]byte(at.Task.ExecutorConfig.Data))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, job) {
				t.Errorf("job after the round trip differs:\n got %+v\nwant %+v", again, job)
			}
			if !json.Valid([]byte(at.Task.ExecutorConfig.Data)) || at.Task.IsService != job.Service {
				t.Errorf("isService %v, want %v", at.Task.IsService, job.Service)
			}
		})
	}
}
