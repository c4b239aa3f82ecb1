package disklimit

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestMessageIsThermos(t *testing.T) {
	got := Exceeded{Reserved: 1048576, Used: 2097152}.Message()
	want := "Disk limit exceeded.  Reserved 1048576 bytes vs used 2097152 bytes."
	if got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}

func TestUsageCountsApparentSizes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 1000)
	write(".logs/web/0/stdout", 234)
	// A sparse file counts with its apparent size, as du in Python does.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A symlinked directory is not followed.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "big"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	linkSize := int64(len(other))
	if got, want := Usage(dir), int64(1000+234+1<<20)+linkSize; got != want {
		t.Errorf("Usage = %d, want %d", got, want)
	}
	if got := Usage(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("Usage of a missing directory = %d, want 0", got)
	}
}

func TestWatch(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reserved int64
		samples  []int64 // successive measurements; the last one repeats
		want     *Exceeded
	}{
		{name: "under the reservation", reserved: 100, samples: []int64{10, 50, 100}},
		{name: "exceeded at the first sample", reserved: 100, samples: []int64{101}, want: &Exceeded{Reserved: 100, Used: 101}},
		{name: "exceeded later", reserved: 100, samples: []int64{10, 60, 100, 150}, want: &Exceeded{Reserved: 100, Used: 150}},
		{name: "nothing reserved", reserved: 0, samples: []int64{1 << 40}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var calls atomic.Int64
			measure := func(context.Context, string) int64 {
				i := int(calls.Add(1)) - 1
				return tt.samples[min(i, len(tt.samples)-1)]
			}
			ch := Watch(ctx, Config{Dir: "x", Reserved: tt.reserved, Interval: time.Millisecond, Measure: measure})
			if tt.want != nil {
				select {
				case got, ok := <-ch:
					if !ok || got != *tt.want {
						t.Fatalf("got %+v (open %v), want %+v", got, ok, *tt.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no Exceeded after 10s")
				}
				if _, ok := <-ch; ok {
					t.Error("channel not closed after the Exceeded")
				}
				return
			}
			if tt.reserved > 0 {
				// Let it sample past the last value, then stop it.
				deadline := time.Now().Add(10 * time.Second)
				for calls.Load() < int64(len(tt.samples)+2) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if calls.Load() < int64(len(tt.samples)+2) {
					t.Fatalf("only %d samples in 10s", calls.Load())
				}
				cancel()
			}
			select {
			case got, ok := <-ch:
				if ok {
					t.Fatalf("got %+v, want none", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("channel not closed after cancel")
			}
			if tt.reserved <= 0 && calls.Load() != 0 {
				t.Errorf("measured %d times with nothing reserved", calls.Load())
			}
		})
	}
}
