// Package fakeagent is the agent half of dewar's single-node stand-in for
// Mesos: it serves the v1 executor HTTP API (POST /api/v1/executor), launches
// executors as child processes with the environment a Mesos agent gives them,
// checkpoints every status update to disk before acknowledging it, and can be
// stopped and started again without killing its executors, which then
// re-subscribe, as with a real agent and framework checkpointing.
//
// The master half (the scheduler API) lives in devcluster/fakeagent/master and drives an
// *Agent through Launch, Kill, ShutdownFramework and OnUpdate.
package fakeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Config configures an Agent. WorkDir is the only required field.
type Config struct {
	// WorkDir holds checkpoints (meta/), sandboxes (frameworks/) and the
	// executor API's unix socket. Restarting with the same WorkDir recovers.
	WorkDir string
	// Listen is the TCP address of the HTTP server (default 127.0.0.1:5051).
	// Port 0 picks a free port; after a restart the port recorded in WorkDir
	// is reused, because running executors know only that endpoint.
	Listen string
	// Hostname goes into AgentInfo (default: os.Hostname).
	Hostname string
	// Resources in Mesos' flag syntax, e.g. "cpus:4;mem:4096;ports:[31000-32000]".
	Resources string
	// ExecutorPath is the executor a command task (TaskInfo without
	// executor) runs under, as the Mesos command executor.
	ExecutorPath string
	// HeartbeatInterval between HEARTBEAT events (default 30 minutes, as
	// Mesos: src/slave/constants.hpp, DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL).
	HeartbeatInterval time.Duration
	// ShutdownGracePeriod is MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD (default 5s)
	// and how long after SHUTDOWN the agent waits before killing.
	ShutdownGracePeriod time.Duration
	// RecoveryTimeout is MESOS_RECOVERY_TIMEOUT (default 15m).
	RecoveryTimeout time.Duration
	// ExecutorReregistrationTimeout is how long after a restart recovered
	// executors have to re-subscribe before they are destroyed (default 2s,
	// at most 15s, as Mesos' --executor_reregistration_timeout); it is also
	// MESOS_SUBSCRIPTION_BACKOFF_MAX.
	ExecutorReregistrationTimeout time.Duration
	// RecoveryDelay stands in for the containerizer's recovery after a
	// restart: for this long every executor call gets 503 (default 0).
	RecoveryDelay time.Duration
	// NoDomainSocket turns the executor domain socket off. With it on (the
	// default here; Mesos' --http_executor_domain_sockets) every executor
	// gets MESOS_DOMAIN_SOCKET, which a CNI container needs when it cannot
	// route to the agent's address.
	NoDomainSocket bool
	// AuthenticateExecutors (Mesos' --authenticate_http_executors) gives
	// every executor a MESOS_EXECUTOR_AUTHENTICATION_TOKEN and requires it
	// on every call. Off, executors get no token and calls need none.
	AuthenticateExecutors bool
	// ExecutorEnvironment is Mesos' --executor_environment_variables: set
	// in every executor's environment before the MESOS_* variables (which
	// win). Nothing else of the agent's own environment is passed on.
	ExecutorEnvironment map[string]string
	// Isolator attaches containers to CNI networks; nil means host
	// networking only (a task asking for networks fails).
	Isolator Isolator
	// DefaultContainerInfo is Mesos' --default_container_info: the
	// container of every executor launched without one (src/slave/slave.cpp,
	// Slave::_run: "Add the default container info to the executor info",
	// applied only when !executorInfo.has_container()). With network_infos
	// in it, every task of a stock Aurora (which sends no ContainerInfo for
	// a job without an image) joins those CNI networks.
	DefaultContainerInfo *mesos.ContainerInfo
	// ImageDir holds the root filesystems of the images that executors'
	// image volumes name (Mesos' volume/image isolator with a local image
	// store): image N is the directory ImageDir/N. "" provisions none, and
	// an executor asking for an image volume fails to launch.
	ImageDir string
	// Out receives one line per status update (FormatUpdate); nil: discard.
	Out io.Writer
	// Log is required in spirit; nil means zap.NewNop.
	Log *zap.Logger
}

// Agent is a running fake Mesos agent. Create it with New, start serving with
// Start, stop with Close (executors keep running).
type Agent struct {
	cfg   Config
	log   *zap.Logger
	info  mesos.AgentInfo
	store *store
	mux   *http.ServeMux
	srv   *http.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	tcpLn, unixLn net.Listener // unixLn is nil with NoDomainSocket
	sockSrv       *http.Server // serves unixLn
	// ctlLn is the control socket: everything the TCP address serves, for
	// tools and tests that cannot reach that address (an agent in a
	// network namespace). Not part of Mesos; executors are never told it.
	ctlLn net.Listener

	notify *notifier
	outMu  sync.Mutex // serializes lines on Config.Out

	// handlers counts running HTTP handlers, so that Close can wait for
	// them: after Close, nothing writes to the work dir.
	handlers sync.WaitGroup

	// mu guards the following fields and every framework/executor/task.
	mu         sync.Mutex
	frameworks map[string]*framework
	closed     bool
	phase      phase
	fatal      []error // conditions on which a real agent aborts
	fatalCh    chan error
	recovered  chan struct{} // closed when phase becomes phaseRunning
}

