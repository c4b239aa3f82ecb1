package usage_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/benchtab"
	"github.com/dewarhq/dewar/usage"
)

// BenchmarkSample is one sample of one task's process trees by an executor
// in the root cgroups: a pass over every process on the machine (its cost
// grows with their number, reported as procs), many times after a warm-up,
// beside listing /proc in the same run.
func BenchmarkSample(b *testing.B) {
	s, err := usage.NewSamplerWithCgroups("/proc", "/proc/self/cgroup", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	procs := 0
	for _, e := range ents {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			procs++
		}
	}
	sids := map[int]bool{os.Getpid(): true, 1: true}
	for b.Loop() {
		sample, floor := benchtab.Pair(b, 5, 100, func() (time.Duration, error) {
			start := time.Now()
			_, err := s.Sessions(context.Background(), sids)
			return time.Since(start), err
		}, func() (time.Duration, error) {
			start := time.Now()
			_, err := os.ReadDir("/proc")
			return time.Since(start), err
		})
		benchtab.Report(b, fmt.Sprintf("usage: one sample of a task's process trees (%d processes on the machine)", procs), "sample", sample,
			"listing /proc", floor)
	}
	b.ReportMetric(float64(procs), "procs")
}

// BenchmarkDiskUse walks a sandbox of 1,000 files in 10 directories, many
// times after a warm-up, beside a walk that reads only names.
func BenchmarkDiskUse(b *testing.B) {
	dir := b.TempDir()
	for i := range 10 {
		sub := filepath.Join(dir, fmt.Sprint("d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := range 100 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprint("f", j)), []byte("hello"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		walk, floor := benchtab.Pair(b, 5, 100, func() (time.Duration, error) {
			start := time.Now()
			d := usage.DiskUse(context.Background(), dir, 0)
			if d.Entries != 1011 {
				return 0, fmt.Errorf("entries = %d", d.Entries)
			}
			return time.Since(start), nil
		}, func() (time.Duration, error) {
			start := time.Now()
			err := filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { return nil })
			return time.Since(start), err
		})
		benchtab.Report(b, "usage: disk use of a sandbox of 1,000 files in 10 directories", "disk", walk,
			"filepath.WalkDir of the same tree (names only)", floor)
	}
}
