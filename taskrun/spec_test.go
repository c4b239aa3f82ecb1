package taskrun

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/sandbox"
)

// fixtureJSON is testenv.Fixture of testdata/aurora/<name>, lets edit change the document
// and returns it as JSON.
func fixtureJSON(t *testing.T, name string, edit func(doc map[string]any)) []byte {
	t.Helper()
	return testenv.Fixture(t, filepath.Join("aurora", name), edit)
}

// auroraTaskInfo is the TaskInfo an Aurora scheduler sends for instance 1
// of the job jobJSON: the AssignedTask, Thrift-encoded, in data.
func auroraTaskInfo(t *testing.T, jobJSON []byte, ports map[string]int32) mesos.TaskInfo {
	t.Helper()
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatalf("fixture does not parse: %v", err)
	}
	data, err := aurora.BuildAssignedTask(job, jobJSON, "task-1", 1, ports)
	if err != nil {
		t.Fatal(err)
	}
	return mesos.TaskInfo{Name: job.Name, TaskID: mesos.TaskID{Value: "task-1"}, Data: data}
}

// processes returns the task's processes by name.
func processesByName(p *taskSpec) map[string]sandbox.Process {
	out := map[string]sandbox.Process{}
	for _, pr := range p.task.Processes {
		out[pr.Name] = pr
	}
	return out
}

