package taskrun

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
)

// TestLifecycleRules are the ordering rules of a task's life, run against
// fakes of everything the task talks to (world_test.go) on synctest's fake
// clock: in milliseconds, without root, netlink or ZooKeeper. Each case
// drives the task and then reads its steps: the calls it made and the
// statuses it reported, in order.
//
// The job is testdata/aurora/web_service.json: process "server", an HTTP
// health check, the HTTP lifecycle on port "health" (1 s waits), announced
// on "http"; its network is "blue" (eth0, 198.18.0.2).
func TestLifecycleRules(t *testing.T) {
	// settle lets the task do what it is doing (the fake ZooKeeper takes a
	// second per operation) until it waits for something outside it.
	settle := func() {
		time.Sleep(5 * time.Second)
		synctest.Wait()
	}
	healthy := func(w *world, _ executor.Task) {
		synctest.Wait()
		w.health <- health.Event{State: health.Healthy}
		settle()
	}
	finish := func(w *world, _ executor.Task) {
		settle()
		w.started().finish(sandbox.StateSuccess)
	}
	kill := func(policy *mesos.KillPolicy) func(*world, executor.Task) {
		return func(w *world, task executor.Task) {
			settle()
			task.Kill(policy, "killed by the scheduler")
		}
	}
	// immediately kills the task and checks that TASK_KILLED came before
	// any (fake) time passed: the task did not wait for what it was doing
	// when the KILL came.
	immediately := func(w *world, task executor.Task) {
		synctest.Wait()
		start := time.Now()
		task.Kill(nil, "killed by the scheduler")
		synctest.Wait() // everything the kill set off has run; the clock has not moved
		if st := w.lastStatus(); st.State != mesos.TASK_KILLED || time.Since(start) != 0 {
			w.t.Errorf("%s %q %s after the KILL; want TASK_KILLED at once", st.State, st.Message, time.Since(start))
		}
	}
	notRunning := func(w *world, _ executor.Task) {
		synctest.Wait()
		if _, ok := w.status(mesos.TASK_RUNNING); ok {
			w.t.Errorf("TASK_RUNNING before the health check passed: %q", w.log())
		}
	}

	for _, tc := range []struct {
		name  string
		edit  func(doc map[string]any)      // the job
		ports map[string]int32              // allocated; default http and health
		setup func(*world)                  // before the launch
		drive []func(*world, executor.Task) // after it, in turn
		want  []string                      // steps, first happening in this order (others may come between)
		never []string                      // steps that must not happen
		final mesos.TaskState
		check func(t *testing.T, w *world)
	}{
		{
			name: "STARTING at launch, before discovery; RUNNING after the join",
			// No health check: Thermos checks health whenever a "health"
			// port is allocated, so there is none.
			edit: func(doc map[string]any) {
				delete(doc, "health_check_config")
				delete(doc, "lifecycle")
				doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)["cmdline"] = "serve {{thermos.ports[http]}}"
			},
			ports: map[string]int32{"http": 31000},
			drive: []func(*world, executor.Task){finish},
			want: []string{"TASK_STARTING", "discover", "connect", "start server", "join blue(eth0)=198.18.0.2",
				"TASK_RUNNING", "TASK_FINISHED"},
			final: mesos.TASK_FINISHED,
			check: func(t *testing.T, w *world) {
				// A task ending on its own withdraws too.
				inOrder(t, w.log(), "TASK_RUNNING", "leave")
				st, _ := w.status(mesos.TASK_STARTING)
				if len(st.Networks) != 0 || st.Message != "launching" {
					t.Errorf("TASK_STARTING %q with networks %v; want it before the addresses are known", st.Message, st.Networks)
				}
				st, _ = w.status(mesos.TASK_RUNNING)
				if len(st.Networks) != 1 || len(st.Networks[0].IPAddresses) != 1 || st.Networks[0].IPAddresses[0].GetIPAddress() != "198.18.0.2" {
					t.Errorf("TASK_RUNNING networks %v; want blue's 198.18.0.2", st.Networks)
				}
			},
		},
		{
			name:  "with a health check: RUNNING once healthy and joined",
			drive: []func(*world, executor.Task){notRunning, healthy, finish},
			want: []string{"TASK_STARTING", "start server", "health monitor", "join blue(eth0)=198.18.0.2",
				"TASK_RUNNING", "TASK_FINISHED"},
			final: mesos.TASK_FINISHED,
			check: func(t *testing.T, w *world) {
				if st, _ := w.status(mesos.TASK_RUNNING); st.Healthy == nil || !*st.Healthy {
					t.Errorf("TASK_RUNNING healthy=%v, want true", st.Healthy)
				}
			},
		},
		{
			// AuroraExecutor._shutdown: the announcer stops before the
			// terminal update (supervise.go, awaitWithdrawal).
			name:  "a task ending on its own: withdrawn before TASK_FINISHED",
			drive: []func(*world, executor.Task){healthy, finish},
			want:  []string{"TASK_RUNNING", "leave", "TASK_FINISHED", "session closed"},
			final: mesos.TASK_FINISHED,
		},
		{
			name:  "a task failing on its own: withdrawn before TASK_FAILED",
			drive: []func(*world, executor.Task){healthy, func(w *world, _ executor.Task) { w.started().finish(sandbox.StateFailed) }},
			want:  []string{"TASK_RUNNING", "leave", "TASK_FAILED", "session closed"},
			final: mesos.TASK_FAILED,
		},
		{
			name: "a task ending on its own with ZooKeeper gone: TASK_FINISHED after at most withdrawWait",
			drive: []func(*world, executor.Task){healthy, func(w *world, _ executor.Task) {
				w.hangLeave = true
				start := time.Now()
				w.started().finish(sandbox.StateSuccess)
				synctest.Wait()
				if _, ok := w.status(mesos.TASK_FINISHED); ok {
					w.t.Errorf("TASK_FINISHED before the withdrawal ended or timed out: %q", w.log())
				}
				time.Sleep(withdrawWait)
				synctest.Wait()
				if _, ok := w.status(mesos.TASK_FINISHED); !ok {
					w.t.Errorf("no TASK_FINISHED %v after the task ended; want it within withdrawWait (%v): %q", time.Since(start), withdrawWait, w.log())
				}
			}},
			want:  []string{"TASK_RUNNING", "TASK_FINISHED", "session closed"},
			final: mesos.TASK_FINISHED,
		},
		{
			name:  "KILL: withdraw, lifecycle endpoints, SIGTERM, SIGKILL after Thermos' minute",
			drive: []func(*world, executor.Task){healthy, kill(nil)},
			want: []string{"TASK_RUNNING", "leave", "POST /quitquitquit", "POST /abortabortabort", "SIGTERM",
				"SIGKILL after 1m0s", "TASK_KILLED", "session closed"},
			final: mesos.TASK_KILLED,
		},
		{
			name:  "KILL with a kill policy: its grace period from SIGTERM to SIGKILL",
			drive: []func(*world, executor.Task){healthy, kill(&mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}})},
			want:  []string{"leave", "POST /quitquitquit", "POST /abortabortabort", "SIGTERM", "SIGKILL after 3s", "TASK_KILLED"},
			final: mesos.TASK_KILLED,
		},
		{
			name: "failed health check: the kill sequence, then TASK_FAILED",
			drive: []func(*world, executor.Task){healthy, func(w *world, _ executor.Task) {
				w.health <- health.Event{State: health.Unhealthy, Reason: "connection refused"}
			}},
			want: []string{"TASK_RUNNING", "leave", "POST /quitquitquit", "POST /abortabortabort", "SIGTERM",
				"SIGKILL after 1m0s", "TASK_FAILED"},
			final: mesos.TASK_FAILED,
			check: func(t *testing.T, w *world) {
				st := w.lastStatus()
				if st.Reason == nil || *st.Reason != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED ||
					!strings.Contains(st.Message, "failed health check: connection refused") {
					t.Errorf("TASK_FAILED %v %q; want the health check's reason and message", st.Reason, st.Message)
				}
			},
		},
		{
			name: "unhealthy before healthy: never announced, the same kill sequence",
			drive: []func(*world, executor.Task){func(w *world, _ executor.Task) {
				synctest.Wait()
				w.health <- health.Event{State: health.Unhealthy, Reason: "not enough successful health checks in time"}
			}},
			want:  []string{"start server", "POST /quitquitquit", "POST /abortabortabort", "SIGTERM", "TASK_FAILED"},
			never: []string{"join", "TASK_RUNNING"},
			final: mesos.TASK_FAILED,
		},
		{
			name: "address change: the members and a new TASK_RUNNING say so",
			drive: []func(*world, executor.Task){healthy, func(w *world, _ executor.Task) {
				w.watch <- []netdiscover.NetworkAddrs{netAddrs("blue", 0, "198.18.0.3/24")}
				synctest.Wait()
			}, finish},
			want:  []string{"join blue(eth0)=198.18.0.2", "TASK_RUNNING", "update blue(eth0)=198.18.0.3", "TASK_FINISHED"},
			final: mesos.TASK_FINISHED,
			check: func(t *testing.T, w *world) {
				var changed []string
				for _, st := range w.statuses {
					if st.State == mesos.TASK_RUNNING && strings.HasPrefix(st.Message, "addresses changed") &&
						len(st.Networks) == 1 && st.Networks[0].IPAddresses[0].GetIPAddress() == "198.18.0.3" {
						changed = append(changed, st.Message)
					}
				}
				if len(changed) != 1 {
					t.Errorf("%d TASK_RUNNING updates with the new address 198.18.0.3, want 1", len(changed))
				}
			},
		},
		{
			name:  "KILL during discovery: TASK_KILLED at once, nothing started",
			setup: func(w *world) { w.hangDiscover = true },
			drive: []func(*world, executor.Task){immediately},
			want:  []string{"TASK_STARTING", "discover", "TASK_KILLED"},
			never: []string{"connect", "start", "TASK_LOST"},
			final: mesos.TASK_KILLED,
		},
		{
			name:  "KILL during the ZooKeeper connect: TASK_KILLED at once, nothing started",
			setup: func(w *world) { w.hangDial = true },
			drive: []func(*world, executor.Task){immediately},
			want:  []string{"TASK_STARTING", "discover", "connect", "TASK_KILLED"},
			never: []string{"start", "join", "TASK_FAILED"},
			final: mesos.TASK_KILLED,
		},
		{
			name:  "discovery times out: STARTING, then LOST",
			setup: func(w *world) { w.hangDiscover = true },
			want:  []string{"TASK_STARTING", "discover", "TASK_LOST"},
			never: []string{"connect", "start"},
			final: mesos.TASK_LOST,
		},
		{
			name: "SHUTDOWN: withdraw, then signals within the grace period, no lifecycle endpoints",
			drive: []func(*world, executor.Task){healthy, func(w *world, task executor.Task) {
				task.Shutdown(5*time.Second, "executor shutting down")
			}},
			// The withdrawal takes the fake ZooKeeper a second of the five.
			want:  []string{"TASK_RUNNING", "leave", "SIGTERM", "SIGKILL after 4s", "TASK_KILLED"},
			never: []string{"POST"},
			final: mesos.TASK_KILLED,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t)
				if tc.setup != nil {
					tc.setup(w)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ports := tc.ports
				if ports == nil {
					ports = map[string]int32{"http": 31000, "health": 31001}
				}
				info := auroraTaskInfo(t, fixtureJSON(t, "web_service.json", tc.edit), ports)
				task := w.launch(ctx, info, nil)
				for _, d := range tc.drive {
					d(w, task)
				}
				<-task.Done()
				steps := w.log()
				t.Logf("steps: %q", steps)
				inOrder(t, steps, tc.want...)
				for _, n := range tc.never {
					for _, s := range steps {
						if strings.HasPrefix(s, n) {
							t.Errorf("step %q happened; it must not", s)
						}
					}
				}
				if got := w.lastStatus().State; got != tc.final {
					t.Errorf("final status %s, want %s", got, tc.final)
				}
				if tc.check != nil {
					tc.check(t, w)
				}
			})
		})
	}
}

