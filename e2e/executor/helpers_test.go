package executore2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/mesosmeta"
	"github.com/dewarhq/dewar/internal/testenv"
)

// binaries are the real dewar-agent and dewar-executor, built once per test
// binary by testenv.
type binaries struct{ agent, executor string }

func build(t testing.TB) binaries {
	t.Helper()
	return binaries{agent: testenv.Binary(t, "dewar-agent"), executor: testenv.Binary(t, "dewar-executor")}
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

// readUpdates reads the status updates the agent checkpointed for a task,
// from the stream it keeps where and as the Mesos agent does
// (internal/mesosmeta: meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/
// runs/<container>/tasks/<task>/task.updates). An update is only
// acknowledged after it is checkpointed, so it is the ground truth of what
// was delivered.
func readUpdates(t testing.TB, work, fw, ex, task string) []mesos.TaskStatus {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(work, "meta", "slaves", "*", "frameworks", fw, "executors", ex, "runs", "*", "tasks", task, mesosmeta.UpdatesFile))
	if len(paths) != 1 {
		t.Fatalf("checkpointed updates of task %s: want one stream, found %v", task, paths)
	}
	recs, err := mesosmeta.ReadStream(paths[0])
	if err != nil {
		t.Fatalf("checkpointed updates: %v", err)
	}
	out := make([]mesos.TaskStatus, 0, len(recs))
	for _, r := range recs {
		if !r.Ack {
			out = append(out, r.Status)
		}
	}
	return out
}
