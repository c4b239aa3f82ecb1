package usage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dewarhq/dewar/usage"
)

// BenchmarkSampleContainer is BenchmarkSample for an executor in a
// container cgroup of its own (every Mesos container): only the container's
// processes are read (here the benchmark's own process and init, in a
// cgroup of two), whatever else runs on the machine.
func BenchmarkSampleContainer(b *testing.B) {
	mount := b.TempDir()
	dir := filepath.Join(mount, "freezer", "mesos", "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprintf("1\n%d\n", os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	self := filepath.Join(b.TempDir(), "cgroup")
	if err := os.WriteFile(self, []byte("6:freezer:/mesos/c1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := usage.NewSamplerWithCgroups("/proc", self, mount)
	if err != nil {
		b.Fatal(err)
	}
	sids := map[int]bool{os.Getpid(): true, 1: true}
	for b.Loop() {
		if _, err := s.Sessions(context.Background(), sids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2, "procs")
}
