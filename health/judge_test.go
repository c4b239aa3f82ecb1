package health

import (
	"errors"
	"testing"
	"time"
)

// TestJudgeFollowsThermos feeds results to the rules alone: "o" is a
// success, "x" a failure. want is the outcome after each result: "." still
// starting, "H" healthy (reported once), "h" staying healthy, "F" failed.
func TestJudgeFollowsThermos(t *testing.T) {
	tests := []struct {
		name                   string
		initial, interval      time.Duration
		maxFailures, successes int
		results                string
		want                   string
	}{
		// Defaults: 15 s grace / 10 s interval → 2 forgiven attempts; 3 to become healthy.
		{"healthy at once", 15 * time.Second, 10 * time.Second, 0, 1, "o", "H"},
		{"grace failures ignored", 15 * time.Second, 10 * time.Second, 0, 1, "xxo", "..H"},
		{"failure after grace fails", 15 * time.Second, 10 * time.Second, 0, 1, "xxx", "..F"},
		{"failure after healthy fails", 15 * time.Second, 10 * time.Second, 0, 1, "oox", "HhF"},
		{"failure in grace after healthy is ignored", 15 * time.Second, 10 * time.Second, 0, 1, "oxo", "Hhh"},
		{"tolerated failures", 10 * time.Second, 10 * time.Second, 2, 1, "xxxo", "...H"},
		{"one failure too many", 10 * time.Second, 10 * time.Second, 2, 1, "xxxx", "...F"},
		{"failures reset by success", 10 * time.Second, 10 * time.Second, 1, 1, "oxoxox", "Hhhhhh"},
		// 1 grace + 1 failure + 3 successes = 5 attempts; a failure at attempt 3
		// resets the streak and leaves 2 attempts for 3 successes.
		{"fails fast when a broken streak cannot recover", 10 * time.Second, 10 * time.Second, 1, 3, "ooxooo", "..F"},
		{"needs consecutive successes", 10 * time.Second, 10 * time.Second, 1, 3, "oxooo", "....H"},
		// 1 grace + 0 failures + 2 successes = 3 attempts; after x at attempt 2,
		// 1 attempt is left for 2 successes: too few.
		{"fails fast when successes cannot come", 10 * time.Second, 10 * time.Second, 0, 2, "xx", ".F"},
		{"two successes in time", 10 * time.Second, 10 * time.Second, 0, 2, "xoo", "..H"},
		// min_consecutive_successes 0, which the Aurora client accepts:
		// healthy on the first success; 1 grace + 0 + 0 = 1 attempt.
		{"no successes required", 10 * time.Second, 10 * time.Second, 0, 0, "o", "H"},
		// 1 grace + 1 failure + 0 = 2 attempts; the third runs because the
		// deadline is checked before an attempt (attempts > max), as Thermos.
		{"no successes required, after the grace", 10 * time.Second, 10 * time.Second, 1, 0, "xxo", "..H"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newJudge(MonitorConfig{InitialInterval: tc.initial, Interval: tc.interval,
				MaxConsecutiveFailures: tc.maxFailures, MinConsecutiveSuccesses: tc.successes})
			got := ""
			for _, r := range tc.results {
				if j.expired() {
					got += "E"
					break
				}
				var err error
				if r == 'x' {
					err = errors.New("boom")
				}
				switch {
				case !j.record(err):
					got += "F"
				case j.becameHealthy:
					got += "H"
				case j.running:
					got += "h"
				default:
					got += "."
				}
				if got[len(got)-1] == 'F' {
					break
				}
			}
			if got != tc.want {
				t.Errorf("results %s: got %s, want %s", tc.results, got, tc.want)
			}
		})
	}
}

func TestJudgeDeadline(t *testing.T) {
	// 1 grace + 2 failures + 2 successes = 5 attempts to become healthy;
	// Thermos checks the deadline before it counts, so a 6th attempt still
	// runs. Alternating results never give two successes in a row.
	j := newJudge(MonitorConfig{InitialInterval: time.Second, Interval: time.Second,
		MaxConsecutiveFailures: 2, MinConsecutiveSuccesses: 2})
	for i, r := range "xoxoxo" {
		if j.expired() {
			t.Fatalf("expired before attempt %d", i+1)
		}
		var err error
		if r == 'x' {
			err = errors.New("boom")
		}
		if !j.record(err) {
			t.Fatalf("failed at attempt %d", i+1)
		}
	}
	if !j.expired() {
		t.Error("not expired after 6 attempts without becoming healthy")
	}
}

func TestJudgeWithoutGrace(t *testing.T) {
	j := newJudge(MonitorConfig{Interval: time.Second, MinConsecutiveSuccesses: 1})
	if j.record(errors.New("boom")) {
		t.Error("with initial_interval 0 the first failure must count")
	}
}
