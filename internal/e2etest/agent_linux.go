package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
)

// listening is the line dewar-agent prints once it serves.
var listening = regexp.MustCompile(`dewar-agent listening on (\S+)`)

// Agent is a dewar-agent process serving inside a Node.
type Agent struct {
	node *Node
	// PID is the agent's process.
	PID int
	// WorkDir is its --work-dir: checkpoints, sandboxes, the unix socket
	// and the isolator's state (cni/).
	WorkDir string
	// Socket is the agent's control socket, the test's way in (its
	// executor socket admits only the executor API, as Mesos').
	Socket string
	// Addr is the agent's TCP address inside the node's namespace, where
	// frameworks (the scheduler stub) reach its master API.
	Addr string

	cmd    *exec.Cmd
	out    *Buffer
	done   chan struct{} // closed when the process has been reaped
	client *http.Client
}

// StartAgent starts the real dewar-agent in the node's network namespace,
// with the node's CNI configs, the reference plugins and the real
// dewar-executor for command tasks; extra flags are appended. It returns
// once the agent answers /state on its unix socket. Cleanup kills what is
// still running (executors first, by PID, so that the agent tears their
// containers down), stops the agent and reports anything left behind as an
// error. One agent per node: its work dir is the node's, and an agent that
// exits before the cleanup is an error.
func (n *Node) StartAgent(t *testing.T, extra ...string) *Agent {
	t.Helper()
	plugins := testenv.CNIPluginDir(t)
	bin := testenv.Binary(t, "dewar-agent")
	executor := testenv.Binary(t, "dewar-executor")
	work := filepath.Join(n.Dir, "agent")
	a := &Agent{node: n, WorkDir: work, Socket: filepath.Join(work, fakeagent.ControlSocketName), out: &Buffer{}, done: make(chan struct{})}
	args := []string{"--net=" + filepath.Join(netnsDir, n.Name), "--", bin,
		"--work-dir", work, "--listen", "127.0.0.1:0", "--hostname", "dewar-e2e-node",
		"--executor", executor,
		"--network-cni-config-dir", n.ConfigDir, "--network-cni-plugins-dir", plugins,
		"--executor-shutdown-grace-period", "3s"}
	// nsenter --net, not `ip netns exec`: the latter gives the agent a
	// mount namespace of its own, and the container namespaces it pins
	// under /run/netns would be invisible to this test (and to cleanup).
	a.cmd = exec.Command("nsenter", append(args, extra...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start dewar-agent: %v", err)
	}
	a.PID = a.cmd.Process.Pid // nsenter execs the agent in place
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	a.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", a.Socket)
		},
	}}
	t.Cleanup(func() { a.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-a.done:
			t.Fatalf("dewar-agent exited before serving:\n%s", a.out.String())
		default:
		}
		if _, err := a.state(t.Context()); err == nil {
			if m := listening.FindStringSubmatch(a.out.String()); m != nil {
				a.Addr = m[1]
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dewar-agent did not answer on %s within 30s:\n%s", a.Socket, a.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output is what the agent printed so far (one line per status update,
// then its log).
func (a *Agent) Output() string { return a.out.String() }

// State is the agent's /state document.
func (a *Agent) State(t testing.TB) fakeagent.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.state(ctx)
	if err != nil {
		t.Fatalf("dewar-agent /state: %v", err)
	}
	return st
}

func (a *Agent) state(ctx context.Context) (fakeagent.State, error) {
	var st fakeagent.State
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://dewar-agent/state", nil)
	if err != nil {
		return st, err
	}
	res, err := a.client.Do(req)
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return st, err
	}
	if res.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/state: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	return st, json.Unmarshal(b, &st)
}

// Executor returns the /state entry of the executor running taskID.
func (a *Agent) Executor(t testing.TB, taskID string) fakeagent.ExecutorState {
	t.Helper()
	for _, fw := range a.State(t).Frameworks {
		for _, ex := range fw.Executors {
			for _, task := range ex.Tasks {
				if task.ID == taskID {
					return ex
				}
			}
		}
	}
	t.Fatalf("no executor of task %s in the agent's /state", taskID)
	return fakeagent.ExecutorState{}
}

// ContainerNetNS returns the name under /run/netns of the network
// namespace process pid runs in (the executor's container) and records it:
// the test fails if it still exists at the end.
func (a *Agent) ContainerNetNS(t testing.TB, pid int) string {
	t.Helper()
	name, err := netnsByInode(pid)
	if err != nil {
		t.Fatalf("network namespace of pid %d: %v", pid, err)
	}
	if name == "" {
		t.Fatalf("the network namespace of pid %d is not pinned under %s", pid, netnsDir)
	}
	if name == a.node.Name {
		t.Fatalf("pid %d runs in the node's namespace %s, not in a container's", pid, name)
	}
	a.node.recordNetNS(name)
	return name
}

// WaitContainersGone waits until the isolator holds no container any more
// (every CNI DEL done, every container namespace removed).
func (a *Agent) WaitContainersGone(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := a.preparedContainers()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers still prepared after %v: %v\nagent output:\n%s", timeout, left, a.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitContainerGone waits until the container's CNI state is gone (every
// CNI DEL done) and the namespace name (if not "") is no longer pinned.
func (a *Agent) WaitContainerGone(t testing.TB, containerID, netns string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, serr := os.Stat(filepath.Join(a.WorkDir, "cni", "containers", containerID+".json"))
		nerr := error(os.ErrNotExist)
		if netns != "" {
			_, nerr = os.Stat(filepath.Join(netnsDir, netns))
		}
		if errors.Is(serr, fs.ErrNotExist) && errors.Is(nerr, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s (namespace %s) not cleaned up within %v (state: %v, namespace: %v)", containerID, netns, timeout, serr, nerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isolatorState is the part of the isolator's per-container state the
// cleanup needs (devcluster/isolator/state.go).
type isolatorState struct {
	ContainerID string `json:"container_id"`
	NetNSName   string `json:"netns_name"`
}

func (a *Agent) preparedContainers() []isolatorState {
	files, _ := filepath.Glob(filepath.Join(a.WorkDir, "cni", "containers", "*.json"))
	var out []isolatorState
	for _, f := range files {
		var st isolatorState
		b, err := os.ReadFile(f)
		if err == nil {
			_ = json.Unmarshal(b, &st)
		}
		if st.ContainerID == "" {
			st.ContainerID = strings.TrimSuffix(filepath.Base(f), ".json")
		}
		out = append(out, st)
	}
	return out
}

// stop ends the agent and everything it started. Executors still running
// (the test ended early) are killed by their PIDs from /state; the agent
// then destroys their containers as after any executor exit. Anything the
// agent fails to remove is an error and is removed here.
func (a *Agent) stop(t *testing.T) {
	t.Helper()
	select {
	case <-a.done:
		t.Errorf("dewar-agent exited during the test")
	default:
		a.awaitIdleExecutors(t, 20*time.Second)
		a.killExecutors(t)
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(15 * time.Second):
			t.Errorf("dewar-agent did not stop within 15s of SIGTERM; killing it")
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	}
	for _, pid := range PIDsWithEnv("MESOS_DIRECTORY=" + a.WorkDir + "/") {
		t.Errorf("process %d of the agent's work dir outlived it; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, st := range a.preparedContainers() {
		t.Errorf("container %s (namespace %q) was not cleaned up", st.ContainerID, st.NetNSName)
		if st.NetNSName != "" {
			a.node.recordNetNS(st.NetNSName)
		}
	}
	a.node.mu.Lock()
	names := append([]string(nil), a.node.netns...)
	a.node.mu.Unlock()
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
			t.Errorf("container namespace %s was left behind; deleting it", name)
			if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns delete %s: %v: %s", name, err, bytes.TrimSpace(out))
			}
		}
	}
	if t.Failed() {
		t.Logf("dewar-agent output:\n%s", a.out.String())
		logs, _ := filepath.Glob(filepath.Join(a.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			t.Logf("executor log %s:\n%s", f, b)
		}
	}
}

// awaitIdleExecutors gives every executor whose tasks have all ended the
// time to exit by itself, as it must once its terminal updates are
// acknowledged (a scheduler's kill at the end of a test is still being
// acknowledged); one that does not within d is an error.
func (a *Agent) awaitIdleExecutors(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := a.state(ctx)
		cancel()
		if err != nil {
			t.Errorf("dewar-agent /state during cleanup: %v", err)
			return
		}
		idle := idleExecutors(st)
		if len(idle) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("executors %v outlived their tasks by %v", idle, d)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// idleExecutors lists the running executors of st whose tasks have all
// reached a terminal state.
func idleExecutors(st fakeagent.State) []string {
	var out []string
	for _, fw := range st.Frameworks {
		for _, ex := range fw.Executors {
			if ex.State == "terminated" || ex.PID <= 0 || len(ex.Tasks) == 0 {
				continue
			}
			done := true
			for _, task := range ex.Tasks {
				if !fakeagent.IsTerminal(mesos.TaskState(mesos.TaskState_value[task.State])) {
					done = false
				}
			}
			if done {
				out = append(out, ex.ID)
			}
		}
	}
	return out
}

// killExecutors kills every executor /state lists as running and waits
// (bounded) for the agent to clean up their containers.
func (a *Agent) killExecutors(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.state(ctx)
	if err != nil {
		t.Errorf("dewar-agent /state during cleanup: %v", err)
		return
	}
	killed := 0
	for _, fw := range st.Frameworks {
		for _, ex := range fw.Executors {
			if ex.State != "terminated" && ex.PID > 0 {
				t.Logf("cleanup: killing executor %s (pid %d)", ex.ID, ex.PID)
				_ = syscall.Kill(ex.PID, syscall.SIGKILL)
				killed++
			}
		}
	}
	if killed == 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(a.preparedContainers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// PIDsWithEnv lists processes, other than this one, whose environment holds
// a variable starting with prefix (executors and tasks carry
// MESOS_DIRECTORY, so they are found by their sandbox, never by name).
func PIDsWithEnv(prefix string) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if bytes.HasPrefix(kv, []byte(prefix)) {
				var pid int
				if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil && pid != os.Getpid() {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

// Buffer collects a child's output while the test reads it.
type Buffer = testenv.Buffer
