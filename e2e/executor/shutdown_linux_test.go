package executore2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// stubbornScript is a command task whose shell ignores SIGTERM, and so
// does every sleep it starts (an ignored signal stays ignored across
// exec): only SIGKILL ends it. marker is in the shell's command line; the
// file ready appears once SIGTERM is ignored.
func stubbornScript(marker, ready string) string {
	return fmt.Sprintf(": %s; trap '' TERM; touch %s; while true; do sleep 0.2; done", marker, ready)
}

// awaitFile waits until path exists.
func awaitFile(t testing.TB, path string) {
	t.Helper()
	testenv.WaitUntil(t, 20*time.Second, path+" to exist", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// TestInterruptedRunKillsStubbornTask: Ctrl-C to `dewar-agent run` while
// its task ignores SIGTERM. The agent sends SHUTDOWN; the executor kills
// the task within the shutdown grace period minus a margin, so its own
// TASK_KILLED (not one the agent makes up for a dead executor) is
// delivered before either has to give up, and nothing of the task is left.
func TestInterruptedRunKillsStubbornTask(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	marker := newID("stubborn")
	killMarkedAtCleanup(t, marker)
	taskID := newID("interrupted")
	ready := filepath.Join(dir, "ready")
	task := commandTask(taskID, stubbornScript(marker, ready))
	b, err := task.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	taskFile := filepath.Join(dir, "task.json")
	if err := os.WriteFile(taskFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, bin.agent, "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", "3s", taskFile)

	r.awaitLine(t, "TASK_RUNNING task="+taskID+" ")
	exPID := executorPID(t, work, fakeagent.CLIFrameworkID, taskID)
	killExecutorAtCleanup(t, exPID)
	awaitFile(t, ready)

	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("dewar-agent run did not exit within 30s of SIGINT; printed:\n%s", r.output())
	}
	if e2etest.Alive(exPID) {
		t.Errorf("the executor %d outlived `dewar-agent run`", exPID)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("the task's processes outlived `dewar-agent run`: %v", left)
	}
	if got := printedStates(r.output(), taskID); got != "TASK_STARTING TASK_RUNNING TASK_KILLED" {
		t.Errorf("printed %q, want TASK_STARTING TASK_RUNNING TASK_KILLED; output:\n%s", got, r.output())
	}
	last := lastUpdateFromExecutor(t, work, fakeagent.CLIFrameworkID, taskID, taskID)
	if last.GetState() != mesos.TASK_KILLED || !strings.Contains(last.GetMessage(), "shut down") {
		t.Errorf("final update %s (%q), want TASK_KILLED saying the executor was shut down", last.GetState(), last.GetMessage())
	}
}

// TestExecutorSIGTERMIsGracefulShutdown: SIGTERM to the executor process
// (as an init system or a person would send) is a graceful shutdown: the
// task gets SIGTERM and time for its TERM handler (one second of work,
// then a file), its TASK_KILLED reaches the agent, and the executor exits.
func TestExecutorSIGTERMIsGracefulShutdown(t *testing.T) {
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", "5s")
	marker := newID("graceful")
	killMarkedAtCleanup(t, marker)
	dir := t.TempDir()
	ready, trapped := filepath.Join(dir, "ready"), filepath.Join(dir, "trap-done")

	f := subscribeFramework(t, a.URL)
	taskID := newID("sigterm")
	f.launchCommand(taskID, fmt.Sprintf(": %s; trap 'sleep 1; echo done > %s; exit 0' TERM; touch %s; while true; do sleep 0.2; done", marker, trapped, ready))
	f.Update(mesos.TASK_STARTING)
	f.Update(mesos.TASK_RUNNING)
	ex := a.Executor(t, f.ID, taskID)
	killExecutorAtCleanup(t, ex.PID)
	awaitFile(t, ready)

	if err := syscall.Kill(ex.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := f.Update(mesos.TASK_KILLED)
	if st.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_KILLED from %s (%s), want from the executor", st.GetSource(), st.GetMessage())
	}
	// TASK_KILLED is reported once the task's processes are gone, so the
	// handler had finished by then: checked at once, not polled.
	if b, err := os.ReadFile(trapped); err != nil || string(b) != "done\n" {
		t.Errorf("the task's TERM handler did not run to completion (%q, %v): it was cut short", b, err)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("after TASK_KILLED, task processes still run: %v", left)
	}
	testenv.WaitUntil(t, 20*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(ex.PID) })
	last := lastUpdateFromExecutor(t, work, f.ID, taskID, taskID)
	if last.GetState() != mesos.TASK_KILLED {
		t.Errorf("checkpointed final update %s (%q), want TASK_KILLED", last.GetState(), last.GetMessage())
	}
}

