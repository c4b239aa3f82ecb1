// Package zktest runs a real standalone ZooKeeper (Debian's zookeeper.jar) for
// tests: one server per call to Start, on a free port, with its own data dir,
// killed by PID in t.Cleanup.
//
//	srv := zktest.Start(t)
//	conn, _, err := zk.Connect([]string{srv.Addr()}, 5*time.Second)
//
// Stop and Restart (same port, same data dir, so sessions survive a short
// outage) exercise reconnection; ExpireSession ends a client's session on the
// server, which the client sees as StateExpired when it reconnects.
//
// For a node that lives inside a network namespace, pass Listen (the address
// to bind), CommandPrefix (e.g. "ip", "netns", "exec", name) and, when the test
// process cannot reach that address from its own namespace, Dial:
//
//	srv := zktest.Start(t,
//		zktest.CommandPrefix("ip", "netns", "exec", name),
//		zktest.Dial(func(ctx context.Context, network, addr string) (c net.Conn, err error) {
//			err = netnstest.Run(name, func() error { // the socket stays in the namespace
//				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
//				return err
//			})
//			return c, err
//		}))
//
// Clients of such a server must run (or dial) inside the namespace too.
//
// StartEnsemble runs three servers in one quorum instead (QuorumPeerMain,
// server.N lines, a data dir with myid each); its members can be killed,
// started, frozen (SIGSTOP) and thawed one by one, and Leader finds the one
// srvr calls "leader".
package zktest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TickTime is the server's tick. ZooKeeper checks session deadlines once a
// tick and caps session timeouts at 20 ticks unless told otherwise, so the
// config below sets the bounds explicitly.
const TickTime = 250 * time.Millisecond

// startTimeout bounds how long a JVM may take to answer srvr. It is ready in
// about a second on an idle machine; -race test runs on 2 cores are not idle.
const startTimeout = 60 * time.Second

// DialFunc dials the server's client port (for readiness probes and
// ExpireSession).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Option changes how Start runs the server.
type Option func(*options)

type options struct {
	host   string
	prefix []string
	dial   DialFunc
}

// Listen sets the IP the server binds (default 127.0.0.1). Addr reports it.
func Listen(host string) Option { return func(o *options) { o.host = host } }

// CommandPrefix runs java under a wrapper that execs it, such as
// "ip", "netns", "exec", "dewar-t-3f9a1c". The wrapper must exec (not fork)
// so that the PID Stop kills is the JVM's.
func CommandPrefix(argv ...string) Option {
	return func(o *options) { o.prefix = append([]string(nil), argv...) }
}

// Dial replaces net.Dialer for readiness probes and ExpireSession; use it when
// the server listens inside a namespace the test process is not in.
func Dial(fn DialFunc) Option { return func(o *options) { o.dial = fn } }

// Server is one running standalone ZooKeeper.
type Server struct {
	t    testing.TB
	opts options
	jar  string
	dir  string // holds zoo.cfg, data/ and zk.log
	port int

	// peer is set for a member of an ensemble (StartEnsemble).
	peer *peerConfig

	// mu guards the following fields.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a server and waits until it answers srvr. It skips (or fails
// under DEWAR_REQUIRE_INTEGRATION=1) when java or ZooKeeper is missing.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	jar := testenv.ZooKeeperJar(t)
	s := &Server{t: t, jar: jar, dir: t.TempDir(), opts: options{host: "127.0.0.1"}}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.dial == nil {
		var d net.Dialer
		s.opts.dial = d.DialContext
	}
	t.Cleanup(s.Stop)
	// A free port found by listening can be taken again before the JVM
	// binds it; try a few ports before giving up.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = freePort(s.opts.host); err != nil {
			break
		}
		if err = s.writeConfig(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s
		}
		s.Stop()
	}
	t.Fatalf("zktest: start ZooKeeper: %v\n%s", err, s.logTail())
	return nil
}

// Addr is "host:port" of the client port.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.opts.host, strconv.Itoa(s.port))
}

// Stop kills the server (SIGKILL, as a crash) and waits for it to exit. It is
// idempotent and also runs in t.Cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data dir, waiting until it answers srvr.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The port was bound with SO_REUSEADDR, but be patient with a machine
	// that is slow to release it.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		s.Stop()
		if time.Now().After(deadline) {
			s.t.Fatalf("zktest: restart ZooKeeper on %s: %v\n%s", s.Addr(), err, s.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Server) writeConfig() error {
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`tickTime=%d
dataDir=%s
clientPort=%d
clientPortAddress=%s
minSessionTimeout=%d
maxSessionTimeout=60000
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
preAllocSize=1024
forceSync=no
`, TickTime.Milliseconds(), data, s.port, s.opts.host, 2*TickTime.Milliseconds())
	if s.peer != nil {
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(s.peer.id)+"\n"), 0o644); err != nil {
			return err
		}
		cfg += s.peer.config()
	}
	return os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644)
}

func (s *Server) start() error {
	done, err := s.spawn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return s.waitServing(ctx, done)
}

// spawn runs the JVM and returns a channel closed when it exits.
func (s *Server) spawn() (<-chan struct{}, error) {
	main := "org.apache.zookeeper.server.ZooKeeperServerMain"
	if s.peer != nil {
		main = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	}
	// zookeeper.jar's manifest names the jars it needs (Debian installs
	// them in /usr/share/java); the explicit list is a fallback.
	argv := append([]string(nil), s.opts.prefix...)
	argv = append(argv, "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", s.jar+":/usr/share/java/zookeeper-jute.jar:/usr/share/java/*",
		main, filepath.Join(s.dir, "zoo.cfg"))
	log, err := os.OpenFile(filepath.Join(s.dir, "zk.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return done, nil
}

// waitServing polls srvr until the server serves, its JVM exits (done) or
// ctx ends.
func (s *Server) waitServing(ctx context.Context, done <-chan struct{}) error {
	for {
		if s.serving(ctx) {
			// Another package's server may have taken the port between
			// freePort and our JVM binding it: make sure the one that
			// answers is ours (its conf names our data dir).
			conf, err := s.FourLetterWord(ctx, "conf")
			if err != nil || !bytes.Contains(conf, []byte(s.dir)) {
				return fmt.Errorf("port %d is answered by another ZooKeeper (conf: %q, %v)", s.port, conf, err)
			}
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("java exited before serving on %s", s.Addr())
		case <-ctx.Done():
			return fmt.Errorf("no answer to srvr on %s: %w", s.Addr(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serving asks srvr; the server answers "not currently serving" while it
// loads its database, so look for the mode line.
func (s *Server) serving(ctx context.Context) bool {
	out, err := s.FourLetterWord(ctx, "srvr")
	return err == nil && bytes.Contains(out, []byte("Mode: "))
}

// FourLetterWord sends a four-letter command ("srvr", "cons", "dump", ...)
// and returns the answer.
func (s *Server) FourLetterWord(ctx context.Context, cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := s.opts.dial(ctx, "tcp", s.Addr())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(c)
	return buf.Bytes(), err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "zk.log"))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "zk.log:\n" + strings.Join(lines, "\n")
}

// freePort asks the kernel for a free port on host. Inside a namespace the
// test is not in this is only a guess, which Start retries.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
