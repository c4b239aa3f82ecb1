package usage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/disklimit"
	"github.com/dewarhq/dewar/usage"
)

// writeTree fills a run directory: files beside the sandbox (the
// executor's logs, the checkpoint) and n files in it.
func writeTree(t *testing.T, run string, n int) {
	t.Helper()
	for _, p := range []string{"stdout", "stderr", "dewar/task.json"} {
		writeSized(t, filepath.Join(run, p), 3000)
	}
	for i := range n {
		writeSized(t, filepath.Join(run, "sandbox", ".logs", "web", "0", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), 1000+i)
	}
}

func writeSized(t *testing.T, p string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSharedDiskIsBothWalks: one shared walk yields what DiskUse makes of
// the run directory and what FileBytes (the disk limit's count) makes of
// the sandbox, also past the entry bound, where DiskUse stops but the
// limit must still see every file.
func TestSharedDiskIsBothWalks(t *testing.T) {
	run := t.TempDir()
	writeTree(t, run, 40)
	sub := filepath.Join(run, "sandbox")
	for _, max := range []int{0, 5, 20} {
		d := usage.NewSharedDisk(run, max, sub).Sample(context.Background(), 0)
		if want := usage.DiskUse(context.Background(), run, max); d.Disk != want {
			t.Errorf("bound %d: run dir %+v, want DiskUse's %+v", max, d.Disk, want)
		}
		if want := usage.FileBytes(sub); d.SubBytes != want || want == 0 {
			t.Errorf("bound %d: sandbox %d bytes, want FileBytes' %d", max, d.SubBytes, want)
		}
	}
	outside := t.TempDir()
	writeSized(t, filepath.Join(outside, "x"), 777)
	if d := usage.NewSharedDisk(run, 0, outside).Sample(context.Background(), 0); d.SubBytes != 777 {
		t.Errorf("a subdirectory outside the run dir: %d bytes, want 777", d.SubBytes)
	}
}

// TestOneWalkPerPeriod: the checkpoint's sampler (every 30 s) and the disk
// limit (every 60 s) share the run directory's walks: in 10 minutes the
// sandbox is walked 21 times (at 0, 30, ..., 600 s), not 32, and the limit
// still fails the task, on the first check after the sandbox outgrew it,
// with the bytes Thermos' du counts.
func TestOneWalkPerPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := t.TempDir()
		writeTree(t, run, 10)
		sandbox := filepath.Join(run, "sandbox")
		disk := usage.NewSharedDisk(run, 0, sandbox)
		walks := usage.CountWalks(disk)
		w, err := checkpoint.NewWriter(run, checkpoint.Task{TaskID: "t-walk"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.Go(ctx, func(ctx context.Context) {
			usage.Record(ctx, w, usage.Options{Interval: 30 * time.Second, Disk: disk})
		})
		reserved := usage.FileBytes(sandbox) + 4096
		exceeded := disklimit.Watch(ctx, disklimit.Config{Dir: sandbox, Reserved: reserved, Interval: disklimit.DefaultInterval,
			Measure: disk.Measure(disklimit.DefaultInterval)})

		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		if n := walks.Load(); n != 21 {
			t.Errorf("%d walks in 10 minutes, want 21 (one per 30 s period)", n)
		}
		select {
		case e := <-exceeded:
			t.Fatalf("the limit fired under the reservation: %+v", e)
		default:
		}

		// At 10:10 the sandbox outgrows the reservation; the limit's next
		// check, at 11:00, sees it through the sampler's walk at 10:30.
		time.Sleep(9 * time.Second)
		writeSized(t, filepath.Join(sandbox, "big"), 5000)
		grew := time.Now()
		e := <-exceeded
		if after := time.Since(grew); after != 50*time.Second {
			t.Errorf("the limit fired %v after the sandbox grew, want 50s (the next check)", after)
		}
		if want := usage.FileBytes(sandbox); e.Used != want || e.Reserved != reserved {
			t.Errorf("Exceeded %+v, want used %d of %d", e, want, reserved)
		}
		if n := walks.Load(); n != 23 {
			t.Errorf("%d walks by 11:00, want 23", n)
		}
		cancel()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
