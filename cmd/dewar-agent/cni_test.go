package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// probeExecutor records what an executor sees (environment, addresses,
// network namespace) and exits.
const probeExecutor = `#!/bin/sh
{ env; ip -o addr show; echo "NETNS_INODE=$(stat -L -c %i /proc/self/ns/net)"; } > "$MESOS_SANDBOX/probe.tmp"
mv "$MESOS_SANDBOX/probe.tmp" "$MESOS_SANDBOX/probe.txt"
`

// TestRunCNI plays a node inside a network namespace of its own:
// `dewar-agent run` attaches the executor's container to a real bridge
// network with the reference plugins, starts the executor inside it with
// MESOS_DOMAIN_SOCKET, merges the CNI addresses into the updates it prints,
// and removes the container's namespace when the executor exits. An unknown
// network fails the task with the isolator's message. With the real
// dewar-executor, the addresses it discovers equal the ones CNI returned.
func TestRunCNI(t *testing.T) {
	plugins := testenv.CNIPluginDir(t)
	node := e2etest.NewNode(t)
	ns, dir, confDir := node.Name, node.Dir, node.ConfigDir
	network := node.BridgeNetwork(t, "198.18.77.0/24").Name
	bin := testenv.Binary(t, "dewar-agent")
	probe := filepath.Join(dir, "probe.sh")
	writeFile(t, probe, probeExecutor, 0o755)

	dewarExecutor := testenv.Binary(t, "dewar-executor")
	// The agent runs a command task's executor by path, with no flags:
	// what an operator passes in Aurora's -thermos_executor_flags.
	withDefaultNets := filepath.Join(dir, "dewar-executor-default-networks")
	writeFile(t, withDefaultNets, fmt.Sprintf("#!/bin/sh\nexec %s --default-networks %s \"$@\"\n", dewarExecutor, network), 0o755)
	container := func(network string) string {
		return fmt.Sprintf(`{"type": "MESOS", "network_infos": [{"name": %q, "labels": {"labels": [{"key": "k", "value": "v"}]}}]}`, network)
	}
	// Each update from TASK_RUNNING on carries the executor's own view
	// (what it found on eth0) and then the agent's (what CNI returned):
	// they agree. TASK_STARTING goes out at launch, before the executor
	// looked: the agent's view alone.
	bothViews := func(t *testing.T, out string) {
		t.Helper()
		var states []string
		for _, m := range regexp.MustCompile(`(?m)^(TASK_\w+) task=probe-\S+ source=SOURCE_EXECUTOR .*addresses=(\S+) `).FindAllStringSubmatch(out, -1) {
			states = append(states, m[1])
			addrs := strings.Split(m[2], ",")
			views := 2
			if m[1] == "TASK_STARTING" {
				views = 1
			}
			if len(addrs) != views || addrs[0] != addrs[len(addrs)-1] || !strings.HasPrefix(addrs[0], network+"=198.18.77.") {
				t.Errorf("%s addresses %v, want %d view(s) of %s, equal", m[1], addrs, views, network)
			}
		}
		if strings.Join(states, " ") != "TASK_STARTING TASK_RUNNING TASK_FINISHED" {
			t.Errorf("updates %v, want STARTING, RUNNING, FINISHED, each with addresses:\n%s", states, out)
		}
	}

	for _, tt := range []struct {
		name      string
		container string // the task's ContainerInfo JSON; empty: none
		agentArgs []string
		executor  string
		exitCode  int
		check     func(t *testing.T, work, out string)
	}{
		{"real executor", container(network), nil, dewarExecutor, 0, func(t *testing.T, work, out string) { bothViews(t, out) }},
		// A task without a ContainerInfo (stock Aurora's, for a job without
		// an image) joins the agent's --default_container_info networks;
		// told their names (--default-networks), the executor reports the
		// addresses as if the task had named them.
		{"agent default container", "", []string{"--default-container-info", container(network)}, withDefaultNets, 0, func(t *testing.T, work, out string) { bothViews(t, out) }},
		{"known network", container(network), nil, probe, 1, func(t *testing.T, work, out string) {
			m := regexp.MustCompile(`(?m)^TASK_FAILED task=probe-\S+ source=SOURCE_AGENT reason=REASON_EXECUTOR_TERMINATED .*addresses=` + regexp.QuoteMeta(network) + `=(198\.18\.77\.\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no TASK_FAILED with the CNI address of %s in the output:\n%s", network, out)
			}
			probes, _ := filepath.Glob(filepath.Join(work, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "latest", "probe.txt"))
			if len(probes) != 1 {
				t.Fatalf("executor probe files: %v", probes)
			}
			b, err := os.ReadFile(probes[0])
			if err != nil {
				t.Fatal(err)
			}
			seen := string(b)
			if !strings.Contains(seen, "MESOS_DOMAIN_SOCKET="+filepath.Join(work, "agent.sock")) {
				t.Errorf("executor has no MESOS_DOMAIN_SOCKET to the agent's socket:\n%s", seen)
			}
			if !regexp.MustCompile(`eth0\s+inet ` + regexp.QuoteMeta(m[1]) + `/24`).MatchString(seen) {
				t.Errorf("the executor's eth0 does not have %s, the address the agent reports:\n%s", m[1], seen)
			}
			inode := regexp.MustCompile(`NETNS_INODE=(\d+)`).FindStringSubmatch(seen)
			if inode == nil {
				t.Fatalf("probe has no netns inode:\n%s", seen)
			}
			ents, _ := os.ReadDir("/run/netns")
			for _, e := range ents {
				var st syscall.Stat_t
				if syscall.Stat(filepath.Join("/run/netns", e.Name()), &st) == nil && fmt.Sprint(st.Ino) == inode[1] {
					t.Errorf("the container's network namespace %s was not removed", e.Name())
				}
			}
		}},
		{"unknown network", container("dewar-nope-" + testenv.RandomHex(3)), nil, probe, 1, func(t *testing.T, work, out string) {
			if !regexp.MustCompile(`(?m)^TASK_FAILED task=probe-\S+ source=SOURCE_AGENT reason=REASON_CONTAINER_LAUNCH_FAILED message=".*unknown CNI network \\"dewar-nope-`).MatchString(out) {
				t.Fatalf("no TASK_FAILED naming the unknown network:\n%s", out)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "work")
			task := filepath.Join(t.TempDir(), "task.json")
			taskJSON := `{"name": "probe", "command": {"value": "sleep 0.2"}}`
			if tt.container != "" {
				taskJSON = `{"name": "probe", "command": {"value": "sleep 0.2"}, "container": ` + tt.container + `}`
			}
			writeFile(t, task, taskJSON, 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			args := append([]string{bin, "run", "--work-dir", work, "--executor", tt.executor,
				"--network-cni-config-dir", confDir, "--network-cni-plugins-dir", plugins}, tt.agentArgs...)
			cmd := netnstest.Command(ctx, ns, append(args, task)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatalf("dewar-agent run: %v", err)
			}
			if code != tt.exitCode {
				t.Fatalf("dewar-agent run: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.exitCode, stdout.String(), stderr.String())
			}
			tt.check(t, work, stdout.String())
		})
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
