package aurorae2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// mesosContainerizer is where ../shared/mesos installs Mesos' launcher.
const mesosContainerizer = "/opt/mesos/libexec/mesos/mesos-containerizer"

// testImage is the image the tests' tasks name, "name:tag" as Aurora's
// scheduler writes a Docker image into the volume
// (MesosTaskFactory.configureTaskForImage).
const testImage = "dewar-test:latest"

// imageMarker is in the image's /etc/os-release and nowhere on the host.
const imageMarker = e2etest.ImageMarker

// busyboxImage builds a busybox root filesystem as dir/<testImage>: the
// image directory dewar-agent's --image-dir takes.
func busyboxImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e2etest.BusyboxRootFS(t, filepath.Join(dir, testImage))
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// imageTask encodes job as Aurora's scheduler sends a task with
// container = Mesos(image=DockerImage(name, tag)) or Docker(image): the
// container in the AssignedTask, and for an image the executor's
// ContainerInfo with the image Volume at container path "taskfs"
// (MesosTaskFactory.configureTaskForImage; getDockerContainerInfo gives a
// Docker task a DOCKER ContainerInfo, which the fake agent does not run:
// there the executor runs as the agent starts it).
func imageTask(t *testing.T, jobJSON []byte, c *aurora.Container) (id string, data []byte, ci *mesos.ContainerInfo) {
	t.Helper()
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	id = fmt.Sprintf("%s-%s-%s-0-%d", job.Role, job.Environment, job.Name, time.Now().UnixNano())
	at := aurora.NewAssignedTask(job, jobJSON, aurora.Assignment{TaskID: id, SlaveHost: "localhost"})
	at.Task.Container = c
	data, err = aurora.EncodeAssignedTask(at)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mesos != nil && c.Mesos.Image != nil {
		name, tag, _ := strings.Cut(testImage, ":")
		if c.Mesos.Image.Docker.Name+":"+c.Mesos.Image.Docker.Tag != name+":"+tag {
			t.Fatalf("tests name the image %s", testImage)
		}
		ci = &mesos.ContainerInfo{
			Type:  mesos.ContainerInfo_MESOS.Enum(),
			Mesos: &mesos.ContainerInfo_MesosInfo{},
			Volumes: []mesos.Volume{{
				ContainerPath: "taskfs",
				Mode:          mesos.RO.Enum(),
				Image:         &mesos.Image{Type: mesos.Image_DOCKER.Enum(), Docker: &mesos.Image_Docker{Name: testImage}},
			}},
		}
	}
	return id, data, ci
}

func testImageContainer() *aurora.Container {
	name, tag, _ := strings.Cut(testImage, ":")
	return &aurora.Container{Mesos: &aurora.MesosContainer{Image: &aurora.Image{Docker: &aurora.DockerImage{Name: name, Tag: tag}}}}
}

// launchImage launches jobJSON with the test image under dewar-executor
// with flags.
func (n *node) launchImage(t *testing.T, jobJSON []byte, c *aurora.Container, flags ...string) *task {
	t.Helper()
	id, data, ci := imageTask(t, jobJSON, c)
	shell := false
	return n.launchContainer(t, "image", id, data, &mesos.CommandInfo{
		Value: &n.executor, Shell: &shell, Arguments: append([]string{n.executor}, flags...),
	}, ci)
}