// TestCommandSpec: a plain Mesos CommandInfo becomes one process, with
// Mesos' shell semantics, the task's environment and its user.
func TestCommandSpec(t *testing.T) {
	yes, no := true, false
	fw := mesos.FrameworkInfo{User: "fwuser"}
	cmd := func(c mesos.CommandInfo) mesos.TaskInfo {
		return mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t-1"}, Command: &c}
	}
	t.Run("shell true runs value with bash", func(t *testing.T) {
		p, err := newTaskSpec(cmd(mesos.CommandInfo{Value: ptr("echo a && echo b"), Shell: &yes}), fw)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.task.Processes) != 1 || p.task.Processes[0].Cmdline != "echo a && echo b" {
			t.Fatalf("processes %+v, want one running the value as is", p.task.Processes)
		}
		if p.aurora || p.job != nil {
			t.Error("a command task must not be rendered as an Aurora template")
		}
		if p.user != "fwuser" {
			t.Errorf("user %q, want the framework's user fwuser", p.user)
		}
		if p.task.MaxFailures != 1 || p.task.Processes[0].MaxFailures != 1 {
			t.Errorf("a command task runs once: %+v", p.task)
		}
	})
	t.Run("shell unset defaults to true", func(t *testing.T) {
		p, err := newTaskSpec(cmd(mesos.CommandInfo{Value: ptr("exit 0")}), fw)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.task.Processes[0].Cmdline; got != "exit 0" {
			t.Fatalf("cmdline %q", got)
		}
	})
	t.Run("shell false execs value with arguments quoted", func(t *testing.T) {
		// argv[0] is arguments[0], as Mesos' command executor; the rest
		// reach the program unchanged, quotes and $ included.
		args := []string{"printf-as-argv0", "%s|", "it's", "a b", "$HOME", "`x`", ""}
		p, err := newTaskSpec(cmd(mesos.CommandInfo{Value: ptr("/usr/bin/printf"), Shell: &no, Arguments: args}), fw)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("bash", "-c", p.task.Processes[0].Cmdline).Output()
		if err != nil {
			t.Fatalf("bash -c %q: %v", p.task.Processes[0].Cmdline, err)
		}
		if want := "it's|a b|$HOME|`x`||"; string(out) != want {
			t.Fatalf("output %q, want %q (cmdline %q)", out, want, p.task.Processes[0].Cmdline)
		}
	})
	t.Run("command user wins over framework user", func(t *testing.T) {
		p, err := newTaskSpec(cmd(mesos.CommandInfo{Value: ptr("true"), User: ptr("alice")}), fw)
		if err != nil {
			t.Fatal(err)
		}
		if p.user != "alice" {
			t.Errorf("user %q, want alice", p.user)
		}
	})
	t.Run("environment and ports", func(t *testing.T) {
		c := mesos.CommandInfo{Value: ptr("true"), Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
			{Name: "A", Value: ptr("1")}, {Name: "B", Value: ptr("x=y")},
		}}}
		info := cmd(c)
		info.Resources = []mesos.Resource{{Name: "ports", Type: mesos.RANGES.Enum(),
			Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 31001}}}}}
		p, err := newTaskSpec(info, fw)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"A=1", "B=x=y"}; !slices.Equal(p.env, want) {
			t.Errorf("env %v, want %v", p.env, want)
		}
		if p.ports["port0"] != 31000 || p.ports["port1"] != 31001 || len(p.ports) != 2 {
			t.Errorf("ports %v, want port0=31000 port1=31001", p.ports)
		}
	})
	for _, tt := range []struct {
		name string
		info mesos.TaskInfo
		want string // in the error
	}{
		{"secret refused", cmd(mesos.CommandInfo{Value: ptr("true"), Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
			{Name: "TOKEN", Type: mesos.Environment_Variable_SECRET.Enum(), Secret: &mesos.Secret{Type: mesos.Secret_REFERENCE}},
		}}}), "TOKEN is a secret"},
		{"empty shell command", cmd(mesos.CommandInfo{Value: ptr("  "), Shell: &yes}), "command.value is empty"},
		{"empty program", cmd(mesos.CommandInfo{Shell: &no}), "command.value is empty"},
		{"neither data nor command", mesos.TaskInfo{TaskID: mesos.TaskID{Value: "t-1"}}, "neither data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTaskSpec(tt.info, fw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestAuroraSpec: the fixtures' AssignedTasks become the Thermos task with
// pystachio's semantics, the role as user and the assigned ports.
func TestAuroraSpec(t *testing.T) {
	t.Run("hello world", func(t *testing.T) {
		p, err := newTaskSpec(auroraTaskInfo(t, fixtureJSON(t, "hello_world.json", nil), map[string]int32{"http": 31000}), mesos.FrameworkInfo{User: "aurora"})
		if err != nil {
			t.Fatal(err)
		}
		if !p.aurora || p.job == nil || p.assigned == nil {
			t.Fatalf("not an Aurora task spec: %+v", p)
		}
		if p.user != "root" {
			t.Errorf("user %q, want the role root (not the framework's user)", p.user)
		}
		if p.instance != 1 || p.ports["http"] != 31000 {
			t.Errorf("instance %d ports %v", p.instance, p.ports)
		}
		hello := processesByName(p)["hello"]
		if !strings.Contains(hello.Cmdline, "{{mesos.instance}}") {
			t.Errorf("templates are rendered later, at run time: %q", hello.Cmdline)
		}
		if hello.MinDuration != 5*time.Second || hello.MaxFailures != 1 {
			t.Errorf("hello %+v", hello)
		}
		if p.task.FinalizationWait != 30*time.Second {
			t.Errorf("finalization wait %v", p.task.FinalizationWait)
		}
		if err := renderSpec(p, Facts{TaskID: "task-1", Instance: p.instance}.Scope()); err != nil {
			t.Fatal(err)
		}
		if got, want := p.task.Processes[0].Cmdline, "echo hello world from instance 1 of task task-1"; got != want {
			t.Errorf("rendered %q, want %q", got, want)
		}
	})
	t.Run("ordered with final processes", func(t *testing.T) {
		p, err := newTaskSpec(auroraTaskInfo(t, fixtureJSON(t, "ordered_final.json", nil), nil), mesos.FrameworkInfo{})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"fetch", "build", "publish"}, {"archive", "cleanup"}}
		if len(p.task.Order) != 2 || !slices.Equal(p.task.Order[0], want[0]) || !slices.Equal(p.task.Order[1], want[1]) {
			t.Errorf("order %v, want %v", p.task.Order, want)
		}
		ps := processesByName(p)
		for name, final := range map[string]bool{"fetch": false, "build": false, "publish": false, "archive": true, "cleanup": true} {
			if ps[name].Final != final {
				t.Errorf("%s final=%v, want %v", name, ps[name].Final, final)
			}
			if ps[name].MinDuration != time.Second {
				t.Errorf("%s min_duration %v, want 1s", name, ps[name].MinDuration)
			}
		}
	})
	t.Run("cron batch", func(t *testing.T) {
		p, err := newTaskSpec(auroraTaskInfo(t, fixtureJSON(t, "cron_batch.json", nil), nil), mesos.FrameworkInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if p.task.MaxConcurrency != 1 || p.task.MaxFailures != 1 {
			t.Errorf("task %+v", p.task)
		}
		if r := processesByName(p)["report"]; r.MaxFailures != 3 || r.MinDuration != time.Second {
			t.Errorf("report %+v, want 3 failures allowed, 1s apart", r)
		}
	})
	t.Run("announce portmap aliases become ports", func(t *testing.T) {
		jobJSON := fixtureJSON(t, "hello_world.json", func(doc map[string]any) {
			doc["announce"] = map[string]any{"portmap": map[string]any{
				"health": "http", "admin": "8080", "dangling": "nope", "http": "9999",
			}}
		})
		p, err := newTaskSpec(auroraTaskInfo(t, jobJSON, map[string]int32{"http": 31000}), mesos.FrameworkInfo{})
		if err != nil {
			t.Fatal(err)
		}
		// The assigned http port wins over the alias of the same name; a
		// portmap given replaces the default {"aurora": primary_port}; a
		// dangling alias is dropped.
		want := map[string]int{"http": 31000, "health": 31000, "admin": 8080}
		if len(p.ports) != len(want) {
			t.Errorf("ports %v, want %v", p.ports, want)
		}
		for n, port := range want {
			if p.ports[n] != port {
				t.Errorf("ports %v, want %v", p.ports, want)
				break
			}
		}
	})
	t.Run("a cycle of port aliases is refused", func(t *testing.T) {
		jobJSON := fixtureJSON(t, "hello_world.json", func(doc map[string]any) {
			doc["announce"] = map[string]any{"portmap": map[string]any{"a": "b", "b": "a"}}
		})
		_, err := newTaskSpec(auroraTaskInfo(t, jobJSON, map[string]int32{"http": 31000}), mesos.FrameworkInfo{})
		if err == nil || !strings.Contains(err.Error(), "announce.portmap") {
			t.Fatalf("error %v, want one naming announce.portmap", err)
		}
	})
	t.Run("daemon and ephemeral flags", func(t *testing.T) {
		jobJSON := fixtureJSON(t, "hello_world.json", func(doc map[string]any) {
			task := doc["task"].(map[string]any)
			task["processes"] = []any{
				map[string]any{"name": "d", "cmdline": "true", "daemon": true, "max_failures": 0},
				map[string]any{"name": "e", "cmdline": "true", "ephemeral": true},
			}
		})
		p, err := newTaskSpec(auroraTaskInfo(t, jobJSON, nil), mesos.FrameworkInfo{})
		if err != nil {
			t.Fatal(err)
		}
		ps := processesByName(p)
		if !ps["d"].Daemon || ps["d"].MaxFailures != 0 || ps["d"].Ephemeral {
			t.Errorf("d %+v, want a daemon retried forever", ps["d"])
		}
		if !ps["e"].Ephemeral || ps["e"].MaxFailures != 1 || ps["e"].MinDuration != 5*time.Second {
			t.Errorf("e %+v, want ephemeral with pystachio's defaults", ps["e"])
		}
	})
}
