package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

// checkFunc is a Checker made of a function: the monitor's timing rules
// are tested with it on synctest's fake clock (a real HTTP check cannot
// run in a bubble; checker_test.go tests those).
type checkFunc func(ctx context.Context) error

func (f checkFunc) Check(ctx context.Context) error { return f(ctx) }

// healthyAfter fails until delay has passed since the first check, then
// succeeds; it counts the checks.
func healthyAfter(delay time.Duration, checks *atomic.Int32) Checker {
	var first time.Time
	return checkFunc(func(context.Context) error {
		checks.Add(1)
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < delay {
			return errors.New("503 starting")
		}
		return nil
	})
}

func startMonitor(t *testing.T, c Checker, cfg MonitorConfig) *Monitor {
	t.Helper()
	m, err := StartMonitor(context.Background(), c, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func next(t *testing.T, m *Monitor) (Event, bool) {
	t.Helper()
	select {
	case e, ok := <-m.Events():
		return e, ok
	case <-time.After(time.Minute): // a fake minute in a synctest bubble
		t.Fatal("no health event within a minute")
		return Event{}, false
	}
}

func httpChecker(port int) *HTTPChecker {
	return &HTTPChecker{Host: "127.0.0.1", Port: port, Endpoint: "/health", ExpectedResponse: "ok", Timeout: 5 * time.Second}
}

// TestMonitorBecomesHealthyAfterDelay: a service healthy 30 s after its
// first check, checked every second with min_consecutive_successes 2, is
// Healthy at its second success in a row: 31 s.
func TestMonitorBecomesHealthyAfterDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var checks atomic.Int32
		start := time.Now()
		m := startMonitor(t, healthyAfter(30*time.Second, &checks), MonitorConfig{
			InitialInterval: 10 * time.Second, Interval: time.Second,
			MaxConsecutiveFailures: 1000, MinConsecutiveSuccesses: 2,
		})
		if m.State() != Starting {
			t.Fatalf("state %v at start", m.State())
		}
		e, ok := next(t, m)
		if !ok || e.State != Healthy {
			t.Fatalf("got %+v (open %v), want Healthy", e, ok)
		}
		if d := time.Since(start); d != 31*time.Second {
			t.Errorf("healthy after %v, want 31s", d)
		}
		if n := checks.Load(); n != 32 {
			t.Errorf("%d checks were made, want 32 (one a second from 0s to 31s)", n)
		}
		if m.State() != Healthy {
			t.Errorf("State() = %v", m.State())
		}
	})
}

// TestMonitorFailsAServiceThatNeverTurnsHealthy: with a 5 s grace period
// (5 forgiven attempts at 1 s), max_consecutive_failures 3 and
// min_consecutive_successes 1, the fourth failure after the grace, at 8 s,
// makes the task Unhealthy with the check's error as the reason.
func TestMonitorFailsAServiceThatNeverTurnsHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		m := startMonitor(t, checkFunc(func(context.Context) error { return errors.New(`got "not yet"`) }), MonitorConfig{
			InitialInterval: 5 * time.Second, Interval: time.Second,
			MaxConsecutiveFailures: 3, MinConsecutiveSuccesses: 1,
		})
		e, ok := next(t, m)
		if !ok || e.State != Unhealthy {
			t.Fatalf("got %+v, want Unhealthy", e)
		}
		if d := time.Since(start); d != 8*time.Second {
			t.Errorf("unhealthy after %v, want 8s", d)
		}
		if !strings.Contains(e.Reason, `got "not yet"`) {
			t.Errorf("reason %q", e.Reason)
		}
		if _, ok := next(t, m); ok {
			t.Error("events not closed after Unhealthy")
		}
		if m.State() != Unhealthy {
			t.Errorf("State() = %v", m.State())
		}
	})
}

// TestMonitorFailsAfterHealthy: a healthy task that starts failing is
// Unhealthy after max_consecutive_failures + 1 failures in a row.
func TestMonitorFailsAfterHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sick atomic.Bool
		m := startMonitor(t, checkFunc(func(context.Context) error {
			if sick.Load() {
				return errors.New(`got "sick"`)
			}
			return nil
		}), MonitorConfig{
			InitialInterval: time.Second, Interval: time.Second,
			MaxConsecutiveFailures: 2, MinConsecutiveSuccesses: 1,
		})
		if e, _ := next(t, m); e.State != Healthy {
			t.Fatalf("got %+v, want Healthy", e)
		}
		sick.Store(true)
		start := time.Now()
		if e, _ := next(t, m); e.State != Unhealthy || !strings.Contains(e.Reason, "sick") {
			t.Fatalf("got %+v, want Unhealthy because of the body", e)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("unhealthy %v after the first failing check was due, want 3s (three failures)", d)
		}
	})
}

// TestMonitorSnoozeFile: while the snooze file exists, checks count as
// successes without reaching the service; once it is gone they run again.
func TestMonitorSnoozeFile(t *testing.T) {
	sandbox := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		snooze := filepath.Join(sandbox, SnoozeFile)
		if err := os.WriteFile(snooze, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var checks atomic.Int32
		m := startMonitor(t, checkFunc(func(context.Context) error {
			checks.Add(1)
			return errors.New("500 down")
		}), MonitorConfig{
			InitialInterval: time.Second, Interval: time.Second,
			MaxConsecutiveFailures: 0, MinConsecutiveSuccesses: 3, SnoozePath: snooze,
		})
		if e, _ := next(t, m); e.State != Healthy {
			t.Fatalf("got %+v, want Healthy while snoozed", e)
		}
		if n := checks.Load(); n != 0 {
			t.Errorf("%d checks reached the service while snoozed", n)
		}
		if err := os.Remove(snooze); err != nil {
			t.Fatal(err)
		}
		if e, _ := next(t, m); e.State != Unhealthy {
			t.Fatalf("got %+v, want Unhealthy once the snooze file is gone", e)
		}
		if checks.Load() == 0 {
			t.Error("no check reached the service after the snooze ended")
		}
	})
}

func TestMonitorShellChecker(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "ready")
	m := startMonitor(t, &ShellChecker{Command: "test -f " + flag, Timeout: 5 * time.Second}, MonitorConfig{
		InitialInterval: 20 * time.Millisecond, Interval: 20 * time.Millisecond,
		MaxConsecutiveFailures: 100000, MinConsecutiveSuccesses: 1,
	})
	time.AfterFunc(200*time.Millisecond, func() { os.WriteFile(flag, nil, 0o644) })
	if e, _ := next(t, m); e.State != Healthy {
		t.Fatalf("got %+v, want Healthy", e)
	}
}

// TestMonitorCloseAndCancel: a real HTTP check makes the task healthy;
// cancelling the context closes the events; Close is idempotent.
func TestMonitorCloseAndCancel(t *testing.T) {
	port := serve(t, respond(200, "ok"))
	ctx, cancel := context.WithCancel(context.Background())
	m, err := StartMonitor(ctx, httpChecker(port), MonitorConfig{Interval: time.Hour}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := next(t, m); e.State != Healthy {
		t.Fatalf("got %+v", e)
	}
	cancel()
	if _, ok := next(t, m); ok {
		t.Error("events still open after ctx was cancelled")
	}
	m.Close()
	m.Close()
}

func TestStartMonitorRejectsBadConfig(t *testing.T) {
	if _, err := StartMonitor(context.Background(), httpChecker(1), MonitorConfig{}, nil); err == nil {
		t.Error("zero interval accepted")
	}
	if _, err := StartMonitor(context.Background(), nil, MonitorConfig{Interval: time.Second}, nil); err == nil {
		t.Error("nil checker accepted")
	}
}
