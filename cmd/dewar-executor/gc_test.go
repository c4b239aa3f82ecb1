package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the executor runs at defaultGCPercent, and an operator's GOGC
// (in the ExecutorInfo's environment) wins.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	set := func(string) (string, bool) { return "200", true }
	if tuneGC(set) {
		t.Error("tuneGC changed the GC percent although GOGC is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d after tuneGC with GOGC set, want it left at 100", got)
	}

	unset := func(string) (string, bool) { return "", false }
	if !tuneGC(unset) {
		t.Error("tuneGC left the GC percent alone without GOGC")
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GC percent %d, want %d", got, defaultGCPercent)
	}
}
