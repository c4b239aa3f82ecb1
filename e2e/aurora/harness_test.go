package aurorae2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/testenv"
)

// waitFor bounds every wait for an update; generous, because the race
// detector on two busy cores is slow, and a passing run never waits it out.
const waitFor = 40 * time.Second

// eventsFile is where the recording web server writes, in the sandbox.
const eventsFile = "lifecycle.events"

// recordingServer is the command line of the test web server as the
// witness of a kill (internal/testprog/webserver -events): it records its
// health, the lifecycle requests and SIGTERM into eventsFile, and only
// SIGTERM ends it. Jobs run it as $DEWAR_TEST_WEBSERVER.
func recordingServer(t *testing.T) string {
	t.Helper()
	return testenv.Program(t, "webserver") + " -events " + eventsFile
}

// update is a status update with the time the test received it.
type update struct {
	mesos.TaskStatus
	received time.Time
}

// node is one fake agent with the real executor binary.
type node struct {
	agent    *fakeagent.Agent
	executor string
	fw       mesos.FrameworkInfo

	mu      sync.Mutex
	updates map[string][]update // by task id
	changed chans.Wake          // something arrived
}

func startNode(t *testing.T) *node {
	t.Helper()
	return startNodeWith(t, nil)
}

// startNodeWith starts a node whose agent configuration edit changes.
func startNodeWith(t *testing.T, edit func(*fakeagent.Config)) *node {
	t.Helper()
	n := &node{
		executor: testenv.Binary(t, "dewar-executor"),
		fw:       mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "aurora"}, Name: "Aurora", User: "root"},
		updates:  map[string][]update{},
		changed:  chans.NewWake(),
	}
	// A Mesos agent's work dir is traversable by every task user (the
	// sandbox itself belongs to the user); t.TempDir is not.
	work := t.TempDir()
	for _, d := range []string{work, filepath.Dir(work)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fakeagent.Config{
		WorkDir:             work,
		Listen:              "127.0.0.1:0",
		Hostname:            "localhost",
		ShutdownGracePeriod: 5 * time.Second,
		Log:                 zaptest.NewLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := fakeagent.New(cfg)
	if err != nil {
		t.Fatalf("start agent: %v", err)
	}
	a.OnUpdate(func(_ string, st mesos.TaskStatus) {
		n.mu.Lock()
		n.updates[st.TaskID.Value] = append(n.updates[st.TaskID.Value], update{st, time.Now()})
		n.mu.Unlock()
		n.changed.Signal()
	})
	a.Start()
	n.agent = a
	t.Cleanup(func() {
		a.Close()
		for _, err := range a.Fatal() {
			t.Errorf("the fake agent hit a condition on which a real Mesos agent aborts: %v", err)
		}
	})
	return n
}

// task is one launched Aurora task.
type task struct {
	n        *node
	id       string
	executor string
	sandbox  string // MESOS_SANDBOX of the executor
	ports    map[string]int32
}

// launch sends jobJSON as Aurora does: the AssignedTask in TaskInfo.data,
// under an ExecutorInfo that runs dewar-executor with flags. env is added
// to the executor's environment; processes do not inherit it (Thermos'
// environment), so each ${NAME:-default} of env in the job is replaced by
// its value, as an operator would render the path into the job.
func (n *node) launch(t *testing.T, name string, jobJSON []byte, ports map[string]int32, env map[string]string, flags ...string) *task {
	t.Helper()
	jobJSON = renderEnv(jobJSON, env)
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	id := fmt.Sprintf("%s-%s-%s-0-%d", job.Role, job.Environment, job.Name, time.Now().UnixNano())
	data, err := aurora.BuildAssignedTask(job, jobJSON, id, 0, ports)
	if err != nil {
		t.Fatal(err)
	}
	tk := n.launchData(t, job.Name, id, data, env, flags...)
	tk.ports = ports
	return tk
}

// renderEnv replaces ${NAME:-default} of every NAME in env with its value.
func renderEnv(jobJSON []byte, env map[string]string) []byte {
	for k, v := range env {
		re := regexp.MustCompile(`\$\{` + regexp.QuoteMeta(k) + `:-[^}]*\}`)
		jobJSON = re.ReplaceAllLiteral(jobJSON, []byte(v))
	}
	return jobJSON
}

// launchData launches TaskInfo.data as it is, valid or not.
func (n *node) launchData(t *testing.T, name, id string, data []byte, env map[string]string, flags ...string) *task {
	t.Helper()
	shell := false
	vars := []mesos.Environment_Variable{}
	for k, v := range env {
		vars = append(vars, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return n.launchCommand(t, name, id, data, &mesos.CommandInfo{
		Value:       &n.executor,
		Shell:       &shell,
		Arguments:   append([]string{n.executor}, flags...),
		Environment: &mesos.Environment{Variables: vars},
	})
}

// launchCommand launches TaskInfo.data under an executor run by cmd.
func (n *node) launchCommand(t *testing.T, name, id string, data []byte, cmd *mesos.CommandInfo) *task {
	t.Helper()
	return n.launchContainer(t, name, id, data, cmd, nil)
}

// launchContainer launches TaskInfo.data under an executor run by cmd in
// container (nil: none).
func (n *node) launchContainer(t *testing.T, name, id string, data []byte, cmd *mesos.CommandInfo, container *mesos.ContainerInfo) *task {
	t.Helper()
	exInfo := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "thermos-" + id},
		Name:       ptr(aurora.ExecutorName),
		Command:    cmd,
		Container:  container,
	}
	info := mesos.TaskInfo{Name: name, TaskID: mesos.TaskID{Value: id}, Data: data,
		Resources: []mesos.Resource{{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}}}}
	if err := n.agent.Launch(context.Background(), n.fw, exInfo, info); err != nil {
		t.Fatalf("launch %s: %v", name, err)
	}
	tk := &task{n: n, id: id, executor: exInfo.ExecutorID.Value}
	for _, f := range n.agent.Snapshot().Frameworks {
		for _, e := range f.Executors {
			if f.ID == n.fw.ID.Value && e.ID == tk.executor {
				tk.sandbox = e.Sandbox
			}
		}
	}
	if tk.sandbox == "" {
		t.Fatalf("executor %s not in /state: %+v", tk.executor, n.agent.Snapshot())
	}
	// Runs before the agent's Close: the executor must be gone, and
	// nothing it started with it, before the test ends.
	t.Cleanup(func() { tk.awaitExit(t) })
	return tk
}

