package sandbox

import (
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

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/internal/testenv"
)

func TestMain(m *testing.M) {
	// As the executor does: orphans of the tasks these tests run come back
	// to this process, so the tests can prove they are killed and reaped.
	if err := BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// taskRun is a running task and every event it produced.
type taskRun struct {
	t       *testing.T
	r       *Runner
	sandbox string
	workDir string

	mu      sync.Mutex
	events  []Event
	drained chan struct{}
}

// startTask starts task in a fresh sandbox; the runner is killed and waited
// for when the test ends.
func startTask(t *testing.T, task Task, edit ...func(*Options)) *taskRun {
	t.Helper()
	sb := t.TempDir()
	opt := Options{
		Sandbox: sb,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Logger:  zaptest.NewLogger(t),
	}
	for _, e := range edit {
		e(&opt)
	}
	r, err := Start(context.Background(), task, opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := &taskRun{t: t, r: r, sandbox: sb, workDir: filepath.Join(sb, "sandbox"), drained: make(chan struct{})}
	go func() {
		defer close(tr.drained)
		for e := range r.Events() {
			tr.mu.Lock()
			tr.events = append(tr.events, e)
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.Kill(ctx, 0)
		<-tr.drained
	})
	return tr
}

// wait returns the result once the task ended and its events were read.
func (tr *taskRun) wait(timeout time.Duration) Result {
	tr.t.Helper()
	select {
	case <-tr.r.Done():
	case <-time.After(timeout):
		tr.t.Fatalf("task did not end within %s; events so far:\n%s", timeout, tr.dump())
	}
	<-tr.drained
	return tr.r.Result()
}

func (tr *taskRun) snapshot() []Event {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]Event(nil), tr.events...)
}

func (tr *taskRun) dump() string {
	var b strings.Builder
	for _, e := range tr.snapshot() {
		fmt.Fprintf(&b, "  %s %s/%d %s %d %q\n", e.Kind, e.Process, e.Run, e.TaskState, e.ExitCode, e.Message)
	}
	return b.String()
}

// count is how many events of kind the process had.
func (tr *taskRun) count(process string, kind EventKind) int {
	n := 0
	for _, e := range tr.snapshot() {
		if e.Process == process && e.Kind == kind {
			n++
		}
	}
	return n
}

// index is the position of the first matching event, -1 if none.
func (tr *taskRun) index(process string, kind EventKind) int {
	for i, e := range tr.snapshot() {
		if e.Process == process && e.Kind == kind {
			return i
		}
	}
	return -1
}

func (tr *taskRun) stateIndex(s State) int {
	for i, e := range tr.snapshot() {
		if e.Kind == EventState && e.TaskState == s {
			return i
		}
	}
	return -1
}

func (tr *taskRun) logFile(process string, run int, name string) string {
	return filepath.Join(tr.workDir, ".logs", process, strconv.Itoa(run), name)
}

// eventually is testenv.WaitUntil under the name this package's tests use.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitUntil(t, timeout, what, cond)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	p, ok := parseStat(pid, b)
	return ok && p.state != 'Z'
}

// exists reports whether pid exists at all (a zombie counts).
func exists(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

func newProc(name, cmd string) Process { return Process{Name: name, Cmdline: cmd, MaxFailures: 1} }
