package observer

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestRealMesosAgent runs an Aurora task with the real dewar-executor under
// a real Mesos 1.12 master and agent (testenv.MesosHome),
// launched by Mesos' own mesos-execute, and finds it in the agent's work
// dir (slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>,
// with Mesos' "latest" symlinks) with its process run, its log and the
// addresses the executor recorded. Host networking and the posix launcher:
// the CNI path is the demo's and e2e's.
func TestRealMesosAgent(t *testing.T) {
	testenv.NeedRoot(t)
	mesos := testenv.MesosHome(t)
	executor := testenv.Binary(t, "dewar-executor")
	dir := t.TempDir()
	masterPort, agentPort := freePort(t), freePort(t)
	master := "127.0.0.1:" + strconv.Itoa(masterPort)
	work := filepath.Join(dir, "agent")

	start(t, filepath.Join(dir, "master.log"), filepath.Join(mesos, "sbin", "mesos-master"),
		"--ip=127.0.0.1", "--port="+strconv.Itoa(masterPort), "--work_dir="+filepath.Join(dir, "master"),
		"--registry=in_memory", "--hostname=localhost")
	start(t, filepath.Join(dir, "agent.log"), filepath.Join(mesos, "sbin", "mesos-agent"),
		"--master="+master, "--ip=127.0.0.1", "--port="+strconv.Itoa(agentPort), "--hostname=localhost",
		"--work_dir="+work, "--runtime_dir="+filepath.Join(dir, "run"),
		"--launcher=posix", "--isolation=posix/cpu,posix/mem", "--systemd_enable_support=false",
		"--resources=cpus:2;mem:1024;disk:1024")
	// Kill what the agent left (executors, task processes) by their
	// MESOS_DIRECTORY, never by name.
	t.Cleanup(func() { killUnder(t, work) })
	waitHTTP(t, "http://"+master+"/state", `"activated_slaves":1`, filepath.Join(dir, "agent.log"))

	jobJSON, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "aurora", "hello_world.json"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	taskID := "root-devel-hello_world-0-" + testenv.RandomHex(4)
	data, err := aurora.BuildAssignedTask(job, jobJSON, taskID, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	task := map[string]any{
		"name": "hello_world", "task_id": map[string]any{"value": taskID}, "agent_id": map[string]any{"value": ""},
		"resources": []any{
			map[string]any{"name": "cpus", "type": "SCALAR", "scalar": map[string]any{"value": 0.1}},
			map[string]any{"name": "mem", "type": "SCALAR", "scalar": map[string]any{"value": 32}},
		},
		"executor": map[string]any{
			"executor_id": map[string]any{"value": "thermos-" + taskID},
			"command":     map[string]any{"value": executor},
		},
		"data": base64.StdEncoding.EncodeToString(data),
	}
	tj, _ := json.Marshal(task)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	out, err := exec.CommandContext(ctx, filepath.Join(mesos, "bin", "mesos-execute"),
		"--master="+master, "--task="+string(tj)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TASK_FINISHED") {
		logs, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
		t.Fatalf("mesos-execute: %v\n%s\n--- agent log tail:\n%s", err, out, tail64(logs))
	}

	srv, err := NewServer(Options{Root: work, TTL: time.Nanosecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := srv.Index().Get(taskID)
	if e == nil || e.Task == nil {
		t.Fatalf("the observer does not find %s under %s: %+v", taskID, work, e)
	}
	if rel, _ := filepath.Rel(work, e.RunDir); !strings.HasPrefix(rel, "slaves/") || strings.Contains(rel, "latest") {
		t.Errorf("run dir %s: want slaves/<agent>/frameworks/.../runs/<container>, not a latest link", rel)
	}
	tk := e.Task
	if tk.State() != "TASK_FINISHED" || tk.Role != "root" || tk.Job != "hello_world" {
		t.Errorf("checkpoint: state %s, job %s/%s/%s", tk.State(), tk.Role, tk.Environment, tk.Job)
	}
	if p := tk.Process("hello"); p == nil || len(p.Runs) != 1 || p.Runs[0].State != checkpoint.RunSuccess || p.Runs[0].PID == 0 {
		t.Errorf("process hello: %+v", p)
	}
	if len(tk.Networks) == 0 || len(tk.Networks[0].Addresses) == 0 {
		t.Fatalf("no addresses recorded: %+v", tk.Networks)
	}
	// The real executor sampled the sandbox's disk use into the checkpoint
	// (package usage: at its start, and once more as the task ended).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := checkpoint.Read(e.RunDir)
		if err == nil && c.Disk != nil && c.Disk.Bytes > 0 && c.Disk.Entries > 1 {
			t.Logf("the executor's disk sample: %+v", *c.Disk)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disk sample in the real executor's checkpoint: %+v, %v", c, err)
		}
	}
	t.Logf("found %s in %s with addresses %v", taskID, e.RunDir, tk.Networks[0].Addresses)
	hs := newTestServer(t, srv)
	page := getBody(t, hs+"/task/"+taskID)
	for _, a := range tk.Networks[0].Addresses {
		if !strings.Contains(page, a) {
			t.Errorf("address %s not on the task page", a)
		}
	}
	if log := getBody(t, hs+"/logs/"+taskID+"/hello/0/stdout"); !strings.Contains(log, "hello world from instance 0 of task "+taskID) {
		t.Errorf("log page:\n%s", log)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a daemon for the test, logging to logPath; it is stopped
// with SIGTERM (then SIGKILL) in Cleanup.
func start(t *testing.T, logPath, bin string, args ...string) {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		lf.Close()
	})
}

func waitHTTP(t *testing.T, url, want, logPath string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			var b strings.Builder
			bufio.NewReader(resp.Body).WriteTo(&b)
			resp.Body.Close()
			if strings.Contains(b.String(), want) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs, _ := os.ReadFile(logPath)
	t.Fatalf("%s never showed %s\n%s", url, want, tail64(logs))
}

func tail64(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// killUnder kills every process whose MESOS_DIRECTORY lies under dir.
func killUnder(t *testing.T, dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "MESOS_DIRECTORY="); ok && strings.HasPrefix(v, dir+"/") {
				t.Logf("killing leftover pid %d (MESOS_DIRECTORY=%s)", pid, v)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func newTestServer(t *testing.T, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String()
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, b.String())
	}
	return b.String()
}