// TestExecutorSecondSIGTERMStopsAtOnce: a second SIGTERM during the
// graceful shutdown does not wait for the task's grace period; the agent
// then cleans up after the executor, leaving nothing of the task.
func TestExecutorSecondSIGTERMStopsAtOnce(t *testing.T) {
	const grace = 20 * time.Second
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", grace.String())
	marker := newID("impatient")
	killMarkedAtCleanup(t, marker)

	f := subscribeFramework(t, a.URL)
	taskID := newID("sigterm2")
	ready := filepath.Join(t.TempDir(), "ready")
	f.launchCommand(taskID, stubbornScript(marker, ready))
	f.Update(mesos.TASK_STARTING)
	f.Update(mesos.TASK_RUNNING)
	ex := a.Executor(t, f.ID, taskID)
	killExecutorAtCleanup(t, ex.PID)
	awaitFile(t, ready)

	if err := syscall.Kill(ex.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The second signal must come after the first was handled, or the
	// two would count as one.
	execLog := filepath.Join(ex.Sandbox, "stderr")
	testenv.WaitUntil(t, 20*time.Second, "the executor to start shutting down", func() bool { return logHas(execLog, "shutting down") })
	sent := time.Now()
	if err := syscall.Kill(ex.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, grace/2, "the executor to exit after the second SIGTERM", func() bool { return !e2etest.Alive(ex.PID) })
	t.Logf("the executor exited %s after the second SIGTERM", time.Since(sent).Round(time.Millisecond))
	testenv.WaitUntil(t, 20*time.Second, "the task's processes to be gone", func() bool { return len(processesWith(marker)) == 0 })
	st := f.Update(mesos.TASK_KILLED)
	t.Logf("final update from %s: %s", st.GetSource(), st.GetMessage())
}

// TestKillDuringZooKeeperConnect: the executor announces into an ensemble
// that never answers (a listener that accepts no connection), so it waits
// in the ZooKeeper connect, before any process starts. A KILL then
// abandons the connect: TASK_KILLED well before the connect timeout (30s),
// and no process of the task ever runs.
func TestKillDuringZooKeeperConnect(t *testing.T) {
	bin := build(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", "3s")
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mute.Close() })
	marker := newID("never")
	killMarkedAtCleanup(t, marker)

	f := subscribeFramework(t, a.URL)
	taskID := newID("zkconnect")
	task := announcingTask(t, bin.executor, taskID, ": "+marker+"; sleep 1000", "--announcer-ensemble", mute.Addr().String())
	agentID := f.launchTask(task)
	f.Update(mesos.TASK_STARTING)
	ex := a.Executor(t, f.ID, task.Executor.ExecutorID.Value)
	killExecutorAtCleanup(t, ex.PID)
	// The announcer's log names the ensemble once it is connecting.
	execLog := filepath.Join(ex.Sandbox, "stderr")
	testenv.WaitUntil(t, 20*time.Second, "the executor to connect to ZooKeeper", func() bool {
		return logHas(execLog, mute.Addr().String())
	})

	sent := time.Now()
	f.Call(calls.Kill(taskID, agentID))
	st := f.Update(mesos.TASK_KILLED)
	took := time.Since(sent)
	t.Logf("TASK_KILLED %s after the KILL", took.Round(time.Millisecond))
	if st.GetSource() != mesos.SOURCE_EXECUTOR || !strings.Contains(st.GetMessage(), "before any process started") {
		t.Errorf("TASK_KILLED from %s (%q), want from the executor, saying no process started", st.GetSource(), st.GetMessage())
	}
	// The abandoned connection is closed in the background (go-zookeeper's
	// Close and its loop, stuck in a handshake read against this silent
	// listener, take seconds): the kill must not wait for it.
	if took > 5*time.Second {
		t.Errorf("TASK_KILLED %s after the KILL: the kill waited for the ZooKeeper connect", took)
	}
	if logHas(execLog, "no session from") {
		t.Errorf("the ZooKeeper connect timed out instead of being abandoned:\n%s", readLog(execLog))
	}
	if _, err := os.Stat(filepath.Join(ex.Sandbox, "sandbox", ".logs")); !os.IsNotExist(err) {
		t.Errorf("the sandbox has process logs (%v): a process was started", err)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("the task's process runs: %v", left)
	}
	testenv.WaitUntil(t, 20*time.Second, "the executor to exit", func() bool { return !e2etest.Alive(ex.PID) })
}

