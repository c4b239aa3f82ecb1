package zktest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
)

// EnsembleSize is the number of servers StartEnsemble runs: the smallest
// ensemble that survives losing one server.
const EnsembleSize = 3

// Quorum timing in ticks (TickTime each). A follower that hears nothing
// from its leader for syncLimit ticks gives up on it and elects anew, so
// these bound how long a frozen or killed leader goes unnoticed; they are
// loose enough that a JVM pausing on a loaded 2-core machine does not
// trigger elections of its own.
const (
	initLimit = 40 // 10 s for a follower to sync with a new leader
	syncLimit = 10 // 2.5 s of silence before a follower drops its leader
)

// peerConfig makes a Server a member of an ensemble: it runs
// QuorumPeerMain, has data/myid and the server.N lines of every member.
type peerConfig struct {
	id      int      // myid, 1-based
	servers []string // "server.N=host:quorumPort:electionPort"
}

func (p *peerConfig) config() string {
	return fmt.Sprintf("initLimit=%d\nsyncLimit=%d\n%s\n", initLimit, syncLimit, strings.Join(p.servers, "\n"))
}

// Ensemble is three ZooKeeper servers in one quorum on loopback, each with
// its own client, quorum and election port and data dir. Servers(i) are
// ordinary Servers: Stop (a crash), Start, Restart, Terminate, Freeze and
// Thaw act on one member.
//
//	ens := zktest.StartEnsemble(t)
//	conn, _, err := zk.Connect(ens.Addrs(), 5*time.Second)
//	leader, err := ens.Leader(ctx)
//	ens.Server(leader).Stop()
type Ensemble struct {
	t       testing.TB
	servers []*Server
}

// StartEnsemble runs EnsembleSize servers and waits until every one of them
// serves (a leader was elected and the others follow it). Every JVM is
// killed by PID in t.Cleanup, also when the test fails.
func StartEnsemble(t testing.TB, opts ...Option) *Ensemble {
	t.Helper()
	jar := testenv.ZooKeeperJar(t)
	o := options{host: "127.0.0.1"}
	for _, fn := range opts {
		fn(&o)
	}
	if o.dial == nil {
		var d net.Dialer
		o.dial = d.DialContext
	}
	e := &Ensemble{t: t}
	for i := 0; i < EnsembleSize; i++ {
		s := &Server{t: t, jar: jar, dir: t.TempDir(), opts: o, peer: &peerConfig{id: i + 1}}
		t.Cleanup(s.Stop)
		e.servers = append(e.servers, s)
	}
	// Ports found free can be taken again before the JVMs bind them; start
	// over on new ports a few times before giving up.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = e.start(); err == nil {
			return e
		}
		for _, s := range e.servers {
			s.Stop()
		}
	}
	var logs []string
	for i, s := range e.servers {
		logs = append(logs, fmt.Sprintf("server %d %s", i, s.logTail()))
	}
	t.Fatalf("zktest: start ZooKeeper ensemble: %v\n%s", err, strings.Join(logs, "\n"))
	return nil
}

