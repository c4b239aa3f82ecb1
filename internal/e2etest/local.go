package e2etest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
)

// LocalAgent is a dewar-agent process serving on loopback in the test's
// own namespaces: for host-networking tasks and for the life of the agent
// itself (restarts, recovery), where no node namespace is needed.
type LocalAgent struct {
	// URL is where the agent serves, http://127.0.0.1:PORT.
	URL string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, once exited is closed

	mu     sync.Mutex
	out    strings.Builder // every line after the first (the status updates)
	stderr strings.Builder
}

// localListening is the first line a serving dewar-agent prints.
var localListening = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// StartLocalAgent starts `bin args...` (dewar-agent serving; give it
// --listen 127.0.0.1:0) and waits until it has printed the address it
// listens on. Cleanup stops it (SIGTERM; a failed exit is an error), then
// kills the executors it ran that are still alive: a checkpointing
// framework's executor outlives its agent by design, and a test that
// failed half-way may leave one.
func StartLocalAgent(t testing.TB, bin string, args ...string) *LocalAgent {
	t.Helper()
	p := &LocalAgent{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dewar-agent: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		pids := p.executorPIDs()
		p.Stop(t)
		for _, pid := range pids {
			if IsExecutor(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	first := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for n := 0; lines.Scan(); n++ {
			if n == 0 {
				first <- lines.Text()
				continue
			}
			p.mu.Lock()
			p.out.WriteString(lines.Text() + "\n")
			p.mu.Unlock()
		}
		close(first)
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("dewar-agent printed nothing within 30s")
	}
	m := localListening.FindStringSubmatch(line)
	if m == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("dewar-agent's first line %q names no address; stderr:\n%s", line, p.stderr.String())
	}
	p.URL = "http://" + m[1]
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Stop sends SIGTERM, which stops the agent and leaves its executors
// running, and waits for the process to exit. Idempotent.
func (p *LocalAgent) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("dewar-agent exited with %v after SIGTERM", p.err)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Error("dewar-agent did not stop within 20s of SIGTERM; killed")
	}
}

// Output is what the agent printed after its first line: one line per
// status update it checkpointed.
func (p *LocalAgent) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// State is the agent's /state document.
func (p *LocalAgent) State(t testing.TB) fakeagent.State {
	t.Helper()
	st, err := p.state()
	if err != nil {
		t.Fatalf("GET %s/state: %v", p.URL, err)
	}
	return st
}

func (p *LocalAgent) state() (fakeagent.State, error) {
	var st fakeagent.State
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(p.URL + "/state")
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	return st, json.NewDecoder(res.Body).Decode(&st)
}

// Executor returns the executor's entry in /state.
func (p *LocalAgent) Executor(t testing.TB, frameworkID, executorID string) fakeagent.ExecutorState {
	t.Helper()
	for _, f := range p.State(t).Frameworks {
		if f.ID != frameworkID {
			continue
		}
		for _, e := range f.Executors {
			if e.ID == executorID {
				return e
			}
		}
	}
	t.Fatalf("executor %s of framework %s is not in /state", executorID, frameworkID)
	return fakeagent.ExecutorState{}
}

// executorPIDs lists the executors the agent runs; nil once it is gone.
func (p *LocalAgent) executorPIDs() []int {
	select {
	case <-p.exited:
		return nil
	default:
	}
	st, err := p.state()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range st.Frameworks {
		for _, e := range f.Executors {
			if e.State != "terminated" && e.PID > 0 {
				pids = append(pids, e.PID)
			}
		}
	}
	return pids
}

// Alive reports whether pid exists and is neither a zombie nor dead.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	s := b[i+2]
	return s != 'Z' && s != 'X'
}

// IsExecutor reports whether pid is a live dewar-executor, so that a
// cleanup never signals a process that merely reused the pid.
func IsExecutor(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(b, []byte("dewar-executor")) && Alive(pid)
}
