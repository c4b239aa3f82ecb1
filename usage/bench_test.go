package usage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dewarhq/dewar/usage"
)

// BenchmarkSample is one sample of one task's process trees by an executor
// in the root cgroups: a pass over every process on the machine (its cost
// grows with their number, reported as procs).
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
		if _, err := s.Sessions(context.Background(), sids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(procs), "procs")
}

// BenchmarkDiskUse walks a sandbox of 1,000 files in 10 directories.
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
		if d := usage.DiskUse(context.Background(), dir, 0); d.Entries != 1011 {
			b.Fatalf("entries = %d", d.Entries)
		}
	}
}
