package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// node is a whole single-node cluster inside one network namespace:
// ZooKeeper, dewar-agent with two CNI networks, and the binaries to run
// stubs against it.
type node struct {
	t         *testing.T
	ns        string
	dir       string
	bin       map[string]string
	zkPort    string
	gateway   string    // first network's bridge address: containers reach ZooKeeper there
	nets      [2]string // network names
	subnets   [2]*net.IPNet
	subnet6   *net.IPNet // second network's IPv6 range
	agentAddr string
	agentWork string
}

func startNode(t *testing.T) *node {
	t.Helper()
	testenv.NeedRoot(t)
	plugins := testenv.CNIPluginDir(t)
	n := &node{t: t, dir: t.TempDir(), bin: map[string]string{}}
	for _, b := range []string{"dewar-agent", "dewar-executor", "dewar-scheduler", "dewar-serverset"} {
		n.bin[b] = testenv.Binary(t, b)
	}
	web := testenv.Program(t, "webserver")
	n.ns, _ = netnstest.New(t)

	zk := zktest.Start(t, zktest.Listen("0.0.0.0"), zktest.CommandPrefix("ip", "netns", "exec", n.ns), zktest.Dial(netnstest.DialIn(n.ns)))
	_, n.zkPort, _ = net.SplitHostPort(zk.Addr())

	sfx := testenv.RandomHex(3)
	n.nets = [2]string{"dewar-a-" + sfx, "dewar-g-" + sfx}
	n.gateway = "198.18.40.1"
	_, n.subnets[0], _ = net.ParseCIDR("198.18.40.0/24")
	_, n.subnets[1], _ = net.ParseCIDR("198.18.41.0/24")
	_, n.subnet6, _ = net.ParseCIDR("2001:db8:41::/64")
	confDir := filepath.Join(n.dir, "cni")
	ipam := filepath.Join(n.dir, "ipam")
	writeFile(t, filepath.Join(confDir, "a.conf"), fmt.Sprintf(`{"cniVersion": "0.2.0", "name": %q, "type": "bridge", "bridge": "dewar-ba-%s",
  "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "subnet": "198.18.40.0/24", "dataDir": %q, "routes": [{"dst": "198.18.40.0/24"}]}}`, n.nets[0], sfx, ipam))
	writeFile(t, filepath.Join(confDir, "g.conf"), fmt.Sprintf(`{"cniVersion": "0.2.0", "name": %q, "type": "bridge", "bridge": "dewar-bg-%s",
  "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": %q,
    "ranges": [[{"subnet": "198.18.41.0/24"}], [{"subnet": "2001:db8:41::/64"}]],
    "routes": [{"dst": "198.18.41.0/24"}, {"dst": "2001:db8:41::/64"}]}}`, n.nets[1], sfx, ipam))

	n.agentWork = filepath.Join(n.dir, "agent")
	// nsenter --net, not `ip netns exec`: the latter gives the agent a
	// private mount namespace, hiding the container namespaces it pins
	// under /run/netns from everyone else (and from its own restart).
	cmd := exec.Command("nsenter", "--net=/run/netns/"+n.ns, "--", n.bin["dewar-agent"],
		"--work-dir", n.agentWork, "--listen", "127.0.0.1:0", "--hostname", "dewar-e2e-node",
		"--resources", "cpus:4;mem:4096;ports:[31000-31999]", "--executor", n.bin["dewar-executor"],
		"--network-cni-config-dir", confDir, "--network-cni-plugins-dir", plugins,
		"--executor-shutdown-grace-period", "3s",
		// The executor's environment is built, not inherited (as Mesos),
		// and processes get its PATH but nothing else of it (as Thermos):
		// the job's "dewar-test-webserver" is found on PATH.
		"--executor-environment-variables", `{"PATH": "`+filepath.Dir(web)+`:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}`)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dewar-agent: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { n.stopAgent(cmd, done, out) })
	listening := regexp.MustCompile(`dewar-agent listening on (\S+)`)
	testenv.WaitUntil(t, 30*time.Second, "dewar-agent to listen", func() bool {
		select {
		case <-done:
			t.Fatalf("dewar-agent exited:\n%s", out.String())
		default:
		}
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			n.agentAddr = m[1]
			return true
		}
		return false
	})
	return n
}

// stopAgent stops the agent and anything it left: executors still running
// (found by their sandbox under the agent's work dir) and their container
// namespaces.
func (n *node) stopAgent(cmd *exec.Cmd, done chan struct{}, out *testenv.Buffer) {
	// A killed task's executor exits only after the agent acknowledged its
	// last update; stopping the agent first would leave it waiting for a
	// recovery (the stub checkpoints). Give the executors time to finish.
	prefix := "MESOS_DIRECTORY=" + n.agentWork + "/"
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if len(e2etest.PIDsWithEnv(prefix)) == 0 {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	for _, pid := range e2etest.PIDsWithEnv(prefix) {
		n.t.Errorf("executor or task process %d outlived the job; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	states, _ := filepath.Glob(filepath.Join(n.agentWork, "cni", "containers", "*.json"))
	for _, f := range states {
		var st struct {
			NetNS string `json:"netns_name"`
		}
		b, err := os.ReadFile(f)
		if err == nil && json.Unmarshal(b, &st) == nil && st.NetNS != "" {
			if exec.Command("ip", "netns", "delete", st.NetNS).Run() == nil {
				n.t.Errorf("container namespace %s was left behind", st.NetNS)
			}
		}
	}
	if n.t.Failed() {
		n.t.Logf("dewar-agent output:\n%s", out.String())
	}
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
