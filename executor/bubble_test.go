package executor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"go.uber.org/zap/zaptest"
)

// A test agent the executor reaches over in-memory connections (net.Pipe)
// instead of loopback TCP, so that both run in a synctest bubble: the
// executor's waits (recovery timeout, resubscription, acknowledgements,
// teardown) then pass on a fake clock, in no time and at their real
// lengths. (A bubble cannot hold real network I/O; the tests of the
// transports themselves stay on real sockets.)

// pipeListener is a net.Listener whose connections are net.Pipe ends.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener; once it is closed, the agent's port
// refuses connections.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errors.Join(syscall.ECONNREFUSED, ctx.Err())}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "agent.invalid:5051" }

// bubbleAgent is the test agent served over a pipeListener.
type bubbleAgent struct {
	*agent
	l   *pipeListener
	srv *http.Server
}

// newBubbleAgent starts the agent; call it inside the bubble.
func newBubbleAgent(t *testing.T, autoAck bool) *bubbleAgent {
	a := &bubbleAgent{agent: &agent{t: t, autoAck: autoAck}, l: newPipeListener()}
	a.srv = &http.Server{Handler: http.HandlerFunc(a.serve)}
	go a.srv.Serve(a.l)
	t.Cleanup(func() { a.srv.Close() })
	return a
}

// goAway makes the agent unreachable for good: streams end, connections
// are refused.
func (a *bubbleAgent) goAway() {
	a.l.Close()
	a.srv.Close()
	a.disconnect()
}

// newExecutor is New whose calls reach the bubble agent over the pipe
// (newSender's codec, endpoint and headers, another dialer).
func (a *bubbleAgent) newExecutor(t *testing.T, cfg Config, l Launcher) *Executor {
	cfg.AgentEndpoint = pipeAddr{}.String()
	ex := New(cfg, l, zaptest.NewLogger(t))
	ex.sender = senderVia(cfg, "http://"+cfg.AgentEndpoint+cfg.ExecutorPath(), httpcli.Transport(func(tr *http.Transport) {
		tr.DialContext = a.l.dial
		tr.Proxy = nil
	}))
	return ex
}

// bubbleConfig is testConfig for a bubble agent.
func bubbleConfig() Config {
	return Config{FrameworkID: "fw", ExecutorID: "ex", Directory: "/tmp", Sandbox: "/tmp",
		ShutdownGracePeriod: 2 * time.Second, RecoveryTimeout: time.Minute, SubscriptionBackoffMax: 50 * time.Millisecond,
		AckTimeout: DefaultAckTimeout}
}