// TestKillWithZooKeeperGone: the task is announced and RUNNING when its
// ensemble stops; then a KILL. Withdrawing the member cannot succeed, and
// gets only a share of the grace period (min(grace/4, 2s)): the process
// still gets SIGTERM and the time its TERM handler needs, and the
// executor's TASK_KILLED is delivered.
func TestKillWithZooKeeperGone(t *testing.T) {
	const grace = 4 * time.Second
	bin := build(t)
	srv := zktest.Start(t)
	work := filepath.Join(t.TempDir(), "work")
	a := e2etest.StartLocalAgent(t, bin.agent, "--listen", "127.0.0.1:0", "--work-dir", work, "--executor", bin.executor,
		"--executor-shutdown-grace-period", grace.String())
	marker := newID("zkgone")
	killMarkedAtCleanup(t, marker)
	dir := t.TempDir()
	ready, termAt, trapped := filepath.Join(dir, "ready"), filepath.Join(dir, "term-at"), filepath.Join(dir, "trap-done")

	f := subscribeFramework(t, a.URL)
	taskID := newID("zkgone")
	cmdline := fmt.Sprintf(": %s; trap 'date +%%s.%%N > %s; sleep 1; echo done > %s; exit 0' TERM; touch %s; while true; do sleep 0.2; done",
		marker, termAt, trapped, ready)
	agentID := f.launchTask(announcingTask(t, bin.executor, taskID, cmdline, "--announcer-ensemble", srv.Addr()))
	f.Update(mesos.TASK_STARTING)
	f.Update(mesos.TASK_RUNNING) // announced: RUNNING comes after the join
	awaitFile(t, ready)

	srv.Stop()
	sent := time.Now()
	f.Call(calls.Kill(taskID, agentID))
	st := f.Update(mesos.TASK_KILLED)
	if st.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_KILLED from %s (%s), want from the executor", st.GetSource(), st.GetMessage())
	}
	if b, err := os.ReadFile(trapped); err != nil || string(b) != "done\n" {
		t.Fatalf("the process's TERM handler did not run to completion (%q, %v): the withdrawal ate the grace period", b, err)
	}
	b, err := os.ReadFile(termAt)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("term-at %q: %v", b, err)
	}
	term := time.Unix(0, int64(secs*1e9))
	t.Logf("SIGTERM %s after the KILL", term.Sub(sent).Round(time.Millisecond))
	// The withdrawal's share is grace/4; the rest is slack for -race on
	// two cores.
	if d := term.Sub(sent); d > grace/4+2*time.Second {
		t.Errorf("SIGTERM came %s after the KILL; the withdrawal may take only %s", d, grace/4)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("after TASK_KILLED, task processes still run: %v", left)
	}
}