// SocketName is the executor API's unix socket inside WorkDir
// (MESOS_DOMAIN_SOCKET). It serves only the executor API.
const SocketName = "agent.sock"

// ControlSocketName is the control socket inside WorkDir: /state, the
// launch endpoint and the scheduler API, as on the TCP address.
const ControlSocketName = "control.sock"

// PIDID is the id of the agent's libprocess process, the part of
// MESOS_SLAVE_PID before the '@' (src/slave/main.cpp, main:
// process::ID::generate("slave") for the one Slave process).
const PIDID = "slave(1)"

// Defaults and limits of the Mesos agent (src/slave/constants.hpp).
const (
	DefaultHeartbeatInterval             = 30 * time.Minute // DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL
	DefaultExecutorReregistrationTimeout = 2 * time.Second  // EXECUTOR_REREGISTRATION_TIMEOUT
	MaxExecutorReregistrationTimeout     = 15 * time.Second // MAX_EXECUTOR_REREGISTRATION_TIMEOUT
)

// New recovers the agent's state from cfg.WorkDir (creating it if needed)
// and binds its listeners. Executors found alive are watched again and will
// re-subscribe; executors that died while the agent was away have their
// remaining tasks failed.
func New(cfg Config) (*Agent, error) {
	if cfg.WorkDir == "" {
		return nil, errors.New("fakeagent: no work dir configured; pass --work-dir")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:5051"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ShutdownGracePeriod <= 0 {
		cfg.ShutdownGracePeriod = 5 * time.Second
	}
	if cfg.RecoveryTimeout <= 0 {
		cfg.RecoveryTimeout = 15 * time.Minute
	}
	if cfg.ExecutorReregistrationTimeout <= 0 {
		cfg.ExecutorReregistrationTimeout = DefaultExecutorReregistrationTimeout
	}
	// src/slave/flags.cpp: the flag's validator refuses more than
	// MAX_EXECUTOR_REREGISTRATION_TIMEOUT (src/slave/constants.hpp).
	if cfg.ExecutorReregistrationTimeout > MaxExecutorReregistrationTimeout {
		return nil, fmt.Errorf("fakeagent: executor re-registration timeout %v is above the maximum %v; pass a smaller --executor-reregistration-timeout", cfg.ExecutorReregistrationTimeout, MaxExecutorReregistrationTimeout)
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("fakeagent: hostname: %w; pass --hostname", err)
		}
		cfg.Hostname = h
	}
	if cfg.Resources == "" {
		cfg.Resources = "cpus:4;mem:4096;ports:[31000-32000]"
	}
	res, err := ParseResources(cfg.Resources)
	if err != nil {
		return nil, err
	}
	wd, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("fakeagent: work dir %q: %w", cfg.WorkDir, err)
	}
	cfg.WorkDir = wd
	st, meta, err := openStore(wd)
	if err != nil {
		return nil, err
	}
	if meta.Listen != "" && portOf(cfg.Listen) == "0" {
		// Executors from the previous run only know the old endpoint.
		cfg.Listen = meta.Listen
	}
	tcpLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("fakeagent: listen on %s: %w; pick another --listen address", cfg.Listen, err)
	}
	var unixLn net.Listener
	if !cfg.NoDomainSocket {
		sock := filepath.Join(wd, SocketName)
		_ = os.Remove(sock) // a stale socket from a previous run blocks Listen
		unixLn, err = net.Listen("unix", sock)
		if err != nil {
			tcpLn.Close()
			return nil, fmt.Errorf("fakeagent: listen on unix socket %s: %w", sock, err)
		}
	}
	ctl := filepath.Join(wd, ControlSocketName)
	_ = os.Remove(ctl)
	ctlLn, err := net.Listen("unix", ctl)
	if err != nil {
		tcpLn.Close()
		if unixLn != nil {
			unixLn.Close()
		}
		return nil, fmt.Errorf("fakeagent: listen on unix socket %s: %w", ctl, err)
	}
	closeAll := func() {
		tcpLn.Close()
		ctlLn.Close()
		if unixLn != nil {
			unixLn.Close()
		}
	}
	meta.Listen = tcpLn.Addr().String()
	if err := st.saveMeta(meta); err != nil {
		closeAll()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		cfg:        cfg,
		log:        cfg.Log.With(zap.String("agent_id", meta.AgentID)),
		store:      st,
		mux:        http.NewServeMux(),
		ctx:        ctx,
		cancel:     cancel,
		tcpLn:      tcpLn,
		unixLn:     unixLn,
		ctlLn:      ctlLn,
		frameworks: map[string]*framework{},
		notify:     newNotifier(),
		phase:      phaseRecovering,
		fatalCh:    make(chan error, 1),
		recovered:  make(chan struct{}),
	}
	port := int32(tcpLn.Addr().(*net.TCPAddr).Port)
	a.info = mesos.AgentInfo{
		ID:        &mesos.AgentID{Value: meta.AgentID},
		Hostname:  cfg.Hostname,
		Port:      &port,
		Resources: res,
	}
	// libprocess routes both /<pid id>/<route> and, for the agent (the
	// delegate process), /<route> over TCP.
	a.mux.HandleFunc("/api/v1/executor", a.serveExecutorAPI)
	a.mux.HandleFunc("/"+PIDID+"/api/v1/executor", a.serveExecutorAPI)
	a.mux.HandleFunc("GET /state", a.serveState)
	a.mux.HandleFunc("POST "+LaunchPath, a.serveLaunch)
	base := func(net.Listener) context.Context { return ctx }
	a.srv = &http.Server{Handler: a.track(a.mux), ReadHeaderTimeout: 10 * time.Second, BaseContext: base}
	a.sockSrv = &http.Server{Handler: a.track(http.HandlerFunc(a.serveSocket)), ReadHeaderTimeout: 10 * time.Second, BaseContext: base}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.notify.run(ctx.Done())
	}()
	if err := a.recover(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// track counts h's running requests in a.handlers; after Close it refuses.
func (a *Agent) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			http.Error(w, "agent is shutting down", http.StatusServiceUnavailable)
			return
		}
		a.handlers.Add(1)
		a.mu.Unlock()
		defer a.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// Start serves HTTP on the TCP address and the unix socket until Close.
