package executore2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
)

// binaries are the real dewar-agent and dewar-executor, built once per test
// binary by testenv.
type binaries struct{ agent, executor string }

func build(t testing.TB) binaries {
	t.Helper()
	return binaries{agent: testenv.Binary(t, "dewar-agent"), executor: testenv.Binary(t, "dewar-executor")}
}

// agentProc is a `dewar-agent` process serving on loopback.
type agentProc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	err    error // Wait's result, once exited is closed

	mu  sync.Mutex
	out strings.Builder // every line after the first (the status updates)
}

// startAgent starts `dewar-agent args...` in serving mode and waits until it
// has printed the address it listens on. The process is stopped (SIGTERM,
// then SIGKILL) in t.Cleanup; its executors are not: callers register
// those with killExecutorAtCleanup.
func startAgent(t testing.TB, bin string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	p.cmd.Stderr = &syncWriter{w: &stderr, mu: &p.mu}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dewar-agent: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		// A test that failed half-way may leave executors behind, and a
		// checkpointing framework's executor outlives its agent by design.
		pids := p.executorPIDs()
		p.stop(t)
		for _, pid := range pids {
			if isExecutor(pid) {
				killPID(pid)
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
	m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if m == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("dewar-agent's first line %q names no address; stderr:\n%s", line, stderr.String())
	}
	p.url = "http://" + m[1]
	return p
}

type syncWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// stop sends SIGTERM, which stops the agent and leaves its executors
// running, and waits for the process to exit. Idempotent.
func (p *agentProc) stop(t testing.TB) {
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

// executorPIDs lists the executors the agent runs; nil once it is gone.
func (p *agentProc) executorPIDs() []int {
	select {
	case <-p.exited:
		return nil
	default:
	}
	res, err := http.Get(p.url + "/state")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var st fakeagent.State
	if json.NewDecoder(res.Body).Decode(&st) != nil {
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

// output is what the agent printed after its first line: one line per
// status update it checkpointed.
func (p *agentProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *agentProc) state(t testing.TB) fakeagent.State {
	t.Helper()
	res, err := http.Get(p.url + "/state")
	if err != nil {
		t.Fatalf("GET /state: %v", err)
	}
	defer res.Body.Close()
	var st fakeagent.State
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("GET /state: %v", err)
	}
	return st
}

// executor returns the executor's entry in /state.
func (p *agentProc) executor(t testing.TB, frameworkID, executorID string) fakeagent.ExecutorState {
	t.Helper()
	for _, f := range p.state(t).Frameworks {
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

// launched is a task launched through the agent's launch endpoint (what
// `dewar-agent launch` does); its updates arrive on updates, in order.
type launched struct {
	updates chan mesos.TaskStatus
	done    chan struct{}
	err     error
}

func launch(t testing.TB, agentURL string, task mesos.TaskInfo) *launched {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &launched{updates: make(chan mesos.TaskStatus, 64), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		_, l.err = fakeagent.LaunchRemote(ctx, agentURL, task, func(st mesos.TaskStatus) { l.updates <- st })
	}()
	t.Cleanup(func() { cancel(); <-l.done })
	return l
}

// await returns the next update, which must be in state want.
func (l *launched) await(t testing.TB, want mesos.TaskState) mesos.TaskStatus {
	t.Helper()
	var st mesos.TaskStatus
	select {
	case st = <-l.updates:
	case <-l.done:
		// LaunchRemote has returned: every update it saw is queued.
		select {
		case st = <-l.updates:
		default:
			t.Fatalf("update stream ended (%v) before %s", l.err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30s", want)
	}
	if st.GetState() != want {
		t.Fatalf("task %s: got %s (%s), want %s", st.TaskID.Value, st.GetState(), st.GetMessage(), want)
	}
	return st
}

// commandTask is a plain Mesos command task, run by the agent under its
// --executor (dewar-executor), with executor id = task id.
func commandTask(id, cmd string) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, Command: &mesos.CommandInfo{Value: &cmd}}
}

// uniqueSleep returns a `sleep` argument (1000 seconds and a random
// fraction) unique to this test, so that a scan of /proc finds exactly the
// processes this test started.
func uniqueSleep() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("1000.%09d", binary.BigEndian.Uint32(b[:])%1_000_000_000)
}

// shellWord spells marker for a shell command line so that the shell's own
// command line does not contain it but the words it passes on do; the
// empty quotes vanish when the shell splits words:
//
//	sleep 1000.''123   runs   sleep 1000.123
func shellWord(marker string) string {
	whole, frac, _ := strings.Cut(marker, ".")
	return whole + ".''" + frac
}

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// readUpdates reads the status updates the agent checkpointed for a task:
// the RecordIO stream of TaskStatus in
// <work>/meta/frameworks/<fw>/executors/<ex>/tasks/<task>/updates (layout
// documented in devcluster/fakeagent/store.go). An update is only acknowledged after
// it is in this file, so it is the ground truth of what was delivered.
func readUpdates(t testing.TB, work, fw, ex, task string) []mesos.TaskStatus {
	t.Helper()
	path := filepath.Join(work, "meta", "frameworks", fw, "executors", ex, "tasks", task, "updates")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("checkpointed updates: %v", err)
	}
	defer f.Close()
	r := recordio.NewReader(bufio.NewReader(f))
	var out []mesos.TaskStatus
	for {
		b, err := r.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("checkpointed updates %s: %v", path, err)
			}
			return out
		}
		var st mesos.TaskStatus
		if err := st.Unmarshal(b); err != nil {
			t.Fatalf("checkpointed update in %s: %v", path, err)
		}
		out = append(out, st)
	}
}