// announcingTask is an Aurora task that announces (primary port "web",
// which nothing serves: no HTTP lifecycle) and runs one process, cmdline.
// flags go to the executor.
func announcingTask(t testing.TB, executorBin, taskID, cmdline string, flags ...string) mesos.TaskInfo {
	t.Helper()
	jobJSON := fmt.Sprintf(`{
  "name": "announced", "role": "root", "environment": "test", "cluster": "e2e", "instances": 1,
  "announce": {"primary_port": "web"},
  "task": {
    "name": "announced",
    "processes": [{"name": "main", "cmdline": %q, "max_failures": 1}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 0
  }
}`, cmdline)
	job, err := aurora.ParseJob([]byte(jobJSON))
	if err != nil {
		t.Fatalf("test job: %v", err)
	}
	data, err := aurora.BuildAssignedTask(job, []byte(jobJSON), taskID, 0, map[string]int32{"web": 31001})
	if err != nil {
		t.Fatalf("test job: %v", err)
	}
	noShell := false
	return mesos.TaskInfo{
		Name: "announced", TaskID: mesos.TaskID{Value: taskID}, Data: data,
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: "thermos-" + taskID},
			Command:    &mesos.CommandInfo{Value: &executorBin, Shell: &noShell, Arguments: append([]string{executorBin}, flags...)},
		},
	}
}

// lastUpdateFromExecutor returns the last update the agent checkpointed
// for the task, failing the test if any of them was made up by the agent
// (as it does for the tasks of an executor that died).
func lastUpdateFromExecutor(t testing.TB, work, fw, ex, task string) mesos.TaskStatus {
	t.Helper()
	ups := readUpdates(t, work, fw, ex, task)
	if len(ups) == 0 {
		t.Fatal("no update checkpointed")
	}
	for _, st := range ups {
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Errorf("checkpointed %s from %s (%q): the agent had to fill in for the executor", st.GetState(), st.GetSource(), st.GetMessage())
		}
	}
	return ups[len(ups)-1]
}

// executorPID reads the executor's pid from the agent's checkpoint
// (run.json, see devcluster/fakeagent/store.go), for agents that serve no /state.
func executorPID(t testing.TB, work, fw, ex string) int {
	t.Helper()
	path := filepath.Join(work, "meta", "frameworks", fw, "executors", ex, "run.json")
	var pid int
	testenv.WaitUntil(t, 10*time.Second, "the executor's pid in "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var run struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(b, &run) != nil {
			return false
		}
		pid = run.PID
		return pid > 0
	})
	return pid
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// runProc is a `dewar-agent run` process.
type runProc struct {
	cmd    *exec.Cmd
	exited chan struct{}

	mu    sync.Mutex
	out   strings.Builder // stdout: the work dir, then one line per update
	lines chans.Wake      // a line was printed
}

// startRun starts `dewar-agent run args...`; cleanup kills it if it is
// still running (its executor is the test's to kill).
func startRun(t testing.TB, bin string, args ...string) *runProc {
	t.Helper()
	r := &runProc{cmd: exec.Command(bin, append([]string{"run"}, args...)...), exited: make(chan struct{}), lines: chans.NewWake()}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = &syncWriter{w: &r.out, mu: &r.mu}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start dewar-agent run: %v", err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			r.lines.Signal()
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	return r
}

func (r *runProc) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// awaitLine waits until a line of the output starts with prefix.
func (r *runProc) awaitLine(t testing.TB, prefix string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		for _, line := range strings.Split(r.output(), "\n") {
			if strings.HasPrefix(line, prefix) {
				return
			}
		}
		select {
		case <-r.lines:
		case <-r.exited:
			t.Fatalf("dewar-agent run exited before printing %q:\n%s", prefix, r.output())
		case <-timeout:
			t.Fatalf("dewar-agent run printed no %q within 30s:\n%s", prefix, r.output())
		}
	}
}
