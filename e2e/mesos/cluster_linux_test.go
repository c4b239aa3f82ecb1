package mesose2e_test

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
	masterAddr = "127.0.0.1:5050"
	agentAddr  = "127.0.0.1:5051"

	// The two CNI networks of the node (the namespace is the test's own,
	// so these never meet another test's).
	subnetA  = "198.18.50.0/24"
	gatewayA = "198.18.50.1" // bridge address: containers reach ZooKeeper here
	subnetB  = "198.18.51.0/24"
	subnetB6 = "2001:db8:51::/64"

	// reregistrationTimeout is the agent's --executor_reregistration_timeout:
	// how long after recovering it waits for executors to subscribe again
	// before destroying them (Mesos default 2secs, at most 15secs).
	reregistrationTimeout = "5secs"
)

// proc is a daemon of the node (master or agent), started with
// `nsenter --net`, which execs it in place: its PID is the daemon's.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (c *cluster) start(t *testing.T, name, logName string, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(c.dir, "logs", logName)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &proc{name: name, log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command("nsenter", append([]string{"--net=/run/netns/" + c.ns, "--"}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop signals the process and waits; SIGKILL after timeout.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// cluster is a one-node Mesos cluster inside a network namespace: ZooKeeper,
// mesos-master, mesos-agent with two CNI bridge networks.
type cluster struct {
	t           *testing.T
	dir         string // everything of the node: work dirs, logs, CNI configs, leases
	ns          string
	bin         map[string]string
	web         string // the demo's web server binary
	zk          *zktest.Server
	zkPort      string
	cniDir      string    // the node's CNI configs (e2etest.Node.ConfigDir)
	nets        [2]string // CNI network names
	mesosHome   string    // the Mesos installation (testenv.MesosHome)
	cgroupsRoot string    // the agent's --cgroups_root, the test's own
	agentWork   string
	runtimeDir  string
	master      *proc
	agents      []*proc // every run of the agent, the current one last
	http        *http.Client
}

// newCluster starts ZooKeeper, the master and the agent in a new node
// namespace and waits until the agent has registered. Cleanup removes it all.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	home := testenv.MesosHome(t)
	testenv.NeedRoot(t)
	testenv.CNIPluginDir(t) // skips (fails under make test) without the plugins
	// The node: its namespace (removed last, and checked), its scratch
	// dir and the CNI configs the agent's network/cni isolator reads.
	node := e2etest.NewNode(t)
	c := &cluster{t: t, mesosHome: home, ns: node.Name, dir: node.Dir, cniDir: node.ConfigDir, bin: map[string]string{}}
	for _, b := range []string{"dewar-executor", "dewar-scheduler"} {
		c.bin[b] = testenv.Binary(t, b)
	}
	for _, d := range []string{"logs", "master"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.web = testenv.Program(t, "webserver")
	c.agentWork = filepath.Join(c.dir, "agent")
	c.runtimeDir = filepath.Join(c.dir, "run")
	c.cgroupsRoot = "dewar-mesos-" + testenv.RandomHex(3)
	a := node.BridgeNetwork(t, subnetA)
	g := node.BridgeNetwork(t, subnetB, subnetB6)
	c.nets = [2]string{a.Name, g.Name}

	// Registered before the cleanup below, so it runs after it.
	t.Cleanup(c.checkNothingLeft)
	c.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(c.ns), DisableKeepAlives: true}}
	c.zk = zktest.Start(t, zktest.Listen("0.0.0.0"), zktest.CommandPrefix("nsenter", "--net=/run/netns/"+c.ns, "--"), zktest.Dial(netnstest.DialIn(c.ns)))
	_, c.zkPort, _ = net.SplitHostPort(c.zk.Addr())
	// Registered after ZooKeeper's: runs before ZooKeeper stops.
	t.Cleanup(c.cleanup)

	c.master = c.start(t, "mesos-master", "master.log", c.mesosHome+"/sbin/mesos-master",
		"--ip=127.0.0.1", "--port=5050", "--hostname=127.0.0.1",
		"--work_dir="+filepath.Join(c.dir, "master"), "--registry=in_memory")
	testenv.WaitUntil(t, 30*time.Second, "the master to answer /state", func() bool {
		if !c.master.alive() {
			t.Fatalf("mesos-master exited:\n%s", tail(c.master.output(), 30))
		}
		var st masterState
		return c.getJSON(masterAddr, "/state", &st) == nil
	})
	c.startAgent(t)
	return c
}

