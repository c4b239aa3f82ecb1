package executor

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// newSender builds the mesos-go sender for the executor API: protobuf
// codec, TCP or the agent's unix socket, and the bearer token.
func newSender(cfg Config) calls.Sender {
	endpoint := "http://" + cfg.AgentEndpoint + cfg.ExecutorPath()
	var transport httpcli.ConfigOpt
	if cfg.DomainSocket != "" {
		// The host part of the URL is ignored: every connection dials the
		// socket, whose path is the host's (the agent's
		// --domain_socket_location); a CNI container that cannot route to
		// the agent still shares the host's mount namespace here.
		if cfg.AgentEndpoint == "" {
			endpoint = "http://localhost" + cfg.ExecutorPath()
		}
		sock := cfg.DomainSocket
		transport = httpcli.Transport(func(t *http.Transport) {
			d := &net.Dialer{Timeout: 10 * time.Second}
			t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			}
			t.Proxy = nil
		})
	} else {
		transport = httpcli.Transport(func(t *http.Transport) {
			// mesos-go's default dialer binds to 0.0.0.0, which cannot reach
			// an IPv6 agent; and a proxy from the environment would only get
			// in the way of reaching the agent directly.
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
			t.DialContext = d.DialContext
			t.Proxy = nil
		})
	}
	return senderVia(cfg, endpoint, transport)
}

// senderVia is the sender for endpoint over transport's connections.
func senderVia(cfg Config, endpoint string, transport httpcli.ConfigOpt) calls.Sender {
	opts := []httpcli.Opt{
		httpcli.Endpoint(endpoint),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		// guardEvents after transport: it wraps the round tripper transport set.
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second), transport, httpcli.WrapRoundTripper(guardEvents))),
	}
	if cfg.AuthToken != "" {
		opts = append(opts, httpcli.DefaultHeader("Authorization", "Bearer "+cfg.AuthToken))
	}
	cli := httpcli.New(opts...)
	return calls.SenderWith(httpexec.NewSender(cli.Send),
		executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}...)
}