// awaitExit waits for the executor to exit; one still running is shut down.
func (tk *task) awaitExit(t *testing.T) {
	t.Helper()
	done := tk.n.agent.ExecutorDone(tk.n.fw.ID.Value, tk.executor)
	select {
	case <-done:
		return
	case <-time.After(waitFor):
	}
	t.Errorf("executor %s still running %v after the test; shutting it down\n%s", tk.executor, waitFor, tk.executorLog())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_ = tk.n.agent.ShutdownFramework(ctx, tk.n.fw.ID.Value)
	select {
	case <-done:
	case <-ctx.Done():
		t.Errorf("executor %s survived SHUTDOWN", tk.executor)
	}
}

func (tk *task) executorLog() string {
	b, _ := os.ReadFile(filepath.Join(tk.sandbox, "stderr"))
	return string(b)
}

// updates returns the task's updates so far.
func (tk *task) updates() []update {
	tk.n.mu.Lock()
	defer tk.n.mu.Unlock()
	return append([]update(nil), tk.n.updates[tk.id]...)
}

// await waits for an update in state and returns it.
func (tk *task) await(t *testing.T, state mesos.TaskState) update {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		for _, u := range tk.updates() {
			if u.GetState() == state {
				return u
			}
		}
		select {
		case <-tk.n.changed:
		case <-time.After(100 * time.Millisecond):
			// Several tasks share changed: poll as well.
		case <-deadline:
			t.Fatalf("no %v for %s within %v; got %s\nexecutor log:\n%s", state, tk.id, waitFor, tk.states(), tk.executorLog())
		}
	}
}

