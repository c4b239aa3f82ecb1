// Package executor speaks the Mesos v1 executor HTTP API for dewar: it
// subscribes to the agent, takes LAUNCH/KILL/SHUTDOWN, reports status
// updates and keeps every update until the agent acknowledges it.
package executor

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is what the Mesos agent tells an executor through its environment.
type Config struct {
	FrameworkID   string // MESOS_FRAMEWORK_ID
	ExecutorID    string // MESOS_EXECUTOR_ID
	AgentEndpoint string // MESOS_AGENT_ENDPOINT, host:port
	Directory     string // MESOS_DIRECTORY, the sandbox path on the agent
	Sandbox       string // MESOS_SANDBOX, the sandbox path as the executor sees it
	Checkpoint    bool   // MESOS_CHECKPOINT: the framework checkpoints; recovery allowed

	ShutdownGracePeriod    time.Duration // MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD
	RecoveryTimeout        time.Duration // MESOS_RECOVERY_TIMEOUT (with checkpointing)
	SubscriptionBackoffMax time.Duration // MESOS_SUBSCRIPTION_BACKOFF_MAX (with checkpointing)

	// AuthToken is MESOS_EXECUTOR_AUTHENTICATION_TOKEN, sent as a bearer
	// token. It is a secret: String() redacts it and nothing logs it.
	AuthToken string
	// DomainSocket is MESOS_DOMAIN_SOCKET: when set, HTTP goes over this unix
	// socket because a container on a CNI network often cannot route to the
	// agent's IP. It is the socket's path on the host (the agent's
	// --domain_socket_location), not a path inside the sandbox.
	DomainSocket string
	// AckTimeout is how long the executor waits, once every task has
	// ended, for the agent to acknowledge the remaining updates before it
	// exits anyway (not from the environment: dewar-executor's
	// --status-ack-timeout).
	AckTimeout time.Duration
	// AgentPID is MESOS_SLAVE_PID, e.g. "slave(1)@10.0.0.5:5051". Over the
	// domain socket the agent serves only paths prefixed with its id.
	AgentPID string
}

// Defaults the Mesos agent uses when it does not set the variable.
const (
	DefaultShutdownGracePeriod    = 5 * time.Second
	DefaultRecoveryTimeout        = 15 * time.Minute
	DefaultSubscriptionBackoffMax = 2 * time.Second
	// DefaultAckTimeout is how long Mesos' own executors wait for the
	// acknowledgement of their terminal update (src/launcher/executor.cpp
	// and default_executor.cpp: "Terminating after 60s").
	DefaultAckTimeout = time.Minute
)

// String shows the configuration without the token.
func (c Config) String() string {
	tok := "<none>"
	if c.AuthToken != "" {
		tok = "<redacted>"
	}
	return fmt.Sprintf("framework=%s executor=%s agent=%s socket=%q sandbox=%s checkpoint=%t grace=%s recovery=%s backoff=%s token=%s",
		c.FrameworkID, c.ExecutorID, c.AgentEndpoint, c.DomainSocket, c.Sandbox, c.Checkpoint,
		c.ShutdownGracePeriod, c.RecoveryTimeout, c.SubscriptionBackoffMax, tok)
}

