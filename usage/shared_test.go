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
		disk := usage.NewSharedDisk(run, max, sub)
		d, _ := disk.Sample(context.Background(), 0, true)
		if want := usage.DiskUse(context.Background(), run, max); d.Disk != want {
			t.Errorf("bound %d: run dir %+v, want DiskUse's %+v", max, d.Disk, want)
		}
		if want := usage.FileBytes(sub); d.SubBytes != want || want == 0 {
			t.Errorf("bound %d: sandbox %d bytes, want FileBytes' %d", max, d.SubBytes, want)
		}
		// The sampler's own walk, when the limit does not need the sandbox's
		// total, stops at the bound, as DiskUse does.
		d, _ = disk.Sample(context.Background(), 0, false)
		if want := usage.DiskUse(context.Background(), run, max); d.Disk != want || d.HasSub == want.Truncated {
			t.Errorf("bound %d, sandbox not needed: %+v, want DiskUse's %+v and a sandbox total only if the walk was whole", max, d, want)
		}
	}
	outside := t.TempDir()
	writeSized(t, filepath.Join(outside, "x"), 777)
	if d, _ := usage.NewSharedDisk(run, 0, outside).Sample(context.Background(), 0, true); d.SubBytes != 777 || !d.HasSub {
		t.Errorf("a subdirectory outside the run dir: %d bytes, want 777", d.SubBytes)
	}
}

// record has Record sample disk every 30 s into a new checkpoint in run
// until ctx ends.
func record(ctx context.Context, t *testing.T, run, taskID string, disk *usage.SharedDisk) *checkpoint.Writer {
	t.Helper()
	w, err := checkpoint.NewWriter(run, checkpoint.Task{TaskID: taskID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Go(ctx, func(ctx context.Context) {
		usage.Record(ctx, w, usage.Options{Interval: 30 * time.Second, Disk: disk})
	})
	return w
}

// TestOneWalkPerPeriod: the checkpoint's sampler (every 30 s) and the disk
// limit (every 60 s) share the run directory's walks: in 10 minutes the
// sandbox is walked 21 times (at 0, 30, ..., 600 s), not 32, and the limit
// still fails the task, on the first check after the sandbox outgrew it,
// with the bytes Thermos' du counts. A sandbox above the sampler's entry
// bound is walked past the bound (in full, for the limit) only once a
// minute, at the limit's checks, as it was before the walks were shared:
// the sampler's walks in between stop at the bound.
func TestOneWalkPerPeriod(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxEntries int
		pastBound  [2]int64 // walks past the bound in 10 minutes, by 11:00
	}{
		{"under the bound", 0, [2]int64{0, 0}},
		{"above the bound", 5, [2]int64{11, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { oneWalkPerPeriod(t, tc.maxEntries, tc.pastBound) })
		})
	}
}

func oneWalkPerPeriod(t *testing.T, maxEntries int, pastBound [2]int64) {
	run := t.TempDir()
	writeTree(t, run, 10)
	sandbox := filepath.Join(run, "sandbox")
	disk := usage.NewSharedDisk(run, maxEntries, sandbox)
	walks, full := usage.CountWalks(disk)
	ctx, cancel := context.WithCancel(context.Background())
	w := record(ctx, t, run, "t-walk", disk)
	reserved := usage.FileBytes(sandbox) + 4096
	exceeded := disklimit.Watch(ctx, disklimit.Config{Dir: sandbox, Reserved: reserved, Interval: disklimit.DefaultInterval,
		Measure: disk.Measure(disklimit.DefaultInterval)})

	time.Sleep(10*time.Minute + time.Second)
	synctest.Wait()
	if n := walks.Load(); n != 21 {
		t.Errorf("%d walks in 10 minutes, want 21 (one per 30 s period)", n)
	}
	if n := full.Load(); n != pastBound[0] {
		t.Errorf("%d walks past the entry bound in 10 minutes, want %d", n, pastBound[0])
	}
	select {
	case e := <-exceeded:
		t.Fatalf("the limit fired under the reservation: %+v", e)
	default:
	}

	// At 10:10 the sandbox outgrows the reservation; the limit's next
	// check, at 11:00, sees it through the walk at 11:00 (the sampler's
	// walk at 10:30 serves it under the bound).
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
	synctest.Wait() // the sampler's tick at 11:00 too
	if n := walks.Load(); n != 23 {
		t.Errorf("%d walks by 11:00, want 23", n)
	}
	if n := full.Load(); n != pastBound[1] {
		t.Errorf("%d walks past the entry bound by 11:00, want %d", n, pastBound[1])
	}
	cancel()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// holdAWalk has another reader (the disk limit) begin a walk of disk that
// lasts until release, which waits for that reader.
func holdAWalk(disk *usage.SharedDisk) (release func()) {
	hold, started, done := make(chan struct{}), make(chan struct{}, 1), make(chan struct{})
	usage.HoldWalks(disk, hold, started)
	go func() { defer close(done); disk.Sample(context.Background(), 0, true) }()
	<-started
	return func() { close(hold); <-done }
}

// TestSampleWaitEnds: a reader whose ctx ends while another's walk is under
// way gets the last walk's sample, not an empty one it did not measure,
// and nothing (false) when there has been no walk yet.
func TestSampleWaitEnds(t *testing.T) {
	run := t.TempDir()
	writeTree(t, run, 3)
	for _, walkedBefore := range []bool{true, false} {
		disk := usage.NewSharedDisk(run, 0, "")
		var first usage.DiskSample
		if walkedBefore {
			first, _ = disk.Sample(context.Background(), 0, false)
			if first.Bytes == 0 {
				t.Fatalf("first sample %+v, want the run dir's bytes", first)
			}
		}
		release := holdAWalk(disk)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		d, ok := disk.Sample(ctx, 0, false)
		cancel()
		release()
		if ok != walkedBefore || d != first {
			t.Errorf("walked before %v: waiting reader's ctx ended: %+v, %v; want %+v, %v", walkedBefore, d, ok, first, walkedBefore)
		}
	}
}

// TestRecordKeepsDiskWhenFinalSampleTimesOut: Record's last disk sample,
// bounded by a short timeout, must not overwrite the checkpoint's disk
// figure with 0 when it timed out waiting for another reader's long walk.
func TestRecordKeepsDiskWhenFinalSampleTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := t.TempDir()
		writeTree(t, run, 3)
		disk := usage.NewSharedDisk(run, 0, "")
		ctx, cancel := context.WithCancel(context.Background())
		w := record(ctx, t, run, "t-final", disk)
		synctest.Wait()
		var before checkpoint.Disk
		w.View(func(t *checkpoint.Task) {
			if t.Disk != nil {
				before = *t.Disk
			}
		})
		if before.Bytes == 0 {
			t.Fatalf("checkpoint disk %+v after the first sample, want the run dir's bytes", before)
		}

		// Another reader's walk (the disk limit's) is under way and outlasts
		// the final sample's timeout.
		release := holdAWalk(disk)
		cancel()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		release()
		var after checkpoint.Disk
		w.View(func(t *checkpoint.Task) {
			if t.Disk != nil {
				after = *t.Disk
			}
		})
		if after.Bytes != before.Bytes || after.Entries != before.Entries {
			t.Errorf("checkpoint disk %+v after the final sample timed out, want the last walk's %+v", after, before)
		}
	})
}