// TestFilesystemImage: a task with a Mesos filesystem image runs its
// processes and its shell health check inside the image through the real
// mesos-containerizer, as Thermos: the process sees the image's files, not
// the host's; it runs as the role, which the executor added to the image's
// /etc/passwd; its working directory and HOME are the sandbox at
// --sandbox-mount-point, and what it writes there and its logs land in the
// task's sandbox on the host. The health check passes only inside the
// image, so TASK_RUNNING proves it ran there.
func TestFilesystemImage(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := os.Stat(mesosContainerizer); err != nil {
		testenv.Missing(t, "Mesos' launcher %s: install Mesos (make deps runs ../shared/mesos/install.sh): %v", mesosContainerizer, err)
	}
	t.Parallel()
	images := busyboxImage(t)
	n := startNodeWith(t, func(c *fakeagent.Config) { c.ImageDir = images })
	job := func(cmdline string) []byte {
		return fixture(t, "hello_world.json", func(doc map[string]any) {
			doc["role"] = "nobody"
			doc["health_check_config"] = map[string]any{
				"health_checker": map[string]any{"shell": map[string]any{
					"shell_command": "grep -q " + imageMarker + " /etc/os-release && test -f written.txt"}},
				"initial_interval_secs": 0.5, "interval_secs": 0.25, "max_consecutive_failures": 40,
				"min_consecutive_successes": 1, "timeout_secs": 5.0,
			}
			pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
			pr["cmdline"] = cmdline
		})
	}
	t.Run("runs inside the image as the role", func(t *testing.T) {
		const cmdline = `cat /etc/os-release; id -un; echo "pwd=$(pwd) home=$HOME sandbox=$MESOS_SANDBOX"; grep '^nobody:' /etc/passwd; ` +
			`test -e /opt/mesos || echo "host /opt/mesos not visible"; echo from-image > written.txt; exec sleep 60`
		tk := n.launchImage(t, job(cmdline), testImageContainer(), "--mesos-containerizer-path="+mesosContainerizer)
		tk.await(t, mesos.TASK_RUNNING)
		out := tk.processLog(t, "hello", 0, "stdout")
		for _, want := range []string{
			imageMarker + "\n",
			"\nnobody\n",
			"pwd=/mnt/mesos/sandbox home=/mnt/mesos/sandbox sandbox=/mnt/mesos/sandbox\n",
			"\nnobody:",
			"host /opt/mesos not visible\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s\nexecutor log:\n%s", want, out, tk.processLog(t, "hello", 0, "stderr"), tk.executorLog())
			}
		}
		if got := tk.workFile(t, "written.txt"); got != "from-image\n" {
			t.Errorf("written.txt in the host's sandbox is %q, want what the process wrote into its cwd", got)
		}
		fi, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", "written.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != nobodyUID(t) {
			t.Errorf("written.txt owned by uid %d, want nobody's: the process did not run as the role", uid)
		}
		// The agent mounted the volume read-only, as Aurora asks and Mesos
		// >= 1.10 does; the executor made it writable in its own namespace.
		if log := tk.executorLog(); !strings.Contains(log, "remounting the task's image read-write") {
			t.Errorf("the executor did not remount the read-only image volume:\n%s", log)
		}
		// The launcher's own lines go to the run's stderr, as under Thermos.
		if errLog := tk.processLog(t, "hello", 0, "stderr"); !strings.Contains(errLog, "Changing root to") {
			t.Errorf("stderr lacks mesos-containerizer's %q:\n%s", "Changing root to", errLog)
		}
		tk.kill(t, 2*time.Second)
		tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	})
	t.Run("no-create-user leaves the image's users alone", func(t *testing.T) {
		tk := n.launchImage(t, job(`echo "nobody entries: $(grep -c '^nobody:' /etc/passwd)"; id -u; touch written.txt; exec sleep 60`),
			testImageContainer(), "--mesos-containerizer-path="+mesosContainerizer, "--no-create-user")
		tk.await(t, mesos.TASK_RUNNING)
		out := tk.processLog(t, "hello", 0, "stdout")
		if want := fmt.Sprintf("nobody entries: 0\n%d\n", nobodyUID(t)); out != want {
			t.Errorf("stdout %q, want %q (no user added, still running as nobody's uid)", out, want)
		}
		tk.kill(t, 2*time.Second)
		tk.awaitTerminal(t)
	})
	t.Run("missing mesos-containerizer fails the task", func(t *testing.T) {
		const missing = "/nonexistent/libexec/mesos/mesos-containerizer"
		tk := n.launchImage(t, job("echo ran on the host; touch ran"), testImageContainer(), "--mesos-containerizer-path="+missing)
		end := tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_FAILED)
		for _, want := range []string{"filesystem image", missing, "does not exist", "--mesos-containerizer-path"} {
			if !strings.Contains(end.GetMessage(), want) {
				t.Errorf("message %q lacks %q", end.GetMessage(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", ".logs", "hello")); !os.IsNotExist(err) {
			t.Errorf("the process was prepared or started (%v)", err)
		}
	})
	t.Run("no provisioned image fails the task", func(t *testing.T) {
		// The task asks for an image but the executor's container has no
		// image volume: nothing at taskfs.
		id, data, _ := imageTask(t, job("echo ran on the host; touch ran"), testImageContainer())
		shell := false
		tk := n.launchContainer(t, "image", id, data, &mesos.CommandInfo{Value: &n.executor, Shell: &shell,
			Arguments: []string{n.executor, "--mesos-containerizer-path=" + mesosContainerizer}}, nil)
		end := tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_FAILED)
		for _, want := range []string{"taskfs", "--isolation=filesystem/linux"} {
			if !strings.Contains(end.GetMessage(), want) {
				t.Errorf("message %q lacks %q", end.GetMessage(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", "ran")); !os.IsNotExist(err) {
			t.Errorf("the process ran on the host (%v)", err)
		}
	})
}

// TestDockerRunsAsContainerUser: a Docker task's processes run as the
// executor's user, the container's, without setuid to the role and
// without giving the sandbox to it (DockerDirectorySandbox has no user;
// DefaultThermosTaskRunnerProvider._get_role gives Docker tasks none).
func TestDockerRunsAsContainerUser(t *testing.T) {
	testenv.NeedRoot(t)
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["role"] = "nobody"
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = "id -u; echo user=$USER"
	})
	tk := n.launchImage(t, job, &aurora.Container{Docker: &aurora.DockerContainer{Image: "debian:bookworm"}})
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if got := tk.processLog(t, "hello", 0, "stdout"); got != "0\nuser=root\n" {
		t.Errorf("stdout %q, want the executor's user (root), not the role", got)
	}
	fi, err := os.Stat(filepath.Join(tk.sandbox, "sandbox"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Errorf("the sandbox was given to uid %d; a Docker task's sandbox keeps its owner", uid)
	}
}