// ConfigFromEnv reads the MESOS_* variables with getenv (os.Getenv in
// production). Every missing required variable is named in the error.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		FrameworkID:            getenv("MESOS_FRAMEWORK_ID"),
		ExecutorID:             getenv("MESOS_EXECUTOR_ID"),
		AgentEndpoint:          getenv("MESOS_AGENT_ENDPOINT"),
		Directory:              getenv("MESOS_DIRECTORY"),
		Sandbox:                getenv("MESOS_SANDBOX"),
		AuthToken:              getenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
		DomainSocket:           getenv("MESOS_DOMAIN_SOCKET"),
		AgentPID:               getenv("MESOS_SLAVE_PID"),
		ShutdownGracePeriod:    DefaultShutdownGracePeriod,
		RecoveryTimeout:        DefaultRecoveryTimeout,
		SubscriptionBackoffMax: DefaultSubscriptionBackoffMax,
		AckTimeout:             DefaultAckTimeout,
	}
	var errs []error
	var missing []string
	for _, v := range []struct{ name, val string }{
		{"MESOS_FRAMEWORK_ID", c.FrameworkID},
		{"MESOS_EXECUTOR_ID", c.ExecutorID},
		{"MESOS_DIRECTORY", c.Directory},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if c.AgentEndpoint == "" && c.DomainSocket == "" {
		missing = append(missing, "MESOS_AGENT_ENDPOINT")
	}
	if c.DomainSocket != "" && c.AgentPID == "" {
		missing = append(missing, "MESOS_SLAVE_PID")
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing environment variable(s) %s: dewar-executor must be launched by a Mesos agent (or dewar-agent), which sets them", strings.Join(missing, ", ")))
	}
	if c.AgentPID != "" {
		if _, err := agentPIDID(c.AgentPID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AgentEndpoint != "" {
		ep, err := normalizeEndpoint(c.AgentEndpoint)
		if err != nil {
			errs = append(errs, err)
		}
		c.AgentEndpoint = ep
	}
	if c.Sandbox == "" {
		// Mesos sets MESOS_SANDBOX only when the sandbox is mapped into a
		// container image; otherwise it equals MESOS_DIRECTORY.
		c.Sandbox = c.Directory
	}
	if s := getenv("MESOS_CHECKPOINT"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("MESOS_CHECKPOINT=%q: want 0 or 1", s))
		}
		c.Checkpoint = b
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", &c.ShutdownGracePeriod},
		{"MESOS_RECOVERY_TIMEOUT", &c.RecoveryTimeout},
		{"MESOS_SUBSCRIPTION_BACKOFF_MAX", &c.SubscriptionBackoffMax},
	} {
		s := getenv(d.name)
		if s == "" {
			continue
		}
		v, err := ParseMesosDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
			continue
		}
		*d.dst = v
	}
	return c, errors.Join(errs...)
}

// ExecutorPath is the URL path of the executor API. Over the domain socket
// the agent admits only "/<pid id>/api/v1/executor" and "/<pid id>/api/v1"
// and answers 403 to anything else (Mesos src/slave/slave.cpp,
// Slave::initialize, the executor socket's http::Server); libmesos builds
// the same path from MESOS_SLAVE_PID (src/executor/executor.cpp,
// MesosProcess constructor). Over TCP the agent also routes the plain
// "/api/v1/executor", which works whatever the PID.
func (c Config) ExecutorPath() string {
	if id, err := agentPIDID(c.AgentPID); err == nil && c.DomainSocket != "" {
		return "/" + id + "/api/v1/executor"
	}
	return "/api/v1/executor"
}

// agentPIDID returns the id of a libprocess UPID "id@host:port"
// ("slave(1)@10.0.0.5:5051" → "slave(1)").
func agentPIDID(pid string) (string, error) {
	id, addr, ok := strings.Cut(pid, "@")
	if !ok || id == "" || addr == "" || strings.ContainsAny(id, "/ ") {
		return "", fmt.Errorf("MESOS_SLAVE_PID=%q: want the agent's libprocess PID, id@host:port (e.g. slave(1)@10.0.0.5:5051)", pid)
	}
	return id, nil
}

// normalizeEndpoint turns MESOS_AGENT_ENDPOINT into host:port for a URL.
// The agent prints an IPv6 address without brackets ("::1:5051", Mesos
// src/slave/slave.cpp executorEnvironment: stringify(slavePid.address)),
// so the port is whatever follows the last colon.
func normalizeEndpoint(ep string) (string, error) {
	if strings.HasPrefix(ep, "[") {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return "", fmt.Errorf("MESOS_AGENT_ENDPOINT=%q: %w", ep, err)
		}
		return ep, nil
	}
	i := strings.LastIndexByte(ep, ':')
	if i <= 0 || i == len(ep)-1 {
		return "", fmt.Errorf("MESOS_AGENT_ENDPOINT=%q: want host:port", ep)
	}
	host, port := ep[:i], ep[i+1:]
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("MESOS_AGENT_ENDPOINT=%q: port %q is not a number", ep, port)
	}
	return net.JoinHostPort(host, port), nil
}

// mesosUnits are the suffixes of Mesos' stout Duration ("5secs", "1.5mins").
var mesosUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"ns", time.Nanosecond},
	{"us", time.Microsecond},
	{"ms", time.Millisecond},
	{"secs", time.Second},
	{"mins", time.Minute},
	{"hrs", time.Hour},
	{"days", 24 * time.Hour},
	{"weeks", 7 * 24 * time.Hour},
}

// ParseMesosDuration parses a duration as Mesos prints it: a decimal number
// followed by ns, us, ms, secs, mins, hrs, days or weeks.
func ParseMesosDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	for _, u := range mesosUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 {
			continue // "1.5mins" also ends in "ns"
		}
		return time.Duration(f * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("invalid duration %q: want a number followed by ns, us, ms, secs, mins, hrs, days or weeks (e.g. \"5secs\")", s)
}
