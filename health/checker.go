// Package health runs Aurora's health checks and its HTTP graceful-kill
// protocol with Thermos' rules (aurora/executor/common/health_checker.py,
// common/health_check/http_signaler.py and shell.py, executor/http_lifecycle.py).
//
// A Checker makes one check. A Monitor runs a Checker every interval and
// decides, as Thermos does, when the task has become healthy (TASK_STARTING →
// TASK_RUNNING) and when it has failed. Lifecycle POSTs /quitquitquit and
// /abortabortabort before a task is signalled.
package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Checker makes one health check; a nil error means healthy. The error text
// becomes the failure reason, so it says what was expected and what came.
type Checker interface {
	Check(ctx context.Context) error
}

// DefaultHost is where the checks and the lifecycle endpoints are sent. The
// executor shares the task's network namespace, so loopback reaches the task
// whatever CNI networks it joined.
const DefaultHost = "localhost"

// maxReason bounds how much of a response body goes into a failure reason,
// as HttpSignaler shortens what it logs.
const maxReason = 64

// HTTPChecker GETs an endpoint on the task's health port.
type HTTPChecker struct {
	Host                 string        // default DefaultHost
	Port                 int           // the task's "health" port
	Endpoint             string        // e.g. "/health"
	ExpectedResponse     string        // compared with the trimmed body, case-insensitively; "" accepts any body
	ExpectedResponseCode int           // 0 accepts any code
	Timeout              time.Duration // per check; 0 leaves it to ctx
	Client               *http.Client  // default: a client of its own without keep-alives
}

var _ Checker = (*HTTPChecker)(nil)

func (c *HTTPChecker) url(endpoint string) string {
	host := c.Host
	if host == "" {
		host = DefaultHost
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Port)) + endpoint
}

// Check makes one GET. As HttpSignaler (which uses urllib), a response
// outside 2xx counts as an empty body with that code, so with the default
// expected response "ok" a 503 fails on the body.
func (c *HTTPChecker) Check(ctx context.Context) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	url := c.url(c.Endpoint)
	body, code, err := query(ctx, c.Client, http.MethodGet, url)
	if err != nil {
		return err
	}
	body = strings.ToLower(strings.TrimSpace(body))
	if c.ExpectedResponse != "" && body != strings.ToLower(c.ExpectedResponse) {
		return fmt.Errorf("response of %s differs from expected response (expected %q, got %q)",
			url, c.ExpectedResponse, shorten(body))
	}
	if c.ExpectedResponseCode != 0 && code != c.ExpectedResponseCode {
		return fmt.Errorf("response code of %s differs from expected response (expected %d, got %d)",
			url, c.ExpectedResponseCode, code)
	}
	return nil
}

// defaultClient does not keep connections: a check every few seconds gains
// nothing from them, and an idle connection would outlive a killed task.
var defaultClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// query sends one request and returns the body (empty outside 2xx) and the
// status code. An error means the endpoint did not answer.
func query(ctx context.Context, client *http.Client, method, url string) (string, int, error) {
	if client == nil {
		client = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", 0, fmt.Errorf("failed to signal %s: %w", url, err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("failed to signal %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", resp.StatusCode, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("failed to signal %s: reading the response: %w", url, err)
	}
	return string(b), resp.StatusCode, nil
}

func shorten(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason-3] + "..."
}