// awaitTerminal waits for the terminal update and returns it.
func (tk *task) awaitTerminal(t *testing.T) update {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		for _, u := range tk.updates() {
			if fakeagent.IsTerminal(u.GetState()) {
				return u
			}
		}
		select {
		case <-tk.n.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s did not end within %v; got %s\nexecutor log:\n%s", tk.id, waitFor, tk.states(), tk.executorLog())
		}
	}
}

// states is the task's update states in order, e.g. "TASK_STARTING TASK_RUNNING".
func (tk *task) states() string {
	var s []string
	for _, u := range tk.updates() {
		s = append(s, u.GetState().String())
	}
	return strings.Join(s, " ")
}

// expectStates checks the whole sequence of updates.
func (tk *task) expectStates(t *testing.T, want ...mesos.TaskState) {
	t.Helper()
	var w []string
	for _, s := range want {
		w = append(w, s.String())
	}
	if got := tk.states(); got != strings.Join(w, " ") {
		ups := tk.updates()
		t.Fatalf("updates %s, want %s\nlast message: %q\nexecutor log:\n%s", got, strings.Join(w, " "), ups[len(ups)-1].GetMessage(), tk.executorLog())
	}
}

// kill asks the agent to kill the task with a grace period.
func (tk *task) kill(t *testing.T, grace time.Duration) {
	t.Helper()
	tk.killWith(t, &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(grace)}})
}

// killWith asks the agent to kill the task with policy (nil: none, as
// Aurora's KILL carries none).
func (tk *task) killWith(t *testing.T, policy *mesos.KillPolicy) {
	t.Helper()
	if err := tk.n.agent.Kill(context.Background(), tk.n.fw.ID.Value, tk.id, policy); err != nil {
		t.Fatalf("kill %s: %v", tk.id, err)
	}
}

// workFile reads a file from the processes' working directory.
func (tk *task) workFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tk.sandbox, "sandbox", name))
	if err != nil {
		t.Fatalf("work file %s: %v", name, err)
	}
	return string(b)
}

// awaitEvent waits until the recording web server has recorded event name (it
// may not even have started when the executor reports RUNNING).
func (tk *task) awaitEvent(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	path := filepath.Join(tk.sandbox, "sandbox", eventsFile)
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, name+" ") {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recording web server recorded no %q event within %v", name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processLog reads <sandbox>/sandbox/.logs/<process>/<run>/<stream>, where
// Thermos puts it.
func (tk *task) processLog(t *testing.T, process string, run int, stream string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tk.sandbox, "sandbox", ".logs", process, strconv.Itoa(run), stream))
	if err != nil {
		t.Fatalf("log of %s run %d: %v", process, run, err)
	}
	return string(b)
}

// runs lists the run numbers of process that have a log directory.
func (tk *task) runs(t *testing.T, process string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tk.sandbox, "sandbox", ".logs", process))
	if err != nil {
		t.Fatalf("logs of %s: %v", process, err)
	}
	return len(entries)
}

// fixture is testenv.Fixture of testdata/aurora/<name>, lets edit change it, returns JSON.
func fixture(t *testing.T, name string, edit func(doc map[string]any)) []byte {
	t.Helper()
	return testenv.Fixture(t, filepath.Join("aurora", name), edit)
}

// freePorts picks n distinct free loopback ports, as an agent's port
// resources would be: listened on, then released for the task.
func freePorts(t *testing.T, names ...string) map[string]int32 {
	t.Helper()
	ports := map[string]int32{}
	var ls []net.Listener
	for _, name := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[name] = int32(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// events reads the recording web server's "<event> <unix ns>" lines: the
// first time of each event.
func events(t *testing.T, tk *task) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, line := range strings.Split(strings.TrimSpace(tk.workFile(t, eventsFile)), "\n") {
		name, ns, ok := strings.Cut(line, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad event line %q", line)
		}
		if _, seen := out[name]; !seen {
			out[name] = time.Unix(0, n)
		}
	}
	return out
}

// statusTime is when the executor created the update.
func statusTime(u update) time.Time {
	sec := u.GetTimestamp()
	return time.Unix(0, int64(sec*1e9))
}

func ptr[T any](v T) *T { return &v }
