package health

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// healthyAfter serves /health: "ok" once delay has passed since the first
// request, "starting" with 503 before.
func healthyAfter(delay time.Duration, checks *atomic.Int32) http.Handler {
	var first atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if time.Duration(now-first.Load()) < delay {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
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
	case <-time.After(20 * time.Second):
		t.Fatal("no health event within 20s")
		return Event{}, false
	}
}

func httpChecker(port int) *HTTPChecker {
	return &HTTPChecker{Host: "127.0.0.1", Port: port, Endpoint: "/health", ExpectedResponse: "ok", Timeout: 5 * time.Second}
}

func TestMonitorBecomesHealthyAfterDelay(t *testing.T) {
	var checks atomic.Int32
	port := serve(t, healthyAfter(300*time.Millisecond, &checks))
	m := startMonitor(t, httpChecker(port), MonitorConfig{
		InitialInterval: 100 * time.Millisecond, Interval: 25 * time.Millisecond,
		MaxConsecutiveFailures: 1000, MinConsecutiveSuccesses: 2,
	})
	if m.State() != Starting && m.State() != Healthy {
		t.Fatalf("state %v at start", m.State())
	}
	start := time.Now()
	e, ok := next(t, m)
	if !ok || e.State != Healthy {
		t.Fatalf("got %+v (open %v), want Healthy", e, ok)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("healthy after %v, before the service was", d)
	}
	if n := checks.Load(); n < 3 {
		t.Errorf("only %d checks were made", n)
	}
	if m.State() != Healthy {
		t.Errorf("State() = %v", m.State())
	}
}

func TestMonitorFailsAServiceThatNeverTurnsHealthy(t *testing.T) {
	port := serve(t, respond(200, "not yet"))
	m := startMonitor(t, httpChecker(port), MonitorConfig{
		InitialInterval: 50 * time.Millisecond, Interval: 10 * time.Millisecond,
		MaxConsecutiveFailures: 3, MinConsecutiveSuccesses: 1,
	})
	e, ok := next(t, m)
	if !ok || e.State != Unhealthy {
		t.Fatalf("got %+v, want Unhealthy", e)
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
}

func TestMonitorFailsAfterHealthy(t *testing.T) {
	var sick atomic.Bool
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.Write([]byte("sick"))
			return
		}
		w.Write([]byte("ok"))
	}))
	m := startMonitor(t, httpChecker(port), MonitorConfig{
		InitialInterval: 10 * time.Millisecond, Interval: 10 * time.Millisecond,
		MaxConsecutiveFailures: 2, MinConsecutiveSuccesses: 1,
	})
	if e, _ := next(t, m); e.State != Healthy {
		t.Fatalf("got %+v, want Healthy", e)
	}
	sick.Store(true)
	if e, _ := next(t, m); e.State != Unhealthy || !strings.Contains(e.Reason, "sick") {
		t.Fatalf("got %+v, want Unhealthy because of the body", e)
	}
}

func TestMonitorSnoozeFile(t *testing.T) {
	sandbox := t.TempDir()
	snooze := filepath.Join(sandbox, SnoozeFile)
	if err := os.WriteFile(snooze, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int32
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	m := startMonitor(t, httpChecker(port), MonitorConfig{
		InitialInterval: 10 * time.Millisecond, Interval: 10 * time.Millisecond,
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
