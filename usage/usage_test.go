package usage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/usage"
)

// startTree starts a run as package sandbox does, in a session of its own:
// a shell whose child burns CPU while the shell waits, so the child's use
// only counts if the tree's members are found.
func startTree(t *testing.T) (*exec.Cmd, time.Time) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while :; do i=$((i+1)); done' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	t.Cleanup(func() {
		// The whole session: its id is the shell's pid, and so its group's.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd, started
}

func newSampler(t *testing.T) *usage.Sampler {
	t.Helper()
	s, err := usage.NewSampler("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionsOfARealTree(t *testing.T) {
	s := newSampler(t)
	cmd, started := startTree(t)
	pid := cmd.Process.Pid
	var first usage.Tree
	testenv.WaitUntil(t, 10*time.Second, "both processes of the tree, with CPU time", func() bool {
		trees, err := s.Sessions(context.Background(), map[int]bool{pid: true})
		if err != nil {
			t.Fatal(err)
		}
		first = trees[pid]
		return first.Processes == 2 && first.CPUSeconds > 0
	})
	if first.RSSBytes <= 0 {
		t.Errorf("RSS = %d, want > 0", first.RSSBytes)
	}
	if d := first.LeaderStart.Sub(started); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("leader start %s is %s from the start %s", first.LeaderStart, d, started)
	}
	testenv.WaitUntil(t, 10*time.Second, "the tree's CPU time to grow", func() bool {
		trees, err := s.Sessions(context.Background(), map[int]bool{pid: true})
		if err != nil {
			t.Fatal(err)
		}
		return trees[pid].CPUSeconds > first.CPUSeconds
	})
	// Other sessions are not counted.
	trees, err := s.Sessions(context.Background(), map[int]bool{os.Getpid(): false})
	if err != nil || len(trees) != 0 {
		t.Errorf("Sessions(none) = %v, %v", trees, err)
	}
}

func TestDiskUseSkipsSymlinksAndStopsAtTheBound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("x", 100_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "huge"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// A link out of the sandbox: counted as a link, never followed.
	if err := os.Symlink(big, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	d := usage.DiskUse(context.Background(), dir, 0)
	if d.Truncated || d.Entries != 3 || d.Bytes < 100_000 || d.Bytes >= 4<<20 {
		t.Errorf("DiskUse = %+v; want the dir, the file and the link, about 100 KB", d)
	}
	if d := usage.DiskUse(context.Background(), dir, 2); !d.Truncated || d.Entries != 2 {
		t.Errorf("DiskUse bounded at 2 = %+v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := usage.DiskUse(ctx, dir, 0); !d.Truncated {
		t.Errorf("DiskUse after cancel = %+v, want truncated", d)
	}
}

// Record puts the samples in the checkpoint, on disk, for the run whose pid
// and start match; a run whose pid was reused (its start is far from the
// process's) gets none.
func TestRecordWritesSamples(t *testing.T) {
	s := newSampler(t)
	cmd, started := startTree(t)
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-rec"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Update(func(c *checkpoint.Task) {
		c.RunStarted("web", 0, cmd.Process.Pid, started)
		c.RunStarted("stale", 0, cmd.Process.Pid, started.Add(-time.Hour))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Go(ctx, func(ctx context.Context) {
		usage.Record(ctx, w, usage.Options{Interval: 50 * time.Millisecond, Dir: dir, Sampler: s, Logger: zaptest.NewLogger(t)})
	})
	var cpu float64
	testenv.WaitUntil(t, 10*time.Second, "a sample of web and the disk in the checkpoint", func() bool {
		got, err := checkpoint.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		web := got.Process("web")
		if web == nil || web.Last().Usage == nil || got.Disk == nil || got.Disk.Bytes <= 0 {
			return false // not written yet
		}
		u := web.Last().Usage
		if u.RSSBytes <= 0 {
			t.Fatalf("usage = %+v, want RSS > 0", u)
		}
		cpu = u.CPUSeconds
		return true
	})
	testenv.WaitUntil(t, 10*time.Second, "a later sample with more CPU time", func() bool {
		got, err := checkpoint.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		return got.Process("web").Last().Usage.CPUSeconds > cpu
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u := got.Process("stale").Last().Usage; u != nil {
		t.Errorf("a run whose pid belongs to a later process got %+v", u)
	}
}
