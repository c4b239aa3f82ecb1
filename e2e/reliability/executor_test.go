package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// sleeperJob is an Aurora service with one long process and an announce
// section; no health check, so it is RUNNING (and announced) once started.
const sleeperJob = `{
  "name": "%s", "role": "root", "environment": "test", "cluster": "rel",
  "instances": 1, "service": true, "max_task_failures": 1,
  "announce": {"primary_port": "http", "portmap": {"aurora": "http"}},
  "task": {
    "name": "sleeper",
    "processes": [{"name": "sleeper", "cmdline": "sleep 600", "max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5, "final": false}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 30
  }
}`

// realExecutorKilled: the real dewar-executor runs an announced Aurora task
// under the strict fake agent and is SIGKILLed (an OOM kill). Nothing
// withdraws its member: only the session timeout removes it (the
// executor's, announcer.DefaultSessionTimeout, as it has no flag for it).
// Figures: time until the member is gone; time until the agent reports
// the task; processes of the task left alive. Must hold: gone ≤ session
// timeout + 1 s, the task reported terminal, no orphan.
func realExecutorKilled(t *testing.T, ens *zktest.Ensemble, sc scale) result {
	bound := announcer.DefaultSessionTimeout + time.Second
	res := result{
		scenario: "dewar-executor SIGKILLed under the fake agent (announced Aurora task)",
		must:     fmt.Sprintf("member gone ≤ session timeout + 1 s = %s; TASK_FAILED (executor terminated); no orphan process", secs(bound)),
	}
	executor := testenv.Binary(t, "dewar-executor")
	work := t.TempDir()
	for _, d := range []string{work, filepath.Dir(work)} {
		if err := os.Chmod(d, 0o755); err != nil { // traversable by the task user
			t.Fatal(err)
		}
	}
	agent, err := fakeagent.New(fakeagent.Config{
		WorkDir: work, Listen: "127.0.0.1:0", Hostname: "localhost",
		ShutdownGracePeriod: 5 * time.Second,
		Log:                 zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatalf("start the fake agent: %v", err)
	}
	var mu sync.Mutex
	var updates []mesos.TaskStatus
	var terminalAt time.Time
	agent.OnUpdate(func(_ string, st mesos.TaskStatus) {
		mu.Lock()
		defer mu.Unlock()
		updates = append(updates, st)
		if isTerminal(st.State) && terminalAt.IsZero() {
			terminalAt = time.Now()
		}
	})
	agent.Start()
	t.Cleanup(func() {
		_ = agent.Close()
		for _, err := range agent.Fatal() {
			t.Errorf("the fake agent hit a condition on which a real Mesos agent aborts: %v", err)
		}
	})

	name := "sleeper-" + testenv.RandomHex(4)
	jobJSON := []byte(fmt.Sprintf(sleeperJob, name))
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	taskID := fmt.Sprintf("root-test-%s-0-%d", name, time.Now().UnixNano())
	data, err := aurora.BuildAssignedTask(job, jobJSON, taskID, 0, map[string]int32{"http": 31999})
	if err != nil {
		t.Fatal(err)
	}
	shell := false
	exInfo := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "thermos-" + taskID},
		Name:       &[]string{aurora.ExecutorName}[0],
		Command: &mesos.CommandInfo{Value: &executor, Shell: &shell,
			Arguments: []string{executor, "--announcer-ensemble", strings.Join(ens.Addrs(), ",")}},
	}
	// Aurora's framework checkpoints (CommandLineDriverSettingsModule,
	// getFrameworkInfo: .setCheckpoint(true)), so the agent does not shut
	// the executor down the moment its connection drops.
	checkpoint := true
	fw := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "aurora"}, Name: "Aurora", User: "root", Checkpoint: &checkpoint}
	info := mesos.TaskInfo{Name: name, TaskID: mesos.TaskID{Value: taskID}, Data: data,
		Resources: []mesos.Resource{{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}}}}
	if err := agent.Launch(context.Background(), fw, exInfo, info); err != nil {
		t.Fatalf("launch: %v", err)
	}
	pid, sandbox := executorOf(t, agent, exInfo.ExecutorID.Value)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	r := reader(t, ens)
	path := "/aurora/root/test/" + name
	var node string
	waitUntil(t, time.Minute, "the task's member", func() bool {
		kids, _, err := r.Children(path)
		if err == nil && len(kids) == 1 {
			node = path + "/" + kids[0]
			return true
		}
		return false
	})
	ok, _, ch, err := r.ExistsW(node)
	if err != nil || !ok {
		t.Fatalf("watch %s: exists=%v, %v", node, ok, err)
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone := waitGone(t, r, node, ch, t0)
	waitUntil(t, time.Minute, "a terminal update of the task", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !terminalAt.IsZero()
	})
	mu.Lock()
	reported, last := terminalAt.Sub(t0), updates[len(updates)-1]
	mu.Unlock()
	// The agent kills what the executor left behind once it sees it exit
	// (every task process carries the sandbox as MESOS_DIRECTORY).
	var orphans []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if orphans = processesWithEnv("MESOS_DIRECTORY=" + sandbox); len(orphans) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("terminal update: %s (%s) %q", last.State, last.GetReason(), last.GetMessage())
	failed := last.GetState() == mesos.TASK_FAILED && last.GetReason() == mesos.REASON_EXECUTOR_TERMINATED
	for _, p := range orphans {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	res.figure = fmt.Sprintf("member gone %s after SIGKILL (session timeout %s); agent reported %s (%s) after %s; %d orphan processes",
		secs(gone), secs(announcer.DefaultSessionTimeout), last.GetState(), last.GetReason(), secs(reported), len(orphans))
	res.pass = gone <= bound && failed && len(orphans) == 0
	return res
}

func isTerminal(s *mesos.TaskState) bool {
	if s == nil {
		return false
	}
	switch *s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST, mesos.TASK_ERROR,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// executorOf polls /state until the executor has a PID.
func executorOf(t *testing.T, agent *fakeagent.Agent, id string) (pid int, sandbox string) {
	t.Helper()
	waitUntil(t, time.Minute, "executor "+id+" running", func() bool {
		for _, f := range agent.Snapshot().Frameworks {
			for _, e := range f.Executors {
				if e.ID == id && e.PID > 0 {
					pid, sandbox = e.PID, e.Sandbox
					return true
				}
			}
		}
		return false
	})
	return pid, sandbox
}

// processesWithEnv lists live processes whose environment holds kv.
func processesWithEnv(kv string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if string(v) == kv {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