// inOrder checks that each of want first happens (a step starting with
// it) after the previous one first happened: a TASK_RUNNING reported before
// the join breaks "join, TASK_RUNNING" even if another TASK_RUNNING
// follows the join.
func inOrder(t *testing.T, steps []string, want ...string) {
	t.Helper()
	prev := -1
	for _, w := range want {
		i := slices.IndexFunc(steps, func(s string) bool { return strings.HasPrefix(s, w) })
		switch {
		case i < 0:
			t.Errorf("no step %q; want %q in this order; steps: %q", w, want, steps)
			return
		case i < prev:
			t.Errorf("step %q came before %q; want %q in this order; steps: %q", steps[i], steps[prev], want, steps)
			return
		}
		prev = i
	}
}

// TestKillSequenceRealProcesses: the kill sequence down to the processes,
// with the real runner (sandbox): after the withdrawal and the lifecycle
// endpoints, the server gets SIGTERM, and the final process runs once the
// server is gone. The server and the final process write their steps into
// the same file as the fakes.
func TestKillSequenceRealProcesses(t *testing.T) {
	w := newWorld(t)
	w.useSandbox = true
	dir := t.TempDir()
	w.stepFile = filepath.Join(dir, "steps")
	job := fixtureJSON(t, "web_service.json", func(doc map[string]any) {
		lc := doc["lifecycle"].(map[string]any)["http"].(map[string]any)
		lc["graceful_shutdown_wait_secs"], lc["shutdown_wait_secs"] = 0, 0
		step := func(s string) string { return "echo " + s + " >> " + w.stepFile }
		doc["task"].(map[string]any)["processes"] = []any{
			map[string]any{"name": "server", "cmdline": "trap '" + step("server got SIGTERM") + "; exit 0' TERM; " + step("server running") +
				"; while :; do sleep 0.05; done"},
			map[string]any{"name": "cleanup", "cmdline": step("final process cleanup"), "final": true},
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	task := w.launch(ctx, auroraTaskInfo(t, job, map[string]int32{"http": 31000, "health": 31001}), func(_ *Options, env *executor.LaunchEnv) {
		env.Config.Sandbox = dir
	})
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(readSteps(t, w.stepFile), "server running") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start within 20s; steps %q", readSteps(t, w.stepFile))
		}
		time.Sleep(10 * time.Millisecond)
	}
	task.Kill(nil, "killed by the scheduler")
	select {
	case <-task.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not end within 30s of the KILL")
	}
	steps := readSteps(t, w.stepFile)
	t.Logf("steps: %q", steps)
	inOrder(t, steps, "server running", "leave", "POST /quitquitquit", "POST /abortabortabort",
		"server got SIGTERM", "final process cleanup", "TASK_KILLED")
}

func readSteps(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}
