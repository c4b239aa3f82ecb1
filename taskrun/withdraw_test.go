package taskrun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/internal/zktest"
)

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// TestNaturalExitWithdrawsFirst: the rule "withdrawn before TASK_FINISHED"
// (rules_test.go) with the real announcer, a real ZooKeeper and a real
// process that exits on its own: when the terminal update is reported,
// the task's serverset is already empty.
func TestNaturalExitWithdrawsFirst(t *testing.T) {
	srv := zktest.Start(t)
	obs, _, err := zk.Connect([]string{srv.Addr()}, 5*time.Second, zk.WithLogger(quietZK{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Close)
	const path = "/aurora/root/devel/hello_world" // role, environment and name of hello_world.json

	job := fixtureJSON(t, "hello_world.json", func(doc map[string]any) {
		delete(doc, "health_check_config")
		delete(doc, "lifecycle")
		doc["announce"] = map[string]any{"primary_port": "http"}
		// Long enough to be announced and seen; then it exits 0.
		doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)["cmdline"] = "sleep 1"
	})
	type seen struct {
		state   mesos.TaskState
		members []string
		err     error
	}
	seenc := make(chan seen, 16)
	report := func(s executor.Status) {
		// At the moment the update goes out, as the scheduler would act
		// on it: what does a serverset reader find?
		v := seen{state: s.State}
		if _, err := obs.Sync(path); err != nil && err != zk.ErrNoNode {
			v.err = err
		} else {
			v.members, _, v.err = obs.Children(path)
			if v.err == zk.ErrNoNode {
				v.err = nil
			}
		}
		seenc <- v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lr := New(Options{
		NoSetuid:  true,
		Logger:    zaptest.NewLogger(t),
		Announcer: &announcer.Config{Ensemble: []string{srv.Addr()}},
	})
	env := executor.LaunchEnv{
		Config:    executor.Config{Sandbox: t.TempDir(), ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
	}
	task := lr.Launch(ctx, env, auroraTaskInfo(t, job, map[string]int32{"http": 31000}), report)
	t.Cleanup(func() { waitDone(t, task) })

	var states []string
	for deadline := time.After(30 * time.Second); ; {
		select {
		case v := <-seenc:
			states = append(states, v.state.String())
			if v.err != nil {
				t.Fatalf("read %s at %s: %v", path, v.state, v.err)
			}
			switch v.state {
			case mesos.TASK_RUNNING:
				if len(v.members) != 1 {
					t.Errorf("members at TASK_RUNNING: %q; want the task's one", v.members)
				}
			case mesos.TASK_FINISHED:
				if len(v.members) != 0 {
					t.Errorf("members at TASK_FINISHED: %q; want none (withdrawn first)", v.members)
				}
				if s := strings.Join(states, " "); s != "TASK_STARTING TASK_RUNNING TASK_FINISHED" {
					t.Errorf("statuses %s", s)
				}
				return
			}
			if terminal(v.state) {
				t.Fatalf("statuses %v; want TASK_FINISHED", states)
			}
		case <-deadline:
			t.Fatalf("no TASK_FINISHED within 30s; statuses %v", states)
		}
	}
}
