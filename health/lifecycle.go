package health

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// DefaultSignalTimeout bounds each lifecycle request, as HttpSignaler's
// TIMEOUT_SECS.
const DefaultSignalTimeout = time.Second

// ShutdownConfig is HttpLifecycleConfig with durations.
type ShutdownConfig struct {
	GracefulShutdownEndpoint string        // "/quitquitquit"
	GracefulShutdownWait     time.Duration // after the graceful endpoint
	ShutdownEndpoint         string        // "/abortabortabort"
	ShutdownWait             time.Duration // after the shutdown endpoint
}

// Lifecycle asks a task to stop over HTTP before it is signalled
// (HttpLifecycleManager in aurora/executor/http_lifecycle.py).
type Lifecycle struct {
	Host    string        // default DefaultHost
	Timeout time.Duration // per request; default DefaultSignalTimeout
	Client  *http.Client  // default: a client without keep-alives
	Log     *zap.Logger
}

// Shutdown POSTs the graceful endpoint and waits GracefulShutdownWait, then
// POSTs the shutdown endpoint and waits ShutdownWait. An endpoint that does
// not answer is logged and its wait skipped, as Thermos does; any HTTP
// answer, even an error status, counts as heard. Every wait ends early when
// ctx is done: cancel ctx when the task's processes have exited, so that a
// task that quits at once is not waited for (and is not sent the second
// endpoint).
func (l *Lifecycle) Shutdown(ctx context.Context, port int, cfg ShutdownConfig) {
	log := l.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.Int("port", port))
	steps := []struct {
		endpoint string
		wait     time.Duration
	}{
		{cfg.GracefulShutdownEndpoint, cfg.GracefulShutdownWait},
		{cfg.ShutdownEndpoint, cfg.ShutdownWait},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		if s.endpoint == "" {
			continue
		}
		if err := l.post(ctx, port, s.endpoint); err != nil {
			log.Warn("lifecycle endpoint did not answer; not waiting for it", zap.String("endpoint", s.endpoint), zap.Error(err))
			continue
		}
		log.Info("lifecycle endpoint called; waiting for the task to exit", zap.String("endpoint", s.endpoint), zap.Duration("wait", s.wait))
		t := time.NewTimer(s.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (l *Lifecycle) post(ctx context.Context, port int, endpoint string) error {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultSignalTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &HTTPChecker{Host: l.Host, Port: port, Client: l.Client}
	_, _, err := query(ctx, l.Client, http.MethodPost, c.url(endpoint))
	return err
}
