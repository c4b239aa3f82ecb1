package observer

import (
	"testing"
	"time"
)

// BenchmarkScan1000 is the index over 1,000 tasks: a first scan (every
// checkpoint read and parsed) and a rescan (one stat per run directory,
// nothing changed), medians of several.
func BenchmarkScan1000(b *testing.B) {
	root := b.TempDir()
	manyTasks(b, root, 1000)
	var first, again []time.Duration
	for b.Loop() {
		for range 5 {
			x := NewIndex(root, 0, nil)
			t0 := time.Now()
			if n := len(x.Tasks()); n != 1000 {
				b.Fatalf("%d tasks", n)
			}
			first = append(first, time.Since(t0))
			t1 := time.Now()
			x.Tasks()
			again = append(again, time.Since(t1))
		}
	}
	b.ReportMetric(percentile(first, 50), "first-scan-ms")
	b.ReportMetric(percentile(again, 50), "rescan-ms")
}
