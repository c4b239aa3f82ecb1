package mesostest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

const (
	// Inside the node namespace nothing else listens: fixed ports are free.
	MasterAddr = "127.0.0.1:5050"
	AgentAddr  = "127.0.0.1:5051"

	// The two CNI networks of the node (the namespace is the test's own,
	// so these never meet another test's).
	SubnetA  = "198.18.50.0/24"
	GatewayA = "198.18.50.1" // bridge address: containers reach ZooKeeper here
	SubnetB  = "198.18.51.0/24"
	SubnetB6 = "2001:db8:51::/64"

	// ReregistrationTimeout is the agent's --executor_reregistration_timeout:
	// how long after recovering it waits for executors to subscribe again
	// before destroying them (Mesos default 2secs, at most 15secs).
	ReregistrationTimeout = "5secs"
)

// Proc is a daemon of the node (master or agent), started with
// `nsenter --net`, which execs it in place: its PID is the daemon's.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string        // the file its stdout and stderr go to
	Done chan struct{} // closed when it has exited
}

// start runs a daemon of the node, its output appended to logs/logName.
func (c *Cluster) start(t *testing.T, name, logName string, argv ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(c.Dir, "logs", logName)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &Proc{Name: name, Log: logPath, Done: make(chan struct{})}
	p.Cmd = exec.Command("nsenter", append([]string{"--net=/run/netns/" + c.NS, "--"}, argv...)...)
	p.Cmd.Stdout, p.Cmd.Stderr = f, f
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.Done) }()
	return p
}

// Alive says whether the process has not exited yet.
func (p *Proc) Alive() bool {
	select {
	case <-p.Done:
		return false
	default:
		return true
	}
}

// Stop signals the process and waits; SIGKILL after timeout.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) {
	if !p.Alive() {
		return
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.Done:
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.Done
	}
}

// Output is everything the process wrote so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Cluster is a one-node Mesos cluster inside a network namespace: ZooKeeper,
// mesos-master, mesos-agent with two CNI bridge networks.
type Cluster struct {
	Dir       string            // everything of the node: work dirs, logs, CNI configs, leases
	NS        string            // the node's network namespace
	Bin       map[string]string // dewar-executor and dewar-scheduler
	ZK        *zktest.Server    // in the node, on every address
	ZKPort    string
	Nets      [2]string // CNI network names
	AgentWork string    // the agent's --work_dir
	Master    *Proc
	Agents    []*Proc // every run of the agent, the current one last

	t           *testing.T
	web         string // the demo's web server binary
	mesosHome   string // the Mesos installation (testenv.MesosHome)
	cniDir      string // the node's CNI configs (e2etest.Node.ConfigDir)
	cgroupsRoot string // the agent's --cgroups_root, the test's own
	runtimeDir  string
	http        *http.Client
	isolation   string   // the agent's --isolation (WithIsolation)
	extraAgent  []string // more mesos-agent flags (Option)
}

// Option changes the cluster before its agent starts.
type Option func(*Cluster)

// MesosHome is the Mesos installation the cluster runs.
func (c *Cluster) MesosHome() string { return c.mesosHome }

// WithIsolation sets the agent's --isolation (default
// "filesystem/linux,network/cni").
func WithIsolation(isolation string) Option {
	return func(c *Cluster) { c.isolation = isolation }
}

// WithAgentFlags adds flags to every run of mesos-agent; a function,
// because some name the node's networks.
func WithAgentFlags(f func(c *Cluster) []string) Option {
	return func(c *Cluster) { c.extraAgent = append(c.extraAgent, f(c)...) }
}

