package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

type recorder struct {
	mu    sync.Mutex
	calls []string
	at    []time.Time
	hook  func(path string)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.calls = append(r.calls, req.Method+" "+req.URL.Path)
	r.at = append(r.at, time.Now())
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(req.URL.Path)
	}
	if req.URL.Path == "/abortabortabort" {
		http.Error(w, "abort", http.StatusInternalServerError) // still counts as heard
		return
	}
	w.Write([]byte("ok"))
}

func (r *recorder) get() ([]string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...), append([]time.Time(nil), r.at...)
}

var defaultShutdown = ShutdownConfig{
	GracefulShutdownEndpoint: "/quitquitquit",
	GracefulShutdownWait:     200 * time.Millisecond,
	ShutdownEndpoint:         "/abortabortabort",
	ShutdownWait:             200 * time.Millisecond,
}

// roundTripper answers requests with handler in-process, without a
// network: it lets a Lifecycle run in a synctest bubble.
type roundTripper struct{ handler http.Handler }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	rt.handler.ServeHTTP(w, req)
	return w.Result(), nil
}

// TestLifecycleCallsEndpointsInOrder: /quitquitquit, the graceful wait
// (Thermos' default 5 s), /abortabortabort, the shutdown wait (5 s), on
// synctest's fake clock.
func TestLifecycleCallsEndpointsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		l := &Lifecycle{Host: "127.0.0.1", Log: zaptest.NewLogger(t), Client: &http.Client{Transport: roundTripper{rec}}}
		cfg := defaultShutdown
		cfg.GracefulShutdownWait, cfg.ShutdownWait = 5*time.Second, 5*time.Second
		start := time.Now()
		l.Shutdown(context.Background(), 8080, cfg)
		elapsed := time.Since(start)
		calls, at := rec.get()
		if want := []string{"POST /quitquitquit", "POST /abortabortabort"}; len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		if gap := at[1].Sub(at[0]); gap != 5*time.Second {
			t.Errorf("abort came %v after quit, want the graceful wait, 5s", gap)
		}
		if elapsed != 10*time.Second {
			t.Errorf("Shutdown returned after %v, want both waits, 10s", elapsed)
		}
	})
}

// TestLifecycleOverHTTP: the same against a real server on loopback.
func TestLifecycleOverHTTP(t *testing.T) {
	rec := &recorder{}
	port := serve(t, rec)
	l := &Lifecycle{Host: "127.0.0.1", Log: zaptest.NewLogger(t)}
	cfg := defaultShutdown
	cfg.GracefulShutdownWait, cfg.ShutdownWait = 0, 0
	l.Shutdown(context.Background(), port, cfg)
	if calls, _ := rec.get(); len(calls) != 2 || calls[0] != "POST /quitquitquit" || calls[1] != "POST /abortabortabort" {
		t.Fatalf("calls %v, want both endpoints, graceful first", calls)
	}
}

func TestLifecycleStopsWaitingWhenTheTaskExits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	// The task exits as soon as it is asked to quit: the caller cancels ctx.
	rec.hook = func(path string) {
		if path == "/quitquitquit" {
			cancel()
		}
	}
	port := serve(t, rec)
	l := &Lifecycle{Host: "127.0.0.1", Log: zaptest.NewLogger(t)}
	cfg := defaultShutdown
	cfg.GracefulShutdownWait, cfg.ShutdownWait = time.Hour, time.Hour
	done := make(chan struct{})
	go func() {
		l.Shutdown(ctx, port, cfg)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown kept waiting after ctx was cancelled")
	}
	if calls, _ := rec.get(); len(calls) != 1 || calls[0] != "POST /quitquitquit" {
		t.Errorf("calls %v, want only the graceful endpoint", calls)
	}
}

func TestLifecycleSkipsWaitsWhenNothingListens(t *testing.T) {
	l := &Lifecycle{Host: "127.0.0.1", Log: zaptest.NewLogger(t)}
	cfg := defaultShutdown
	cfg.GracefulShutdownWait, cfg.ShutdownWait = time.Hour, time.Hour
	done := make(chan struct{})
	go func() {
		l.Shutdown(context.Background(), closedPort(t), cfg)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown waited although no endpoint answered")
	}
}

func TestLifecycleRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	rec := &recorder{hook: func(path string) {
		if path == "/quitquitquit" {
			<-release
		}
	}}
	port := serve(t, rec)
	// Registered after serve, so it runs before the server's Close waits
	// for this handler.
	t.Cleanup(func() { close(release) })
	l := &Lifecycle{Host: "127.0.0.1", Timeout: 100 * time.Millisecond, Log: zaptest.NewLogger(t)}
	cfg := defaultShutdown
	cfg.GracefulShutdownWait = time.Hour
	start := time.Now()
	l.Shutdown(context.Background(), port, cfg)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Shutdown took %v: a hung endpoint must not hold it for its wait", d)
	}
	if calls, _ := rec.get(); len(calls) != 2 {
		t.Errorf("calls %v, want both endpoints tried", calls)
	}
}