// agentArgs are the flags an operator needs to run dewar under a real
// agent, plus the test's own directories.
func (c *cluster) agentArgs() []string {
	env, _ := json.Marshal(map[string]string{
		// The agent builds the executor's environment; nothing of its own
		// is inherited (src/slave/containerizer/mesos/launch.cpp). The
		// demo job finds its web server on PATH, the one variable of the
		// executor's that processes get (as Thermos).
		"PATH": filepath.Dir(c.web) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	})
	return []string{
		c.mesosHome + "/sbin/mesos-agent",
		"--master=" + masterAddr, "--ip=127.0.0.1", "--port=5051", "--hostname=dewar-mesos-node",
		"--work_dir=" + c.agentWork, "--runtime_dir=" + c.runtimeDir,
		"--launcher_dir=" + c.mesosHome + "/libexec/mesos",
		"--isolation=filesystem/linux,network/cni", "--launcher=linux",
		"--cgroups_root=" + c.cgroupsRoot, "--systemd_enable_support=false",
		// Containers on CNI networks have their own loopback: executors
		// reach the agent only through its domain socket.
		"--http_executor_domain_sockets",
		"--executor_reregistration_timeout=" + reregistrationTimeout,
		// An executor the agent refuses never subscribes; the task then
		// fails after this (default 1mins), well within waitRunning.
		"--executor_registration_timeout=30secs",
		"--network_cni_config_dir=" + c.cniDir,
		"--network_cni_plugins_dir=" + testenv.CNIPluginDir(c.t),
		"--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31999]",
		"--executor_environment_variables=" + string(env),
	}
}

