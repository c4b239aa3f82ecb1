package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
)

// Update is a status update as the agent forwarded it (checkpointed, its
// network view merged in), with the time it reached the test.
type Update struct {
	Status mesos.TaskStatus
	At     time.Time
}

func (u Update) String() string {
	return fmt.Sprintf("%s %s", u.At.Format("15:04:05.000"), fakeagent.FormatUpdate(u.Status))
}

// Run is a task launched through the agent's control endpoint; its
// updates stream in until a terminal one.
type Run struct {
	// TaskID is the task's id (generated when the TaskInfo had none).
	TaskID string

	agent *Agent

	// mu guards the following fields.
	mu      sync.Mutex
	updates []Update
	next    int           // first update WaitFor has not consumed
	changed chan struct{} // closed (and replaced) on every new update and at the end
	ended   bool
	err     error // why the stream ended without a terminal update

	cancel context.CancelFunc
	done   chan struct{}
}

// Launch sends task to the agent (fakeagent.LaunchPath over the unix
// socket) and follows its updates. A task without executor runs under
// dewar-executor as a command task; its container (and so its networks)
// moves to the executor, as Mesos does.
func (a *Agent) Launch(t *testing.T, task mesos.TaskInfo) *Run {
	t.Helper()
	if task.TaskID.Value == "" {
		task.TaskID.Value = task.Name + "-" + testenv.RandomHex(4)
	}
	body, err := task.MarshalJSON()
	if err != nil {
		t.Fatalf("encode task: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://dewar-agent"+fakeagent.LaunchPath, bytes.NewReader(body))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := a.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("launch %s: %v", task.TaskID.Value, err)
	}
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		cancel()
		t.Fatalf("launch %s: %s: %s", task.TaskID.Value, res.Status, strings.TrimSpace(string(msg)))
	}
	r := &Run{TaskID: task.TaskID.Value, agent: a, changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go r.read(res.Body)
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *Run) read(body io.ReadCloser) {
	defer close(r.done)
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var err error
	for sc.Scan() {
		var st mesos.TaskStatus
		if err = st.UnmarshalJSON(sc.Bytes()); err != nil {
			err = fmt.Errorf("bad update from the agent: %w", err)
			break
		}
		r.add(Update{Status: st, At: time.Now()})
		if fakeagent.IsTerminal(st.GetState()) {
			break
		}
	}
	if err == nil {
		err = sc.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended, r.err = true, err
	close(r.changed)
}

func (r *Run) add(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Updates returns every update received so far.
func (r *Run) Updates() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Update(nil), r.updates...)
}

// WaitFor returns the first update, after those earlier WaitFor calls
// returned, for which match holds, skipping the ones before it. It fails
// the test when none arrives within timeout or the task ends without one.
func (r *Run) WaitFor(t testing.TB, timeout time.Duration, what string, match func(Update) bool) Update {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for i := r.next; i < len(r.updates); i++ {
			if match(r.updates[i]) {
				r.next = i + 1
				u := r.updates[i]
				r.mu.Unlock()
				return u
			}
		}
		r.next = len(r.updates)
		ended, err, changed := r.ended, r.err, r.changed
		r.mu.Unlock()
		if ended {
			t.Fatalf("task %s: no update %s; the update stream ended (%v) after:\n%s", r.TaskID, what, err, r.describe())
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("task %s: no update %s within %v; updates so far:\n%s", r.TaskID, what, timeout, r.describe())
		}
	}
}

func (r *Run) describe() string {
	var b strings.Builder
	for _, u := range r.Updates() {
		b.WriteString("  " + u.String() + "\n")
	}
	return b.String()
}

// Executor returns the /state entry of the task's executor.
func (r *Run) Executor(t testing.TB) fakeagent.ExecutorState {
	t.Helper()
	return r.agent.Executor(t, r.TaskID)
}

// InState matches updates in state s.
func InState(s mesos.TaskState) func(Update) bool {
	return func(u Update) bool { return u.Status.GetState() == s }
}
