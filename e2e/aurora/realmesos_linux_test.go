package aurorae2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// What the real Mesos agent does, proven with it (testenv.MesosHome): it
// creates the run directory root:root 0750 (Mesos >= 1.6), and it does not
// bound a KILL by the executor shutdown grace period.

// realMesos is a one-node Mesos 1.12 cluster on the loopback of a network
// namespace of the test's own, agent with the POSIX launcher.
type realMesos struct {
	home string // the Mesos installation (testenv.MesosHome)
	ns   string
	dir  string
	work string // the agent's --work_dir
}

func startRealMesos(t *testing.T) *realMesos {
	t.Helper()
	testenv.NeedRoot(t)
	home := testenv.MesosHome(t)
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Missing(t, "curl: %v", err)
	}
	ns, _ := netnstest.New(t)
	dir := t.TempDir()
	// The agent's work dir must be traversable by a task user, as on a real
	// agent; the run directory itself is the agent's to make 0750.
	for d := dir; d != "/" && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := &realMesos{home: home, ns: ns, dir: dir, work: filepath.Join(dir, "agent")}
	m.daemon(t, "master", filepath.Join(home, "sbin/mesos-master"), "--ip=127.0.0.1", "--port=5050",
		"--work_dir="+filepath.Join(dir, "master"), "--registry=in_memory")
	m.daemon(t, "agent", filepath.Join(home, "sbin/mesos-agent"), "--master=127.0.0.1:5050", "--ip=127.0.0.1", "--port=5051",
		"--work_dir="+m.work, "--runtime_dir="+filepath.Join(dir, "run"), "--launcher=posix", "--isolation=posix/cpu,posix/mem",
		"--systemd_enable_support=false", "--executor_shutdown_grace_period=5secs",
		"--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31999]")
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := netnstest.Command(t.Context(), ns, "curl", "-s", "http://127.0.0.1:5050/state").Output()
		var st struct {
			Activated float64 `json:"activated_slaves"`
		}
		if json.Unmarshal(out, &st) == nil && st.Activated == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Mesos agent did not register within 60s; master /state: %.300s\nagent log:\n%s", out, m.log("agent"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Executors and tasks outlive a killed agent with the POSIX launcher:
	// end them by the MESOS_DIRECTORY they carry (never by name).
	t.Cleanup(func() { killByEnvPrefix("MESOS_DIRECTORY=" + m.work + "/") })
	return m
}