// startAgent starts (or restarts, on the same work and runtime dirs) the
// agent and waits until the master lists it as active.
func (c *cluster) startAgent(t *testing.T) *proc {
	t.Helper()
	a := c.start(t, "mesos-agent", fmt.Sprintf("agent-%d.log", len(c.agents)+1), c.agentArgs()...)
	c.agents = append(c.agents, a)
	testenv.WaitUntil(t, 60*time.Second, "the agent to register with the master", func() bool {
		if !a.alive() {
			t.Fatalf("mesos-agent exited:\n%s", tail(a.output(), 40))
		}
		var st masterState
		if c.getJSON(masterAddr, "/state", &st) != nil {
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

func (c *cluster) agent() *proc { return c.agents[len(c.agents)-1] }

// job writes testdata/jobs/web_cni.json (the demo's job) with the node's
// network names and the given instance count. With healthyAfter > 0 the
// web server answers its health check only that long after it started (so
// the executor sends TASK_RUNNING only then), and the health checker
// ignores failures until well after.
func (c *cluster) job(t *testing.T, instances int, healthyAfter time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "jobs", "web_cni.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The command line names the networks ({{mesos.ips[blue]}}).
	b = []byte(strings.NewReplacer("[blue]", "["+c.nets[0]+"]", "[green]", "["+c.nets[1]+"]").Replace(string(b)))
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
		map[string]any{"name": c.nets[0], "labels": map[string]any{"team": "web"}},
		map[string]any{"name": c.nets[1], "labels": map[string]any{}},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.dir, "job.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stub is a running `dewar-scheduler run` against the real master.
type stub struct {
	p  *proc
	db string
}

// startStub runs the scheduler stub with job; its cleanup kills the job if
// it still runs and waits for the stub to end.
func (c *cluster) startStub(t *testing.T, job string) *stub {
	t.Helper()
	s := &stub{db: filepath.Join(c.dir, "stub.db")}
	s.p = c.start(t, "dewar-scheduler", "stub.log", c.bin["dewar-scheduler"], "run",
		"--master", masterAddr, "--db", s.db, "--job", job,
		"--enable-cni", "--allowed-networks", c.nets[0]+","+c.nets[1],
		"--executor-command", c.bin["dewar-executor"],
		"--announcer-ensemble", net.JoinHostPort(gatewayA, c.zkPort))
	t.Cleanup(func() {
		if s.p.alive() && !c.agent().alive() {
			// The test ended with the agent down: no kill can complete.
			// The cluster's cleanup kills the tasks by PID.
			s.p.stop(syscall.SIGTERM, 10*time.Second)
		}
		if s.p.alive() {
			if out, err := c.killJob(s); err != nil {
				t.Logf("cleanup: dewar-scheduler kill: %v\n%s", err, out)
			}
			select {
			case <-s.p.done:
			case <-time.After(45 * time.Second):
				t.Errorf("the stub did not end within 45s of its job's kill")
			}
			s.p.stop(syscall.SIGKILL, 5*time.Second)
		}
	})
	return s
}

// killJob asks the running stub to kill every instance.
func (c *cluster) killJob(s *stub) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+c.ns, "--", c.bin["dewar-scheduler"], "kill", "--db", s.db)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stubUpdate is one "status update" line of the stub's log.
type stubUpdate struct {
	Task     string `json:"task"`
	State    string `json:"state"`
	UUID     string `json:"uuid"` // hex, as the checkpointed stream's
	Instance int    `json:"instance"`
	Message  string `json:"message"`
}

// stubUpdates reads every status update the stub received, in order.
func (s *stub) updates(t *testing.T) []stubUpdate {
	t.Helper()
	var out []stubUpdate
	sc := bufio.NewScanner(strings.NewReader(s.p.output()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		// zap's console encoder: time, level, caller, message, JSON fields.
		fields := strings.Split(sc.Text(), "\t")
		i := slices.Index(fields, "status update")
		if i < 0 || i+1 >= len(fields) {
			continue
		}
		var u stubUpdate
		if err := json.Unmarshal([]byte(fields[i+1]), &u); err != nil {
			t.Fatalf("stub log line %q: %v", sc.Text(), err)
		}
		out = append(out, u)
	}
	return out
}

// getJSON GETs http://addr/path inside the node and decodes the answer.
func (c *cluster) getJSON(addr, path string, v any) error {
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

// zkConn is a ZooKeeper session dialled from inside the node.
func (c *cluster) zkConn(t *testing.T) *zk.Conn {
	t.Helper()
	return zktest.ConnectWith(t, netnstest.DialIn(c.ns), "127.0.0.1:"+c.zkPort)
}

// taskProcesses lists the executors and tasks of the test's agent: every
// process whose MESOS_DIRECTORY is under its work dir.
func (c *cluster) taskProcesses() []int {
	return e2etest.PIDsWithEnv("MESOS_DIRECTORY=" + c.agentWork + "/")
}

// cniContainers lists the containers the agent's network/cni isolator still
// holds (it keeps one directory per container, with the pinned namespace).
func (c *cluster) cniContainers() []string {
	ents, _ := os.ReadDir(filepath.Join(c.runtimeDir, "isolators", "network", "cni"))
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// containerCgroups lists the containers' freezer cgroups under the agent's
// --cgroups_root (the linux launcher makes one per container on cgroups v1,
// src/slave/containerizer/mesos/linux_launcher.cpp).
func (c *cluster) containerCgroups() []string {
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
func (c *cluster) cleanup() {
	t := c.t
	agentUp := len(c.agents) > 0 && c.agent().alive()
	if left := c.taskProcesses(); len(left) > 0 && !agentUp {
		// The agent died (or the test killed it): nobody else will.
		t.Logf("cleanup: the agent is down; killing executor and task processes %v", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if left := c.taskProcesses(); len(left) > 0 && agentUp {
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
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(c.cniContainers()) > 0; {
			time.Sleep(100 * time.Millisecond)
		}
		if left := c.cniContainers(); len(left) > 0 {
			t.Errorf("cleanup: the agent did not destroy containers %v within 20s", left)
		}
	}
	for _, a := range c.agents {
		a.stop(syscall.SIGTERM, 10*time.Second)
	}
	if c.master != nil {
		c.master.stop(syscall.SIGTERM, 10*time.Second)
	}
	if left := c.taskProcesses(); len(left) > 0 {
		t.Errorf("cleanup: processes %v of the agent's work dir outlived the agent; killing them", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	c.removeCgroups()
	if n := c.unmountAll(); n > 0 {
		t.Logf("cleanup: unmounted %d mounts under %s", n, c.dir)
	}
	if t.Failed() {
		c.dumpLogs()
	}
	c.keepLogs()
}

// keepLogsEnv names a directory where each test's logs (master, agent runs,
// stub, executors' stderr) are copied before its directory is removed.
const keepLogsEnv = "DEWAR_MESOS_KEEP_LOGS"

func (c *cluster) keepLogs() {
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
func (c *cluster) logFiles() []string {
	var logs []string
	if c.master != nil {
		logs = append(logs, c.master.log)
	}
	for _, a := range c.agents {
		logs = append(logs, a.log)
	}
	logs = append(logs, filepath.Join(c.dir, "logs", "stub.log"))
	sandboxes, _ := filepath.Glob(filepath.Join(c.agentWork, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	for _, s := range sandboxes {
		if !strings.Contains(s, "/latest/") {
			logs = append(logs, s)
		}
	}
	return logs
}

// checkNothingLeft fails the test if its namespace is still listed, or a
// mount under its directory or a cgroup of its agent is left.
func (c *cluster) checkNothingLeft() {
	t := c.t
	if left := mountsUnder(c.dir); len(left) > 0 {
		t.Errorf("still mounted after the test: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", c.cgroupsRoot)); len(left) > 0 {
		t.Errorf("cgroups left after the test: %v", left)
	}
}

// removeCgroups kills what is left in the test's cgroups (its own
// --cgroups_root, so everything there is the test's) and removes them,
// deepest first.
func (c *cluster) removeCgroups() {
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
func (c *cluster) unmountAll() int {
	t := c.t
	n := 0
	for pass := 0; pass < 10; pass++ {
		mounts := mountsUnder(c.dir)
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
	if left := mountsUnder(c.dir); len(left) > 0 {
		t.Errorf("cleanup: still mounted under %s: %v", c.dir, left)
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

func (c *cluster) dumpLogs() {
	for _, l := range c.logFiles() {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		c.t.Logf("--- tail of %s:\n%s", l, tail(string(b), 60))
	}
}

func tail(s string, n int) string {
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

// inSubnets reports whether addr lies in one of the prefixes.
func inSubnets(addr string, prefixes ...string) bool {
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

// executorSentRunning reports whether the (only) executor has logged that
// it sent TASK_RUNNING (its log is the sandbox's stderr).
func (c *cluster) executorSentRunning(t *testing.T) bool {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(c.agentWork, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	for _, l := range logs {
		if strings.Contains(l, "/latest/") {
			continue
		}
		b, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"msg":"status update"`) && strings.Contains(line, `"state":"TASK_RUNNING"`) {
				return true
			}
		}
	}
	return false
}
