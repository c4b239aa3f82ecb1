package mesose2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/mesostest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestImageTask: an Aurora task with a Mesos filesystem image under the
// real Mesos 1.12 agent, as an operator runs one (Aurora's
// docs/operations/configuration.md: --isolation=filesystem/linux,
// docker/runtime and --image_providers=docker; the image from a local
// registry). The agent provisions the image volume Aurora's scheduler puts
// on the executor (read-only, at "taskfs"); dewar-executor runs the
// process and its shell health check inside it through the agent's
// mesos-containerizer, as the role, which it adds to the image.
func TestImageTask(t *testing.T) {
	var registry string
	c := mesostest.New(t, mesostest.WithIsolation("filesystem/linux,docker/runtime,network/cni"),
		mesostest.WithAgentFlags(func(c *mesostest.Cluster) []string {
			registry = filepath.Join(c.Dir, "registry")
			return []string{"--image_providers=docker", "--docker_registry=" + registry,
				"--docker_store_dir=" + filepath.Join(c.Dir, "store"), "--image_provisioner_backend=copy"}
		}))
	containerizer := c.MesosHome() + "/libexec/mesos/mesos-containerizer"
	root := filepath.Join(c.Dir, "image-rootfs")
	e2etest.BusyboxRootFS(t, root)
	e2etest.DockerArchive(t, root, registry, "dewar-test", "latest")
	// The run directories below are the agent's to protect; the path to
	// them must be traversable, as on an agent.
	for d := c.Dir; d != "/" && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "aurora", "hello_world.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["role"] = "nobody"
	doc["health_check_config"] = map[string]any{
		"health_checker":        map[string]any{"shell": map[string]any{"shell_command": "grep -q " + e2etest.ImageMarker + " /etc/os-release"}},
		"initial_interval_secs": 0.5, "interval_secs": 0.25, "max_consecutive_failures": 40,
		"min_consecutive_successes": 1, "timeout_secs": 5.0,
	}
	pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
	pr["cmdline"] = `cat /etc/os-release; id -un; echo "pwd=$(pwd)"; test -e /opt/mesos || echo "host /opt/mesos not visible"; ` +
		`echo from-image > written.txt; sleep 2`
	jobJSON, _ := json.Marshal(doc)
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	id := "nobody-devel-hello_world-0-" + testenv.RandomHex(4)
	at := aurora.NewAssignedTask(job, jobJSON, aurora.Assignment{TaskID: id, SlaveHost: "dewar-mesos-node"})
	at.Task.Container = &aurora.Container{Mesos: &aurora.MesosContainer{Image: &aurora.Image{Docker: &aurora.DockerImage{Name: "dewar-test", Tag: "latest"}}}}
	data, err := aurora.EncodeAssignedTask(at)
	if err != nil {
		t.Fatal(err)
	}
	executor := c.Bin["dewar-executor"]
	task := map[string]any{
		"name": "hello_world", "task_id": map[string]string{"value": id}, "agent_id": map[string]string{"value": ""},
		"resources": []map[string]any{{"name": "cpus", "type": "SCALAR", "scalar": map[string]any{"value": 0.1}},
			{"name": "mem", "type": "SCALAR", "scalar": map[string]any{"value": 32}}},
		"data": data,
		"executor": map[string]any{
			"executor_id": map[string]string{"value": "thermos-" + id},
			"name":        aurora.ExecutorName,
			"command": map[string]any{"value": executor, "shell": false,
				"arguments": []string{executor, "--mesos-containerizer-path=" + containerizer}},
			// MesosTaskFactory.configureTaskForImage.
			"container": map[string]any{"type": "MESOS", "mesos": map[string]any{},
				"volumes": []map[string]any{{"container_path": "taskfs", "mode": "RO",
					"image": map[string]any{"type": "DOCKER", "docker": map[string]any{"name": "dewar-test:latest"}}}}},
		},
	}
	tb, _ := json.Marshal(task)
	taskFile := filepath.Join(c.Dir, "task.json")
	if err := os.WriteFile(taskFile, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := netnstest.Command(ctx, c.NS, c.MesosHome()+"/bin/mesos-execute", "--master="+mesostest.MasterAddr, "--task="+taskFile)
	cmd.Env = append(os.Environ(), "LIBPROCESS_IP=127.0.0.1")
	o, err := cmd.CombinedOutput()
	out := string(o)
	runs, _ := filepath.Glob(filepath.Join(c.AgentWork, "slaves", "*", "frameworks", "*", "executors", "thermos-"+id, "runs", "latest"))
	if len(runs) != 1 {
		t.Fatalf("no run directory of the executor: %v\nmesos-execute: %v\n%s", runs, err, out)
	}
	run, err := filepath.EvalSymlinks(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	executorLog, _ := os.ReadFile(filepath.Join(run, "stderr"))
	for _, want := range []string{"Received status update TASK_RUNNING", "Received status update TASK_FINISHED"} {
		if !strings.Contains(out, want) {
			t.Fatalf("mesos-execute saw no %q: %v\n%s\nexecutor log:\n%s", want, err, mesostest.Tail(out, 40), mesostest.Tail(string(executorLog), 30))
		}
	}
	stdout, err := os.ReadFile(filepath.Join(run, "sandbox", ".logs", "hello", "0", "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{e2etest.ImageMarker + "\n", "\nnobody\n", "pwd=/mnt/mesos/sandbox\n", "host /opt/mesos not visible\n"} {
		if !strings.Contains(string(stdout), want) {
			t.Errorf("the process's stdout lacks %q:\n%s", want, stdout)
		}
	}
	if w, err := os.ReadFile(filepath.Join(run, "sandbox", "written.txt")); err != nil || string(w) != "from-image\n" {
		t.Errorf("written.txt in the host's sandbox: %q, %v", w, err)
	}
	if !strings.Contains(string(executorLog), "remounting the task's image read-write") {
		t.Errorf("the agent did not mount the image volume read-only, or the executor did not remount it:\n%s", mesostest.Tail(string(executorLog), 30))
	}
}
