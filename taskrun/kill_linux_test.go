package taskrun

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/internal/netnstest"
)

// inNetNS tells the test binary, re-run by TestKillDuringDiscovery inside
// a fresh network namespace, that it is the child.
const inNetNS = "DEWAR_TASKRUN_TEST_IN_NETNS"

// TestKillDuringDiscovery: the task's CNI network ("net1", interface
// eth0) never appears, so address discovery would wait its full timeout
// (30s here). A KILL during that wait abandons it: TASK_KILLED at once,
// saying no process started, and no process starts.
//
// Discovery reads the executor's own network namespace, so the test runs
// itself again inside a new one (only loopback: no eth0), where the whole
// process, every thread, sees it.
func TestKillDuringDiscovery(t *testing.T) {
	if !inFreshNetNS(t) {
		return
	}

	if _, err := net.InterfaceByName("eth0"); err == nil {
		t.Fatal("eth0 exists in the test's namespace: discovery would not wait, the test proves nothing")
	}
	seen, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zapcore.DebugLevel)).Core(), seen))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sandboxDir := t.TempDir()
	statuses := make(chan executor.Status, 16)
	env := executor.LaunchEnv{
		Config:    executor.Config{Sandbox: sandboxDir, ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
		Executor: mesos.ExecutorInfo{Container: &mesos.ContainerInfo{
			Type:         mesos.ContainerInfo_MESOS.Enum(),
			NetworkInfos: []mesos.NetworkInfo{{Name: proto("net1")}},
		}},
	}
	const discovery = 30 * time.Second
	cmd := "sleep 1000"
	info := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t"}, Command: &mesos.CommandInfo{Value: &cmd}}
	lr := New(Options{NoSetuid: true, DiscoveryTimeout: discovery, Logger: log})
	task := lr.Launch(ctx, env, info, func(s executor.Status) { statuses <- s })
	// The teardown (the checkpoint's last writes) ends before TempDir's removal.
	t.Cleanup(func() { waitDone(t, task) })

	// Kill once discovery is waiting for eth0, not before it started.
	deadline := time.Now().Add(20 * time.Second)
	for logs.FilterMessage("waiting for addresses").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("discovery did not start waiting for eth0 within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// TASK_STARTING came at launch, before discovery.
	if got := <-statuses; got.State != mesos.TASK_STARTING {
		t.Fatalf("first status %s %q, want TASK_STARTING", got.State, got.Message)
	}
	start := time.Now()
	task.Kill(&mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}}, "killed by the scheduler")
	var got executor.Status
	select {
	case got = <-statuses:
	case <-time.After(discovery + 10*time.Second):
		t.Fatal("no status after the KILL")
	}
	took := time.Since(start)
	t.Logf("%s %q %s after the KILL", got.State, got.Message, took.Round(time.Millisecond))
	if got.State != mesos.TASK_KILLED || got.Message != "killed by the scheduler before any process started" {
		t.Fatalf("status after TASK_STARTING %s %q, want TASK_KILLED saying no process started", got.State, got.Message)
	}
	if took > discovery/3 {
		t.Errorf("TASK_KILLED %s after the KILL: the kill waited for discovery (timeout %s)", took, discovery)
	}
	if _, err := os.Stat(filepath.Join(sandboxDir, "sandbox", ".logs")); !os.IsNotExist(err) {
		t.Errorf("the sandbox has process logs (%v): a process was started", err)
	}
}

func proto(s string) *string { return &s }

// inFreshNetNS runs the calling test again inside a new network namespace
// (only loopback) and reports false; inside it, it reports true and the
// test goes on.
func inFreshNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(inNetNS) != "" {
		return true
	}
	name, _ := netnstest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := netnstest.Command(ctx, name, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetNS+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the test inside namespace %s: %v\n%s", name, err, out)
	}
	t.Logf("inside namespace %s:\n%s", name, out)
	return false
}

// TestDiscoveryTimeoutIsLost: when the container's CNI addresses never
// come, nothing of the task ever ran: an executor-side start deadline,
// which Thermos reports as TASK_LOST ("Timed out waiting for task to
// start!", aurora_executor.py, _start_runner), not as the task's failure.
func TestDiscoveryTimeoutIsLost(t *testing.T) {
	if !inFreshNetNS(t) {
		return
	}
	sandboxDir := t.TempDir()
	statuses := make(chan executor.Status, 16)
	env := executor.LaunchEnv{
		Config:    executor.Config{Sandbox: sandboxDir, ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
		Executor: mesos.ExecutorInfo{Container: &mesos.ContainerInfo{
			Type:         mesos.ContainerInfo_MESOS.Enum(),
			NetworkInfos: []mesos.NetworkInfo{{Name: proto("net1")}},
		}},
	}
	cmd := "true"
	info := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t"}, Command: &mesos.CommandInfo{Value: &cmd}}
	lr := New(Options{NoSetuid: true, DiscoveryTimeout: 500 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	task := lr.Launch(t.Context(), env, info, func(s executor.Status) { statuses <- s })
	t.Cleanup(func() { waitDone(t, task) })
	if got := <-statuses; got.State != mesos.TASK_STARTING {
		t.Fatalf("first status %s %q, want TASK_STARTING", got.State, got.Message)
	}
	select {
	case got := <-statuses:
		if got.State != mesos.TASK_LOST || got.Reason == nil || *got.Reason != mesos.REASON_CONTAINER_LAUNCH_FAILED ||
			!strings.Contains(got.Message, "discovering") {
			t.Fatalf("status after TASK_STARTING %s %v %q, want TASK_LOST REASON_CONTAINER_LAUNCH_FAILED about discovery", got.State, got.Reason, got.Message)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no status after the discovery timeout")
	}
}