func (m *realMesos) daemon(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	f, err := os.Create(filepath.Join(m.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := netnstest.Command(context.Background(), m.ns, append([]string{bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "LIBPROCESS_IP=127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func (m *realMesos) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, name+".log"))
	return string(b)
}

// execute runs one Aurora task through mesos-execute (a KILL after
// killAfter when it is not 0) and returns mesos-execute's output and the
// executor's run directory.
func (m *realMesos) execute(t *testing.T, jobJSON []byte, ports map[string]int32, killAfter time.Duration) (out, runDir string) {
	t.Helper()
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%s-%s-0-%s", job.Role, job.Environment, job.Name, testenv.RandomHex(4))
	data, err := aurora.BuildAssignedTask(job, jobJSON, id, 0, ports)
	if err != nil {
		t.Fatal(err)
	}
	executor := testenv.Binary(t, "dewar-executor")
	resources := []map[string]any{{"name": "cpus", "type": "SCALAR", "scalar": map[string]any{"value": 0.1}},
		{"name": "mem", "type": "SCALAR", "scalar": map[string]any{"value": 32}}}
	var ranges []map[string]any
	for _, p := range ports {
		ranges = append(ranges, map[string]any{"begin": p, "end": p})
	}
	if len(ranges) > 0 {
		resources = append(resources, map[string]any{"name": "ports", "type": "RANGES", "ranges": map[string]any{"range": ranges}})
	}
	task := map[string]any{
		"name": job.Name, "task_id": map[string]string{"value": id}, "agent_id": map[string]string{"value": ""},
		"resources": resources, "data": data,
		"executor": map[string]any{
			"executor_id": map[string]string{"value": "thermos-" + id},
			"name":        aurora.ExecutorName,
			"command":     map[string]any{"value": executor, "shell": false, "arguments": []string{executor}},
		},
	}
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	taskFile := filepath.Join(m.dir, id+".json")
	if err := os.WriteFile(taskFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(m.home, "bin/mesos-execute"), "--master=127.0.0.1:5050", "--task=" + taskFile}
	if killAfter > 0 {
		args = append(args, fmt.Sprintf("--kill_after=%dsecs", int(killAfter/time.Second)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	cmd := netnstest.Command(ctx, m.ns, args...)
	cmd.Env = append(os.Environ(), "LIBPROCESS_IP=127.0.0.1")
	o, err := cmd.CombinedOutput()
	out = string(o)
	runs, _ := filepath.Glob(filepath.Join(m.work, "slaves", "*", "frameworks", "*", "executors", "thermos-"+id, "runs", "latest"))
	if len(runs) != 1 {
		t.Fatalf("no run directory of executor thermos-%s: %v\nmesos-execute: %v\n%s", id, runs, err, out)
	}
	runDir, err = filepath.EvalSymlinks(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	return out, runDir
}

// TestRealMesosSandboxOwnership: under the real agent, which makes the run
// directory root:root 0750, a task of the role nobody runs (and owns the
// run directory and its 0700 sandbox), as under Thermos; and its processes
// get Thermos' environment, not the one the agent gave the executor.
func TestRealMesosSandboxOwnership(t *testing.T) {
	m := startRealMesos(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["role"] = "nobody"
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = `id -un; echo "executor_id=${MESOS_EXECUTOR_ID-unset} home=$HOME"`
	})
	out, runDir := m.execute(t, job, nil, 0)
	if !strings.Contains(out, "Received status update TASK_FINISHED") {
		t.Fatalf("mesos-execute:\n%s\nexecutor log:\n%s", out, readFile(filepath.Join(runDir, "stderr")))
	}
	want := "nobody\nexecutor_id=unset home=" + filepath.Join(runDir, "sandbox") + "\n"
	if got := readFile(filepath.Join(runDir, "sandbox", ".logs", "hello", "0", "stdout")); got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{runDir, 0o750}, {filepath.Join(runDir, "sandbox"), 0o700}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode || fi.Sys().(*syscall.Stat_t).Uid != nobodyUID(t) {
			t.Errorf("%s: mode %v uid %d, want %v owned by nobody", c.path, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid, c.mode)
		}
	}
}

// TestRealMesosKillOutlastsShutdownGrace: a KILL through the real master
// and agent (mesos-execute sends it without a kill policy, as Aurora does)
// runs Thermos' whole sequence, 3 s + 3 s of lifecycle waits, longer than
// the agent's 5 s executor shutdown grace period: the agent does not cut it
// short, the process gets SIGTERM after both waits, the final process runs,
// and the executor's TASK_KILLED arrives.
func TestRealMesosKillOutlastsShutdownGrace(t *testing.T) {
	m := startRealMesos(t)
	ports := map[string]int32{"http": 31080, "health": 31081} // the namespace's own loopback: free
	job := renderEnv(killJob(t, "web_service.json", 3), map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	out, runDir := m.execute(t, job, ports, 3*time.Second)
	if !strings.Contains(out, "Received status update TASK_KILLED") || !strings.Contains(out, "source: SOURCE_EXECUTOR") {
		t.Fatalf("mesos-execute:\n%s\nexecutor log:\n%s", out, readFile(filepath.Join(runDir, "stderr")))
	}
	tk := &task{sandbox: runDir}
	ev := events(t, tk)
	quit, abort, term := ev["quitquitquit"], ev["abortabortabort"], ev["SIGTERM"]
	if quit.IsZero() || abort.IsZero() || term.IsZero() || term.Sub(quit) < 6*time.Second {
		t.Errorf("events %v: want /quitquitquit, /abortabortabort, and SIGTERM at least 6s after the first", ev)
	}
	if got := tk.workFile(t, "final.txt"); strings.TrimSpace(got) == "" {
		t.Errorf("the final process did not run")
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// killByEnvPrefix SIGKILLs every process whose environment has a variable
// starting with prefix.
func killByEnvPrefix(prefix string) {
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, e := range envs {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(kv, prefix) {
				var pid int
				if _, err := fmt.Sscanf(e, "/proc/%d/environ", &pid); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				break
			}
		}
	}
}
