// Package benchtab is the measuring harness of `make bench`: repeated
// samples after a warm-up, their p50 and p99, each figure beside the floor
// it cannot beat measured in the same run (fork+exec of /bin/true, one
// netlink address dump, one ZooKeeper create round trip, the resident set
// of an idle Go program), and the ratio between the two. One cold sample
// says little on a shared machine; a ratio to a floor taken at the same
// moment says how much of a figure is ours and how much the machine's.
//
// Benchmarks report the figures with testing.B.ReportMetric and append a
// row to the table file named by $DEWAR_BENCH_TABLE (markdown, one line per
// row, so that packages benchmarked one after another share the file);
// `make bench` prints it.
package benchtab

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Samples are repeated measurements of one figure.
type Samples []time.Duration

// Time runs f warm times without keeping the result, then n times, and
// returns the n durations f reported. f measures itself, so that set-up
// around the measured step stays out of the figure.
func Time(tb testing.TB, warm, n int, f func() (time.Duration, error)) Samples {
	tb.Helper()
	out := make(Samples, 0, n)
	for i := 0; i < warm+n; i++ {
		d, err := f()
		if err != nil {
			tb.Fatalf("sample %d: %v", i, err)
		}
		if i >= warm {
			out = append(out, d)
		}
	}
	return out
}

// Pair is Time for a figure and its floor, one sample of each in turn, so
// that both see the same moments of a shared machine.
func Pair(tb testing.TB, warm, n int, f, floor func() (time.Duration, error)) (Samples, Samples) {
	tb.Helper()
	var fs, floors Samples
	for i := 0; i < warm+n; i++ {
		d, err := f()
		if err != nil {
			tb.Fatalf("sample %d: %v", i, err)
		}
		e, err := floor()
		if err != nil {
			tb.Fatalf("floor sample %d: %v", i, err)
		}
		if i >= warm {
			fs, floors = append(fs, d), append(floors, e)
		}
	}
	return fs, floors
}

// Q is the nearest-rank q-quantile (0 < q ≤ 1).
func (s Samples) Q(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// P50 and P99 are the median and the 99th percentile.
func (s Samples) P50() time.Duration { return s.Q(0.5) }
func (s Samples) P99() time.Duration { return s.Q(0.99) }

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Report puts p50 and p99 of s (in ms) on b under name, and the same of
// floor with the ratio of the medians; and appends the table row.
func Report(b *testing.B, figure, name string, s Samples, floorName string, floor Samples) {
	b.Helper()
	b.ReportMetric(Ms(s.P50()), "ms-"+name+"-p50")
	b.ReportMetric(Ms(s.P99()), "ms-"+name+"-p99")
	row := Row{Figure: figure, N: len(s), P50: fmtMs(s.P50()), P99: fmtMs(s.P99())}
	if floor != nil {
		b.ReportMetric(Ms(floor.P50()), "ms-floor-"+name+"-p50")
		ratio := float64(s.P50()) / float64(max(floor.P50(), 1))
		b.ReportMetric(ratio, "x-floor-"+name)
		row.Floor = floorName
		row.FloorP50, row.FloorP99 = fmtMs(floor.P50()), fmtMs(floor.P99())
		row.Ratio = fmt.Sprintf("%.1f×", ratio)
	}
	Add(b, row)
}

func fmtMs(d time.Duration) string {
	ms := Ms(d)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.0f µs", ms*1000)
	}
}

// Row is one line of the table. Figures other than durations (memory, CPU
// share) fill the columns with their own units.
type Row struct {
	Figure             string
	N                  int // samples
	P50, P99           string
	Floor              string
	FloorP50, FloorP99 string
	Ratio              string // figure p50 / floor p50
}

// Header is the table's head, as `make bench` prints it.
const Header = "| figure | samples | p50 | p99 | floor (same run) | floor p50 | floor p99 | ratio (p50) |\n|---|---|---|---|---|---|---|---|\n"

// Add logs row and appends it to $DEWAR_BENCH_TABLE when that is set.
func Add(tb testing.TB, row Row) {
	tb.Helper()
	dash := func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	}
	line := fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s |\n", row.Figure, row.N, dash(row.P50), dash(row.P99),
		dash(row.Floor), dash(row.FloorP50), dash(row.FloorP99), dash(row.Ratio))
	tb.Log(line)
	path := os.Getenv("DEWAR_BENCH_TABLE")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Errorf("bench table: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		tb.Errorf("bench table: %v", err)
	}
}

// ForkExec is the floor of anything that starts a process: fork+exec+wait
// of /bin/true.
func ForkExec() (time.Duration, error) {
	start := time.Now()
	err := exec.Command("/bin/true").Run()
	return time.Since(start), err
}