func (a *Agent) Start() {
	serve := func(srv *http.Server, ln net.Listener) {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			}
		}()
	}
	serve(a.srv, a.tcpLn)
	serve(a.srv, a.ctlLn)
	if a.unixLn != nil {
		serve(a.sockSrv, a.unixLn)
	}
	a.startRecoveryClock()
	a.log.Info("agent serving", zap.Stringer("addr", a.tcpLn.Addr()), zap.String("socket", a.SocketPath()))
}

// Close stops serving and waits for the agent's goroutines. Executors keep
// running: a new Agent on the same WorkDir picks them up again.
func (a *Agent) Close() error {
	var err error
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.cancel()
		// Subscribe streams are long-lived: Close (not Shutdown) cuts them.
		err = errors.Join(a.srv.Close(), a.sockSrv.Close())
		a.tcpLn.Close()
		a.ctlLn.Close()
		if a.unixLn != nil {
			a.unixLn.Close()
		}
		a.handlers.Wait()
		a.wg.Wait()
	})
	return err
}

// Addr is the bound TCP address (host:port), also MESOS_AGENT_ENDPOINT.
func (a *Agent) Addr() string { return a.tcpLn.Addr().String() }

// URL is the agent's base URL, e.g. http://127.0.0.1:5051.
func (a *Agent) URL() string { return "http://" + a.Addr() }

// SocketPath is the executor API's unix socket (MESOS_DOMAIN_SOCKET); ""
// with NoDomainSocket.
func (a *Agent) SocketPath() string {
	if a.unixLn == nil {
		return ""
	}
	return filepath.Join(a.cfg.WorkDir, SocketName)
}

// ControlSocketPath is the control socket (see ControlSocketName).
func (a *Agent) ControlSocketPath() string { return filepath.Join(a.cfg.WorkDir, ControlSocketName) }

// PID is the agent's libprocess PID, MESOS_SLAVE_PID: slave(1)@host:port.
func (a *Agent) PID() string { return PIDID + "@" + a.Addr() }

// Info describes the agent: ID, hostname, port and total resources.
func (a *Agent) Info() mesos.AgentInfo { return a.info }

// Handle registers another handler on the agent's HTTP server (the master
// mounts /api/v1/scheduler here). Patterns follow http.ServeMux.
func (a *Agent) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// OnUpdate registers fn to be called with every status update after it has
// been checkpointed, with the agent's network view merged into
// container_status. Calls come from one goroutine, in checkpoint order,
// without the agent's locks held: fn may call Launch or Kill.
func (a *Agent) OnUpdate(fn func(frameworkID string, st mesos.TaskStatus)) {
	a.notify.add(fn)
}

// watch registers fn and returns a function removing it.
func (a *Agent) watch(fn func(string, mesos.TaskStatus)) (cancel func()) {
	return a.notify.add(fn)
}

func portOf(hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	return p
}