// New starts ZooKeeper, the master and the agent in a new node
// namespace and waits until the agent has registered. Cleanup removes it all.
func New(t *testing.T, opts ...Option) *Cluster {
	t.Helper()
	home := testenv.MesosHome(t)
	testenv.NeedRoot(t)
	testenv.CNIPluginDir(t) // skips (fails under make test) without the plugins
	// The node: its namespace (removed last, and checked), its scratch
	// dir and the CNI configs the agent's network/cni isolator reads.
	node := e2etest.NewNode(t)
	c := &Cluster{t: t, mesosHome: home, NS: node.Name, Dir: node.Dir, cniDir: node.ConfigDir, Bin: map[string]string{}}
	for _, b := range []string{"dewar-executor", "dewar-scheduler"} {
		c.Bin[b] = testenv.Binary(t, b)
	}
	for _, d := range []string{"logs", "master"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.web = testenv.Program(t, "webserver")
	c.AgentWork = filepath.Join(c.Dir, "agent")
	c.runtimeDir = filepath.Join(c.Dir, "run")
	c.cgroupsRoot = "dewar-mesos-" + testenv.RandomHex(3)
	a := node.BridgeNetwork(t, SubnetA)
	g := node.BridgeNetwork(t, SubnetB, SubnetB6)
	c.Nets = [2]string{a.Name, g.Name}
	c.isolation = "filesystem/linux,network/cni"

	// Registered before the cleanup below, so it runs after it.
	t.Cleanup(c.checkNothingLeft)
	c.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.NS), DisableKeepAlives: true}}
	c.ZK = zktest.Start(t, zktest.Listen("0.0.0.0"), zktest.CommandPrefix("nsenter", "--net=/run/netns/"+c.NS, "--"), zktest.Dial(netnstest.DialIn(c.NS)))
	_, c.ZKPort, _ = net.SplitHostPort(c.ZK.Addr())
	// Registered after ZooKeeper's: runs before ZooKeeper stops.
	t.Cleanup(c.cleanup)

	for _, o := range opts {
		o(c)
	}
	c.Master = c.start(t, "mesos-master", "master.log", c.mesosHome+"/sbin/mesos-master",
		"--ip=127.0.0.1", "--port=5050", "--hostname=127.0.0.1",
		"--work_dir="+filepath.Join(c.Dir, "master"), "--registry=in_memory")
	c.WaitFor(t, 30*time.Second, "the master to answer /state", func() bool {
		if !c.Master.Alive() {
			t.Fatalf("mesos-master exited:\n%s", Tail(c.Master.Output(), 30))
		}
		var st MasterState
		return c.GetJSON(MasterAddr, "/state", &st) == nil
	})
	c.StartAgent(t)
	return c
}

// agentArgs are the flags an operator needs to run dewar under a real
// agent, plus the test's own directories.
func (c *Cluster) agentArgs() []string {
	env, _ := json.Marshal(map[string]string{
		// The agent builds the executor's environment; nothing of its own
		// is inherited (src/slave/containerizer/mesos/launch.cpp). The
		// demo job finds its web server on PATH, the one variable of the
		// executor's that processes get (as Thermos).
		"PATH": filepath.Dir(c.web) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	})
	return append([]string{
		c.mesosHome + "/sbin/mesos-agent",
		"--master=" + MasterAddr, "--ip=127.0.0.1", "--port=5051", "--hostname=dewar-mesos-node",
		"--work_dir=" + c.AgentWork, "--runtime_dir=" + c.runtimeDir,
		"--launcher_dir=" + c.mesosHome + "/libexec/mesos",
		"--isolation=" + c.isolation, "--launcher=linux",
		"--cgroups_root=" + c.cgroupsRoot, "--systemd_enable_support=false",
		// Containers on CNI networks have their own loopback: executors
		// reach the agent only through its domain socket.
		"--http_executor_domain_sockets",
		"--executor_reregistration_timeout=" + ReregistrationTimeout,
		// An executor the agent refuses never subscribes; the task then
		// fails after this (default 1mins), well within waitRunning.
		"--executor_registration_timeout=30secs",
		"--network_cni_config_dir=" + c.cniDir,
		"--network_cni_plugins_dir=" + testenv.CNIPluginDir(c.t),
		"--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31999]",
		"--executor_environment_variables=" + string(env),
	}, c.extraAgent...)
}

// StartAgent starts (or restarts, on the same work and runtime dirs) the
// agent and waits until the master lists it as active.
func (c *Cluster) StartAgent(t *testing.T) *Proc {
	t.Helper()
	a := c.start(t, "mesos-agent", fmt.Sprintf("agent-%d.log", len(c.Agents)+1), c.agentArgs()...)
	c.Agents = append(c.Agents, a)
	c.WaitFor(t, 60*time.Second, "the agent to register with the master", func() bool {
		if !a.Alive() {
			t.Fatalf("mesos-agent exited:\n%s", Tail(a.Output(), 40))
		}
		var st MasterState
		if c.GetJSON(MasterAddr, "/state", &st) != nil {
			return false
		}
		for _, s := range st.Slaves {
			if s.Active && s.Hostname == "dewar-mesos-node" {
				return true
			}
		}
		return false
	})
	return a
}