func (e *Ensemble) start() error {
	host := e.servers[0].opts.host
	ports, err := freePorts(host, 3*len(e.servers))
	if err != nil {
		return err
	}
	var lines []string
	for i, s := range e.servers {
		s.port = ports[3*i]
		lines = append(lines, fmt.Sprintf("server.%d=%s:%d:%d", i+1,
			hostForConfig(host), ports[3*i+1], ports[3*i+2]))
	}
	dones := make([]<-chan struct{}, len(e.servers))
	for i, s := range e.servers {
		s.peer.servers = lines
		if err := s.writeConfig(); err != nil {
			return err
		}
		if dones[i], err = s.spawn(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for i, s := range e.servers {
		if err := s.waitServing(ctx, dones[i]); err != nil {
			return fmt.Errorf("server %d: %w", i, err)
		}
	}
	return nil
}

// hostForConfig brackets an IPv6 literal, as server.N lines want it.
func hostForConfig(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// freePorts returns n distinct free ports on host: all n listeners are held
// open together, so the kernel cannot hand out one port twice.
func freePorts(host string, n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find %d free ports on %s: %w", n, host, err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addrs are the client addresses of all servers, as a client's connect
// string lists them.
func (e *Ensemble) Addrs() []string {
	out := make([]string, len(e.servers))
	for i, s := range e.servers {
		out[i] = s.Addr()
	}
	return out
}

// Server is member i (0-based; its myid is i+1).
func (e *Ensemble) Server(i int) *Server { return e.servers[i] }

// Size is the number of members.
func (e *Ensemble) Size() int { return len(e.servers) }

// Leader polls the members until one of them says "Mode: leader" and
// returns its index. A leader serves only once a quorum follows it, so
// this is also "the ensemble has quorum".
func (e *Ensemble) Leader(ctx context.Context) (int, error) {
	for {
		for i, s := range e.servers {
			if s.running() {
				if m, _ := s.Mode(ctx); m == "leader" {
					return i, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("zktest: no ZooKeeper leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitServing waits until every running member serves clients again.
func (e *Ensemble) WaitServing(ctx context.Context) error {
	for i, s := range e.servers {
		s.mu.Lock()
		cmd, done := s.cmd, s.done
		s.mu.Unlock()
		if cmd == nil {
			continue
		}
		if err := s.waitServing(ctx, done); err != nil {
			return fmt.Errorf("zktest: ensemble member %d: %w", i, err)
		}
	}
	return nil
}

// Mode is what srvr says the server is: "leader", "follower", "standalone",
// or "" while it does not serve (no quorum, loading its database).
func (s *Server) Mode(ctx context.Context) (string, error) {
	out, err := s.FourLetterWord(ctx, "srvr")
	if err != nil {
		return "", err
	}
	_, rest, ok := bytes.Cut(out, []byte("Mode: "))
	if !ok {
		return "", nil
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	return string(bytes.TrimSpace(line)), nil
}

// Mntr returns the numeric figures of the mntr command
// (zk_outstanding_requests, zk_num_alive_connections, ...).
func (s *Server) Mntr(ctx context.Context) (map[string]int64, error) {
	out, err := s.FourLetterWord(ctx, "mntr")
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m, nil
}

// Start runs a stopped member of an ensemble again (same ports, same data
// dir) and returns without waiting: alone, it cannot serve until enough
// members run to form a quorum. Use Ensemble.Leader or WaitServing to wait.
// It does nothing if the server runs.
func (s *Server) Start() {
	s.t.Helper()
	if s.running() {
		return
	}
	if _, err := s.spawn(); err != nil {
		s.t.Fatalf("zktest: start ZooKeeper %s: %v", s.Addr(), err)
	}
}

// Terminate stops the server cleanly (SIGTERM) and waits for it, killing it
// after 10 s.
func (s *Server) Terminate() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen JVM cannot handle SIGTERM
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	s.Stop()
}

// Freeze stops the JVM with SIGSTOP: its sockets stay open but nothing
// answers, as with a partition or a long GC pause. Thaw resumes it; Stop
// kills it frozen or not.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("zktest: %v to ZooKeeper %s: not running", sig, s.Addr())
		return
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("zktest: %v to ZooKeeper %s (pid %d): %v", sig, s.Addr(), cmd.Process.Pid, err)
	}
}

// PID is the JVM's process id (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) running() bool { return s.PID() != 0 }

// WipeData deletes a stopped server's database (snapshots, transaction
// log, epochs) and keeps its myid: it comes back empty, as a server whose
// disk was replaced. With every member wiped, every node and session of
// the ensemble is gone, and clients learn on reconnect that their sessions
// expired.
func (s *Server) WipeData() {
	s.t.Helper()
	if s.running() {
		s.t.Fatalf("zktest: WipeData of ZooKeeper %s while it runs; Stop it first", s.Addr())
	}
	if err := os.RemoveAll(filepath.Join(s.dir, "data", "version-2")); err != nil {
		s.t.Fatalf("zktest: wipe the data of ZooKeeper %s: %v", s.Addr(), err)
	}
}

// SaveData copies a stopped server's database; restore, called while the
// server is stopped again, puts that copy back in place of whatever the
// server wrote since: the server comes back as if restored from a backup,
// behind what its clients have seen.
func (s *Server) SaveData() (restore func()) {
	s.t.Helper()
	if s.running() {
		s.t.Fatalf("zktest: SaveData of ZooKeeper %s while it runs; Stop it first", s.Addr())
	}
	db := filepath.Join(s.dir, "data", "version-2")
	saved := filepath.Join(s.t.TempDir(), "version-2")
	if err := os.CopyFS(saved, os.DirFS(db)); err != nil {
		s.t.Fatalf("zktest: save the data of ZooKeeper %s: %v", s.Addr(), err)
	}
	return func() {
		s.t.Helper()
		if s.running() {
			s.t.Fatalf("zktest: restore the data of ZooKeeper %s while it runs; Stop it first", s.Addr())
		}
		if err := os.RemoveAll(db); err != nil {
			s.t.Fatalf("zktest: restore the data of ZooKeeper %s: %v", s.Addr(), err)
		}
		if err := os.CopyFS(db, os.DirFS(saved)); err != nil {
			s.t.Fatalf("zktest: restore the data of ZooKeeper %s: %v", s.Addr(), err)
		}
	}
}
