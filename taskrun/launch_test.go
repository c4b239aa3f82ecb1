package taskrun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/executor"
)

// launched is a task started through the Launcher, with its statuses.
type launched struct {
	sandbox  string
	task     executor.Task
	statuses chan executor.Status
}

func launch(t *testing.T, info mesos.TaskInfo) *launched {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &launched{sandbox: t.TempDir(), statuses: make(chan executor.Status, 16)}
	env := executor.LaunchEnv{
		Config:    executor.Config{Sandbox: l.sandbox, ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
	}
	// The test runs processes as itself: a role need not exist here.
	lr := New(Options{NoSetuid: true, Logger: zaptest.NewLogger(t)})
	l.task = lr.Launch(ctx, env, info, func(s executor.Status) { l.statuses <- s })
	t.Cleanup(func() {
		cancel()
		// Wait for the terminal status so nothing runs after the test.
		for {
			select {
			case s := <-l.statuses:
				if terminal(s.State) {
					// And for the teardown, whose checkpoint writes (the
					// last resource sample) must end before TempDir's removal.
					waitDone(t, l.task)
					return
				}
			case <-time.After(20 * time.Second):
				t.Error("task did not end within 20s of cancelling")
				return
			}
		}
	})
	return l
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR, mesos.TASK_LOST:
		return true
	}
	return false
}

// until collects statuses up to and including the terminal one.
func (l *launched) until(t *testing.T) []executor.Status {
	t.Helper()
	var got []executor.Status
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-l.statuses:
			got = append(got, s)
			if terminal(s.State) {
				// Put it back for the cleanup's wait.
				l.statuses <- s
				return got
			}
		case <-deadline:
			t.Fatalf("no terminal status within 30s; got %v", states(got))
		}
	}
}

func states(ss []executor.Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.State.String())
	}
	return out
}

