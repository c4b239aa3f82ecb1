package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// node is a whole single-node cluster inside one network namespace
// (internal/e2etest): ZooKeeper, dewar-agent with two CNI networks, and the
// binaries to run stubs against it.
type node struct {
	ns        string
	bin       map[string]string
	zkPort    string
	gateway   string    // first network's bridge address: containers reach ZooKeeper there
	nets      [2]string // network names
	subnets   [2]*net.IPNet
	subnet6   *net.IPNet // second network's IPv6 range
	agentAddr string
}

func startNode(t *testing.T) *node {
	t.Helper()
	en := e2etest.NewNode(t)
	n := &node{ns: en.Name, bin: map[string]string{}}
	for _, b := range []string{"dewar-executor", "dewar-scheduler", "dewar-serverset"} {
		n.bin[b] = testenv.Binary(t, b)
	}
	web := testenv.Program(t, "webserver")

	zk := zktest.Start(t, zktest.Listen("0.0.0.0"), zktest.CommandPrefix("ip", "netns", "exec", n.ns), zktest.Dial(netnstest.DialIn(n.ns)))
	_, n.zkPort, _ = net.SplitHostPort(zk.Addr())

	a := en.BridgeNetwork(t, "198.18.40.0/24")
	g := en.BridgeNetwork(t, "198.18.41.0/24", "2001:db8:41::/64")
	n.nets = [2]string{a.Name, g.Name}
	n.gateway = "198.18.40.1" // host-local gives the bridge the first address
	_, n.subnets[0], _ = net.ParseCIDR("198.18.40.0/24")
	_, n.subnets[1], _ = net.ParseCIDR("198.18.41.0/24")
	_, n.subnet6, _ = net.ParseCIDR("2001:db8:41::/64")

	agent := en.StartAgent(t, "--resources", "cpus:4;mem:4096;ports:[31000-31999]",
		// The executor's environment is built, not inherited (as Mesos),
		// and processes get its PATH but nothing else of it (as Thermos):
		// the job's "dewar-test-webserver" is found on PATH.
		"--executor-environment-variables", `{"PATH": "`+filepath.Dir(web)+`:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}`)
	n.agentAddr = agent.Addr
	return n
}

// stub is a running `dewar-scheduler run`.
type stub struct {
	cmd  *exec.Cmd
	db   string
	out  *testenv.Buffer
	done chan struct{}
}

func (n *node) stubArgs(db, job string, extra ...string) []string {
	return append([]string{n.bin["dewar-scheduler"], "run", "--master", n.agentAddr, "--db", db, "--job", job,
		"--executor-command", n.bin["dewar-executor"],
		"--announcer-ensemble", net.JoinHostPort(n.gateway, n.zkPort)}, extra...)
}

// startStub runs the stub; cleanup kills its job and waits for it to end.
func (n *node) startStub(t *testing.T, db, job string, extra ...string) *stub {
	t.Helper()
	argv := n.stubArgs(db, job, extra...)
	s := &stub{cmd: netnstest.Command(context.Background(), n.ns, argv...), db: db, out: &testenv.Buffer{}, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start dewar-scheduler: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		kill := netnstest.Command(context.Background(), n.ns, n.bin["dewar-scheduler"], "kill", "--db", db)
		if out, err := kill.CombinedOutput(); err != nil {
			t.Logf("dewar-scheduler kill: %v\n%s", err, out)
		}
		select {
		case <-s.done:
		case <-time.After(45 * time.Second):
			t.Errorf("the stub did not end after its job was killed")
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("dewar-scheduler output:\n%s", s.out.String())
		}
	})
	return s
}

// stop ends the stub as Ctrl-C does: its tasks keep running.
func (s *stub) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the stub did not stop on SIGTERM")
	}
}

// reject runs the stub and expects it to refuse the job.
func (n *node) reject(t *testing.T, job string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := netnstest.Command(ctx, n.ns, n.stubArgs(filepath.Join(t.TempDir(), "stub.db"), job, extra...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("stub accepted a job it must refuse (err %v):\n%s", err, out)
	}
	return string(out)
}

// waitRunning polls the stub's database until n instances are RUNNING and
// cond holds.
func waitRunning(t *testing.T, db string, n int, cond func(map[int]scheduler.TaskRecord) bool) map[int]scheduler.TaskRecord {
	t.Helper()
	store, err := scheduler.OpenStore(db)
	if err != nil {
		t.Fatal(err)
	}
	var latest map[int]scheduler.TaskRecord
	testenv.WaitUntil(t, 90*time.Second, fmt.Sprintf("%d instances RUNNING", n), func() bool {
		recs, err := store.Tasks()
		if err != nil {
			t.Fatal(err)
		}
		latest = scheduler.Latest(recs)
		running := 0
		for _, r := range latest {
			if r.State == "TASK_RUNNING" {
				running++
			}
		}
		return running == n && (cond == nil || cond(latest))
	})
	return latest
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
