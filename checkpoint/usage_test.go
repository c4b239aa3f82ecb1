package checkpoint_test

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/checkpoint"
)

// Resource samples survive a write and a read, and a version 1 document
// written before they existed still reads, without them.
func TestUsageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-u"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w.Update(func(c *checkpoint.Task) { c.RunStarted("web", 0, 42, at) })
	u := checkpoint.Usage{CPUSeconds: 1.25, RSSBytes: 5 << 20, Processes: 2, Time: at.Add(time.Minute)}
	w.UpdateIf(func(c *checkpoint.Task) bool {
		return c.SetUsage("web", 0, u) && c.SetDisk(checkpoint.Disk{Bytes: 8192, Entries: 3, Time: at})
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 {
		t.Errorf("version = %d; new optional fields must not bump it", got.Version)
	}
	if r := got.Process("web").Last(); r.Usage == nil || *r.Usage != u {
		t.Errorf("usage = %+v, want %+v", r.Usage, u)
	}
	if d := got.Disk; d == nil || d.Bytes != 8192 || d.Entries != 3 || d.Truncated {
		t.Errorf("disk = %+v", d)
	}

	old, err := checkpoint.Parse([]byte(`{"version":1,"task_id":"x","processes":[{"name":"p","runs":[{"run":0,"pid":7,"state":"RUNNING"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if old.Disk != nil || old.Process("p").Last().Usage != nil {
		t.Errorf("a document without samples read as %+v", old)
	}
}

// An equal sample is no change: nothing is written, so an idle task costs
// no writes however often it is sampled.
func TestUpdateIfWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	w, err := checkpoint.NewWriter(dir, checkpoint.Task{TaskID: "t-i"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Update(func(c *checkpoint.Task) { c.RunStarted("p", 0, 9, time.Now()) })
	u := checkpoint.Usage{CPUSeconds: 1, RSSBytes: 4096, Processes: 1, Time: time.Now()}
	w.UpdateIf(func(c *checkpoint.Task) bool { return c.SetUsage("p", 0, u) })
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(checkpoint.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	changed := true
	u.Time = u.Time.Add(time.Minute)
	w.UpdateIf(func(c *checkpoint.Task) bool { changed = c.SetUsage("p", 0, u); return changed })
	if changed {
		t.Error("SetUsage of an equal sample reported a change")
	}
	w.UpdateIf(func(c *checkpoint.Task) bool { return c.SetUsage("nosuch", 0, u) }) // no such run: no change
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(checkpoint.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Error("the checkpoint was rewritten though nothing changed")
	}
}

// Close stops what Go started before its last write, and waits for it.
func TestGoStoppedByClose(t *testing.T) {
	w, err := checkpoint.NewWriter(t.TempDir(), checkpoint.Task{TaskID: "t-g"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	returned := false
	w.Go(context.Background(), func(ctx context.Context) {
		<-ctx.Done()
		returned = true
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !returned {
		t.Error("Close returned before the goroutine started with Go")
	}
}
