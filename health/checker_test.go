package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serve starts a local server and returns its port.
func serve(t *testing.T, h http.Handler) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func respond(code int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	})
}

func TestHTTPChecker(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.Handler
		expected string
		code     int
		wantErr  string // "" for healthy
	}{
		{"ok", respond(200, "ok"), "ok", 0, ""},
		{"trimmed and case-insensitive", respond(200, "  OK\n"), "ok", 0, ""},
		{"wrong body", respond(200, "sick"), "ok", 0, `expected "ok", got "sick"`},
		{"error status has no body", respond(503, "ok"), "ok", 0, `got ""`},
		{"any body when none expected", respond(200, "whatever"), "", 0, ""},
		{"expected code", respond(204, ""), "", 204, ""},
		{"error code matches expected code", respond(500, ""), "", 500, ""},
		{"wrong code", respond(200, "ok"), "ok", 204, "expected 204, got 200"},
		{"long body is shortened", respond(200, strings.Repeat("x", 500)), "ok", 0, "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &HTTPChecker{Host: "127.0.0.1", Port: serve(t, tc.handler), Endpoint: "/health",
				ExpectedResponse: tc.expected, ExpectedResponseCode: tc.code, Timeout: 5 * time.Second}
			err := c.Check(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want healthy, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
			}
			if len(err.Error()) > 300 {
				t.Errorf("reason is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestHTTPCheckerUnreachable(t *testing.T) {
	c := &HTTPChecker{Host: "127.0.0.1", Port: closedPort(t), Endpoint: "/health", ExpectedResponse: "ok", Timeout: 5 * time.Second}
	if err := c.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "failed to signal") {
		t.Errorf("got %v, want a failure to reach the endpoint", err)
	}
}

func TestHTTPCheckerTimeout(t *testing.T) {
	release := make(chan struct{})
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	c := &HTTPChecker{Host: "127.0.0.1", Port: port, Endpoint: "/health", ExpectedResponse: "ok", Timeout: 100 * time.Millisecond}
	start := time.Now()
	err := c.Check(context.Background())
	if err == nil {
		t.Fatal("a check that never answers passed")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v with a 100ms timeout", d)
	}
}