// TestLaunchHelloWorld: the hello world fixture through the Launcher:
// STARTING, RUNNING, FINISHED, with the templates rendered in the process'
// log at <sandbox>/sandbox/.logs/<process>/0/stdout, where Thermos puts it.
func TestLaunchHelloWorld(t *testing.T) {
	l := launch(t, auroraTaskInfo(t, fixtureJSON(t, "hello_world.json", nil), nil))
	got := l.until(t)
	if s := strings.Join(states(got), " "); s != "TASK_STARTING TASK_RUNNING TASK_FINISHED" {
		t.Fatalf("statuses %s (last message %q)", s, got[len(got)-1].Message)
	}
	b, err := os.ReadFile(filepath.Join(l.sandbox, "sandbox", ".logs", "hello", "0", "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello world from instance 1 of task task-1\n"; string(b) != want {
		t.Fatalf("stdout %q, want %q", b, want)
	}
}

// TestLaunchRefusesBadInput: input Thermos would refuse ends in
// TASK_FAILED (REASON_TASK_INVALID) with a message naming the field, and no
// process starts.
func TestLaunchRefusesBadInput(t *testing.T) {
	hello := fixtureJSON(t, "hello_world.json", nil)
	good := auroraTaskInfo(t, hello, map[string]int32{"http": 31000})
	withJob := func(jobJSON string) mesos.TaskInfo {
		at, err := aurora.DecodeAssignedTask(good.Data)
		if err != nil {
			t.Fatal(err)
		}
		at.Task.ExecutorConfig.Data = jobJSON
		data, err := aurora.EncodeAssignedTask(at)
		if err != nil {
			t.Fatal(err)
		}
		info := good
		info.Data = data
		return info
	}
	editJob := func(edit func(doc map[string]any)) mesos.TaskInfo {
		return withJob(string(fixtureJSON(t, "hello_world.json", edit)))
	}
	setProcesses := func(procs ...map[string]any) func(map[string]any) {
		return func(doc map[string]any) {
			var ps []any
			for _, p := range procs {
				ps = append(ps, p)
			}
			doc["task"].(map[string]any)["processes"] = ps
		}
	}
	truncated := good
	truncated.Data = good.Data[:len(good.Data)/2]

	for _, tt := range []struct {
		name     string
		info     mesos.TaskInfo
		starting bool     // TASK_STARTING comes first (decoded, failed when rendering)
		want     []string // in the message
	}{
		{name: "truncated Thrift", info: truncated, want: []string{"TaskInfo.data", "AssignedTask"}},
		{name: "not Thrift at all", info: mesos.TaskInfo{TaskID: good.TaskID, Data: []byte("{\"json\": true}")}, want: []string{"TaskInfo.data"}},
		{name: "no executor config", info: withJob(""), want: []string{"executorConfig.data is empty"}},
		{name: "invalid JSON", info: withJob(`{"name": "x", "task": {`), want: []string{"executorConfig.data"}},
		{name: "wrong type", info: editJob(func(doc map[string]any) { doc["task"].(map[string]any)["max_failures"] = "three" }),
			want: []string{"task.max_failures"}},
		{name: "cycle in order", info: editJob(func(doc map[string]any) {
			setProcesses(map[string]any{"name": "a", "cmdline": "true"}, map[string]any{"name": "b", "cmdline": "true"})(doc)
			doc["task"].(map[string]any)["constraints"] = []any{
				map[string]any{"order": []any{"a", "b"}}, map[string]any{"order": []any{"b", "a"}},
			}
		}), want: []string{"task.constraints", "cycle"}},
		{name: "final process after a regular one", info: editJob(func(doc map[string]any) {
			setProcesses(map[string]any{"name": "a", "cmdline": "true"}, map[string]any{"name": "z", "cmdline": "true", "final": true})(doc)
			doc["task"].(map[string]any)["constraints"] = []any{map[string]any{"order": []any{"a", "z"}}}
		}), want: []string{"task.constraints", `final process "z"`}},
		{name: "unknown template variable", starting: true,
			info: editJob(setProcesses(map[string]any{"name": "web", "cmdline": "serve --flavor {{thermos.flavor}}"})),
			want: []string{`process "web" cmdline`, "thermos.flavor"}},
		{name: "unallocated port", starting: true,
			info: editJob(setProcesses(map[string]any{"name": "web", "cmdline": "serve --port {{thermos.ports[admin]}}"})),
			want: []string{`process "web" cmdline`, "thermos.ports[admin]"}},
		{name: "unknown variable in the shell health check", starting: true,
			info: editJob(func(doc map[string]any) {
				doc["health_check_config"] = map[string]any{"health_checker": map[string]any{"shell": map[string]any{"shell_command": "curl {{mesos.nope}}"}}}
			}),
			want: []string{"mesos.nope"}},
		{name: "unknown variable in the HTTP lifecycle endpoint", starting: true,
			info: editJob(func(doc map[string]any) {
				doc["lifecycle"] = map[string]any{"http": map[string]any{"graceful_shutdown_endpoint": "/quit/{{mesos.nope}}"}}
			}),
			want: []string{"lifecycle.http.graceful_shutdown_endpoint", "mesos.nope"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := launch(t, tt.info)
			got := l.until(t)
			last := got[len(got)-1]
			wantStates := "TASK_FAILED"
			if tt.starting {
				wantStates = "TASK_STARTING TASK_FAILED"
			}
			if s := strings.Join(states(got), " "); s != wantStates {
				t.Fatalf("statuses %s (message %q), want %s", s, last.Message, wantStates)
			}
			for _, w := range tt.want {
				if !strings.Contains(last.Message, w) {
					t.Errorf("message %q does not name %q", last.Message, w)
				}
			}
			if last.Reason == nil || *last.Reason != mesos.REASON_TASK_INVALID {
				t.Errorf("reason %v, want REASON_TASK_INVALID", last.Reason)
			}
			// Nothing ran: no task sandbox, so no process log either.
			for _, dir := range []string{"sandbox"} {
				if _, err := os.Stat(filepath.Join(l.sandbox, dir)); !os.IsNotExist(err) {
					t.Errorf("%s exists in the sandbox (err %v): a process was prepared or started", dir, err)
				}
			}
		})
	}
}

// TestLaunchCommandKill: a plain Mesos command task runs its command
// through bash with the task's environment, and a kill ends it as
// TASK_KILLED within the grace period.
func TestLaunchCommandKill(t *testing.T) {
	yes := true
	info := mesos.TaskInfo{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper-1"}, Command: &mesos.CommandInfo{
		Value: ptr(`echo "$GREETING $DEWAR_TASK_ID" > out.txt; exec sleep 60`), Shell: &yes,
		Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "GREETING", Value: ptr("hi")}}},
	}}
	l := launch(t, info)
	var got []executor.Status
	for len(got) < 2 {
		select {
		case s := <-l.statuses:
			got = append(got, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("statuses %v, want STARTING and RUNNING", states(got))
		}
	}
	if s := strings.Join(states(got), " "); s != "TASK_STARTING TASK_RUNNING" {
		t.Fatalf("statuses %s", s)
	}
	out := filepath.Join(l.sandbox, "sandbox", "out.txt")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil && string(b) == "hi sleeper-1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("out.txt %q, %v; want the task's environment", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	l.task.Kill(&mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}}, "killed by the scheduler")
	got = l.until(t)
	if last := got[len(got)-1]; last.State != mesos.TASK_KILLED {
		t.Fatalf("final %v %q, want TASK_KILLED", last.State, last.Message)
	} else if !strings.HasPrefix(last.Message, "killed by the scheduler") {
		t.Errorf("final message %q does not say who killed the task", last.Message)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("kill took %v with a 3s grace period", d)
	}
}

// waitDone waits for the task's teardown, so that nothing of it (the
// checkpoint's last writes) runs after the test.
func waitDone(t *testing.T, task executor.Task) {
	t.Helper()
	select {
	case <-task.Done():
	case <-time.After(30 * time.Second):
		t.Error("the task's teardown did not end within 30s")
	}
}