// Agent is the current run of the agent.
func (c *Cluster) Agent() *Proc { return c.Agents[len(c.Agents)-1] }

// Job writes testdata/jobs/web_cni.json (the demo's job) with the node's
// network names and the given instance count. With healthyAfter > 0 the
// web server answers its health check only that long after it started (so
// the executor sends TASK_RUNNING only then), and the health checker
// ignores failures until well after.
func (c *Cluster) Job(t *testing.T, instances int, healthyAfter time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "jobs", "web_cni.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The command line names the networks ({{mesos.ips[blue]}}).
	b = []byte(strings.NewReplacer("[blue]", "["+c.Nets[0]+"]", "[green]", "["+c.Nets[1]+"]").Replace(string(b)))
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["instances"] = instances
	if healthyAfter > 0 {
		task := doc["task"].(map[string]any)
		procs := task["processes"].([]any)
		server := procs[0].(map[string]any)
		cmd := server["cmdline"].(string)
		const at = "-health {{thermos.ports[health]}}"
		if !strings.Contains(cmd, at) {
			t.Fatalf("web_cni.json: the server's cmdline no longer has %q: %s", at, cmd)
		}
		server["cmdline"] = strings.Replace(cmd, at, at+" -healthy-after "+healthyAfter.String(), 1)
		hc := doc["health_check_config"].(map[string]any)
		hc["initial_interval_secs"] = (healthyAfter + 30*time.Second).Seconds()
	}
	doc["networks"] = []any{
		map[string]any{"name": c.Nets[0], "labels": map[string]any{"team": "web"}},
		map[string]any{"name": c.Nets[1], "labels": map[string]any{}},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.Dir, "job.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Stub is a running `dewar-scheduler run` against the real master.
type Stub struct {
	P  *Proc
	DB string // its --db
}

// StartStub runs the scheduler stub with job; its cleanup kills the job if
// it still runs and waits for the stub to end.
func (c *Cluster) StartStub(t *testing.T, job string) *Stub {
	t.Helper()
	return c.StartStubWith(t, job, "--enable-cni", "--allowed-networks", c.Nets[0]+","+c.Nets[1])
}

// StartStubWith is StartStub with other flags than the CNI toggle's.
func (c *Cluster) StartStubWith(t *testing.T, job string, flags ...string) *Stub {
	t.Helper()
	s := &Stub{DB: filepath.Join(c.Dir, "stub.db")}
	args := append([]string{c.Bin["dewar-scheduler"], "run",
		"--master", MasterAddr, "--db", s.DB, "--job", job,
		"--executor-command", c.Bin["dewar-executor"],
		"--announcer-ensemble", net.JoinHostPort(GatewayA, c.ZKPort)}, flags...)
	s.P = c.start(t, "dewar-scheduler", "stub.log", args...)
	t.Cleanup(func() {
		if s.P.Alive() && !c.Agent().Alive() {
			// The test ended with the agent down: no kill can complete.
			// The cluster's cleanup kills the tasks by PID.
			s.P.Stop(syscall.SIGTERM, 10*time.Second)
		}
		if s.P.Alive() {
			if out, err := c.KillJob(s); err != nil {
				t.Logf("cleanup: dewar-scheduler kill: %v\n%s", err, out)
			}
			select {
			case <-s.P.Done:
			case <-time.After(45 * time.Second):
				t.Errorf("the stub did not end within 45s of its job's kill")
			}
			s.P.Stop(syscall.SIGKILL, 5*time.Second)
		}
	})
	return s
}

// KillJob asks the running stub to kill every instance.
func (c *Cluster) KillJob(s *Stub) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+c.NS, "--", c.Bin["dewar-scheduler"], "kill", "--db", s.DB)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// EndJob kills every instance through the stub and waits (60 s at most)
// for the stub to end, as it does once its job is gone.
func (c *Cluster) EndJob(t *testing.T, s *Stub) {
	t.Helper()
	if out, err := c.KillJob(s); err != nil {
		t.Fatalf("dewar-scheduler kill: %v\n%s", err, out)
	}
	select {
	case <-s.P.Done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the stub did not end within 60s of the kill")
	}
}

// StubUpdate is one "status update" line of the stub's log.
type StubUpdate struct {
	Task     string `json:"task"`
	State    string `json:"state"`
	UUID     string `json:"uuid"` // hex, as the checkpointed stream's
	Instance int    `json:"instance"`
	Message  string `json:"message"`
}

// Updates reads every status update the stub received, in order.
func (s *Stub) Updates(t *testing.T) []StubUpdate {
	t.Helper()
	var out []StubUpdate
	sc := bufio.NewScanner(strings.NewReader(s.P.Output()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		// zap's console encoder: time, level, caller, message, JSON fields.
		fields := strings.Split(sc.Text(), "\t")
		i := slices.Index(fields, "status update")
		if i < 0 || i+1 >= len(fields) {
			continue
		}
		var u StubUpdate
		if err := json.Unmarshal([]byte(fields[i+1]), &u); err != nil {
			t.Fatalf("stub log line %q: %v", sc.Text(), err)
		}
		out = append(out, u)
	}
	return out
}

// GetJSON GETs http://addr/path inside the node and decodes the answer.
func (c *Cluster) GetJSON(addr, path string, v any) error {
	res, err := c.http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s: %s", addr, path, res.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// WaitFor is testenv.WaitUntil.
func (c *Cluster) WaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitUntil(t, d, what, cond)
}

// ZKConn is a ZooKeeper session dialled from inside the node.
func (c *Cluster) ZKConn(t *testing.T) *zk.Conn {
	t.Helper()
	return zktest.ConnectWith(t, netnstest.DialIn(c.NS), "127.0.0.1:"+c.ZKPort)
}

// TaskProcesses lists the executors and tasks of the test's agent: every
// process whose MESOS_DIRECTORY is under its work dir.
func (c *Cluster) TaskProcesses() []int {
	return e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + c.AgentWork + "/")
}

// CNIContainers lists the containers the agent's network/cni isolator still
// holds (it keeps one directory per container, with the pinned namespace).
func (c *Cluster) CNIContainers() []string {
	ents, _ := os.ReadDir(filepath.Join(c.runtimeDir, "isolators", "network", "cni"))
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// ContainerCgroups lists the containers' freezer cgroups under the agent's
// --cgroups_root (the linux launcher makes one per container on cgroups v1,
// src/slave/containerizer/mesos/linux_launcher.cpp).
func (c *Cluster) ContainerCgroups() []string {
	ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", "freezer", c.cgroupsRoot))
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// cleanup runs also when the test failed: executors and tasks killed by
// PID, agent and master stopped, the test's cgroups removed, everything
// mounted under its directories unmounted. Leftovers the product should not
// have left are errors.
func (c *Cluster) cleanup() {
	t := c.t
	agentUp := len(c.Agents) > 0 && c.Agent().Alive()
	if left := c.TaskProcesses(); len(left) > 0 && !agentUp {
		// The agent died (or the test killed it): nobody else will.
		t.Logf("cleanup: the agent is down; killing executor and task processes %v", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if left := c.TaskProcesses(); len(left) > 0 && agentUp {
		// The test ended early. Killing the executors and tasks lets the
		// agent destroy their containers (CNI DEL) as after any exit.
		t.Logf("cleanup: killing executor and task processes %v", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if agentUp {
		// Let the agent finish destroying containers (CNI DEL, namespace
		// handles unmounted) before it is stopped.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(c.CNIContainers()) > 0; {
			time.Sleep(100 * time.Millisecond)
		}
		if left := c.CNIContainers(); len(left) > 0 {
			t.Errorf("cleanup: the agent did not destroy containers %v within 20s", left)
		}
	}
	for _, a := range c.Agents {
		a.Stop(syscall.SIGTERM, 10*time.Second)
	}
	if c.Master != nil {
		c.Master.Stop(syscall.SIGTERM, 10*time.Second)
	}
	if left := c.TaskProcesses(); len(left) > 0 {
		t.Errorf("cleanup: processes %v of the agent's work dir outlived the agent; killing them", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	c.removeCgroups()
	if n := c.unmountAll(); n > 0 {
		t.Logf("cleanup: unmounted %d mounts under %s", n, c.Dir)
	}
	if t.Failed() {
		c.dumpLogs()
	}
	c.keepLogs()
}

// keepLogsEnv names a directory where each test's logs (master, agent runs,
// stub, executors' stderr) are copied before its directory is removed.
const keepLogsEnv = "DEWAR_MESOS_KEEP_LOGS"

func (c *Cluster) keepLogs() {
	dest := os.Getenv(keepLogsEnv)
	if dest == "" {
		return
	}
	dest = filepath.Join(dest, c.t.Name())
	if err := os.MkdirAll(dest, 0o755); err != nil {
		c.t.Logf("%s: %v", keepLogsEnv, err)
		return
	}
	for _, l := range c.logFiles() {
		name := filepath.Base(l)
		if name == "stderr" {
			name = "executor-" + filepath.Base(filepath.Dir(l)) + ".log"
		}
		if b, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(dest, name), b, 0o644)
		}
	}
	c.t.Logf("logs kept in %s", dest)
}

// logFiles lists the node's logs: master, every agent run, the stub, and
// every executor's stderr.
func (c *Cluster) logFiles() []string {
	var logs []string
	if c.Master != nil {
		logs = append(logs, c.Master.Log)
	}
	for _, a := range c.Agents {
		logs = append(logs, a.Log)
	}
	logs = append(logs, filepath.Join(c.Dir, "logs", "stub.log"))
	sandboxes, _ := filepath.Glob(filepath.Join(c.AgentWork, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	for _, s := range sandboxes {
		if !strings.Contains(s, "/latest/") {
			logs = append(logs, s)
		}
	}
	return logs
}

// checkNothingLeft fails the test if its namespace is still listed, or a
// mount under its directory or a cgroup of its agent is left.
func (c *Cluster) checkNothingLeft() {
	t := c.t
	if left := mountsUnder(c.Dir); len(left) > 0 {
		t.Errorf("still mounted after the test: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", c.cgroupsRoot)); len(left) > 0 {
		t.Errorf("cgroups left after the test: %v", left)
	}
}

// removeCgroups kills what is left in the test's cgroups (its own
// --cgroups_root, so everything there is the test's) and removes them,
// deepest first.
func (c *Cluster) removeCgroups() {
	t := c.t
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", c.cgroupsRoot))
	if unified := filepath.Join("/sys/fs/cgroup", c.cgroupsRoot); dirExists(unified) {
		roots = append(roots, unified)
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil && len(bytes.TrimSpace(b)) > 0 {
				t.Errorf("cleanup: cgroup %s still holds processes %q; killing them", d, strings.Fields(string(b)))
				_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, fs.ErrNotExist) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("cleanup: rmdir cgroup %s: %v", d, err)
			}
		}
	}
}

// unmountAll lazily unmounts every mount at or under the test's directory,
// deepest first, until none is left, and returns how many it unmounted.
func (c *Cluster) unmountAll() int {
	t := c.t
	n := 0
	for pass := 0; pass < 10; pass++ {
		mounts := mountsUnder(c.Dir)
		if len(mounts) == 0 {
			return n
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cleanup: umount -l %s: %v", m, err)
			} else if err == nil {
				n++
			}
		}
	}
	if left := mountsUnder(c.Dir); len(left) > 0 {
		t.Errorf("cleanup: still mounted under %s: %v", c.Dir, left)
	}
	return n
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (c *Cluster) dumpLogs() {
	for _, l := range c.logFiles() {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		c.t.Logf("--- tail of %s:\n%s", l, Tail(string(b), 60))
	}
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// InSubnets reports whether addr lies in one of the prefixes.
func InSubnets(addr string, prefixes ...string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, p := range prefixes {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// ExecutorSentRunning reports whether the (only) executor has logged that
// it sent TASK_RUNNING (its log is the sandbox's stderr).
func (c *Cluster) ExecutorSentRunning(t *testing.T) bool {
	t.Helper()
	return slices.ContainsFunc(c.ExecutorUpdates(t), func(u SentUpdate) bool { return u.State == "TASK_RUNNING" })
}

// SentUpdate is a status update as an executor logged it when it made it
// (executor/updates.go: "status update" with the task, state, message and
// the UUID in hex), whether or not an agent has received it yet.
type SentUpdate struct {
	Task    string `json:"task_id"`
	State   string `json:"state"`
	Message string `json:"message"`
	UUID    string `json:"uuid"`
}

// ExecutorUpdates lists the updates every executor of the agent made, in
// the order each logged them (its log is the sandbox's stderr, JSON lines).
func (c *Cluster) ExecutorUpdates(t *testing.T) []SentUpdate {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(c.AgentWork, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	var out []SentUpdate
	for _, l := range logs {
		if strings.Contains(l, "/latest/") {
			continue
		}
		b, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `"msg":"status update"`) {
				continue
			}
			var u SentUpdate
			if err := json.Unmarshal([]byte(line), &u); err != nil {
				t.Fatalf("executor log %s: %q: %v", l, line, err)
			}
			out = append(out, u)
		}
	}
	return out
}
