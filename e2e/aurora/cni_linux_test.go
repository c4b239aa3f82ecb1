package aurorae2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestCNIService runs the cni_service fixture on two real CNI bridge
// networks, blue and green, with the whole node inside a network namespace
// of the test's own: `dewar-agent run` (under nsenter, as the isolator's doc
// asks) attaches the container, the real executor discovers its addresses,
// the shell health check sees {{mesos.ip}}, and the service, bound to
// {{mesos.ip}}, serves what {{mesos.ips[blue]}} and {{mesos.ips[green]}}
// rendered to: the addresses the agent reports. Ctrl-C kills it.
func TestCNIService(t *testing.T) {
	plugins := testenv.CNIPluginDir(t)
	t.Parallel()
	// The node: its namespace and two bridge networks (random names, so
	// that parallel tests never meet), which replace the fixture's blue
	// and green.
	node := e2etest.NewNode(t)
	ns, dir, confDir := node.Name, node.Dir, node.ConfigDir
	blue := node.BridgeNetwork(t, "198.18.91.0/24")
	green := node.BridgeNetwork(t, "198.18.92.0/24")
	agentBin := testenv.Binary(t, "dewar-agent")
	executorBin := testenv.Binary(t, "dewar-executor")
	web := recordingServer(t)

	rename := strings.NewReplacer(`"name": "blue"`, `"name": "`+blue.Name+`"`, `"name": "green"`, `"name": "`+green.Name+`"`,
		"[blue]", "["+blue.Name+"]", "[green]", "["+green.Name+"]")
	// Processes get Thermos' environment, not the executor's: the helper's
	// path goes into the job itself.
	jobJSON := renderEnv([]byte(rename.Replace(string(fixture(t, "cni_service.json", nil)))), map[string]string{"DEWAR_TEST_WEBSERVER": web})
	job, err := aurora.ParseJob(jobJSON)
	if err != nil {
		t.Fatal(err)
	}
	const httpPort = 31080 // inside the container's own namespace: always free
	taskID := "root-devel-cni_web-0-" + testenv.RandomHex(3)
	data, err := aurora.BuildAssignedTask(job, jobJSON, taskID, 0, map[string]int32{"http": httpPort})
	if err != nil {
		t.Fatal(err)
	}
	// The TaskInfo as mesos-go's JSON: data is base64, the executor runs
	// dewar-executor in a container on the job's networks (what the
	// scheduler copies from MesosJob.networks).
	var nets []map[string]any
	for _, n := range job.Networks {
		var labels []map[string]string
		for k, v := range n.Labels {
			labels = append(labels, map[string]string{"key": k, "value": v})
		}
		nets = append(nets, map[string]any{"name": n.Name, "labels": map[string]any{"labels": labels}})
	}
	taskInfo := map[string]any{
		"name":     job.Name,
		"task_id":  map[string]string{"value": taskID},
		"agent_id": map[string]string{"value": ""},
		"data":     data,
		"executor": map[string]any{
			"executor_id": map[string]string{"value": "thermos-" + taskID},
			"name":        aurora.ExecutorName,
			"command": map[string]any{
				"value": executorBin, "shell": false, "arguments": []string{executorBin},
				"environment": map[string]any{"variables": []map[string]string{{"name": "DEWAR_TEST_WEBSERVER", "value": web}}},
			},
			"container": map[string]any{"type": "MESOS", "network_infos": nets},
		},
	}
	b, err := json.Marshal(taskInfo)
	if err != nil {
		t.Fatal(err)
	}
	taskFile := filepath.Join(dir, "task.json")
	if err := os.WriteFile(taskFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	work := filepath.Join(dir, "work")
	// Not CommandContext: its SIGKILL on return would leave the agent no
	// time to remove the container's namespace; the cleanup stops it.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, agentBin, "run", "--work-dir", work,
		"--network-cni-config-dir", confDir, "--network-cni-plugins-dir", plugins, taskFile)
	stderr := &testenv.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// nsenter execs: the PID is dewar-agent's. Whatever happens, it ends.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 64)
	out := &testenv.Buffer{}
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	output := func() string { return out.String() + "\nstderr:\n" + stderr.String() }
	state := regexp.MustCompile(`^(TASK_[A-Z_]+) task=` + regexp.QuoteMeta(taskID) + ` `)
	// next waits for the next update line of the task.
	next := func() string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("dewar-agent ended early:\n%s", output())
				}
				if m := state.FindStringSubmatch(l); m != nil {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("no update in time:\n%s", output())
			}
		}
	}
	if l := next(); !strings.HasPrefix(l, "TASK_STARTING ") {
		t.Fatalf("first update %q, want TASK_STARTING\n%s", l, output())
	}
	running := next()
	if !strings.HasPrefix(running, "TASK_RUNNING ") {
		t.Fatalf("second update %q, want TASK_RUNNING (the shell health check saw {{mesos.ip}})\n%s", running, output())
	}
	blueIP := regexp.MustCompile(regexp.QuoteMeta(blue.Name) + `=(198\.18\.91\.\d+)`).FindStringSubmatch(running)
	greenIP := regexp.MustCompile(regexp.QuoteMeta(green.Name) + `=(198\.18\.92\.\d+)`).FindStringSubmatch(running)
	if blueIP == nil || greenIP == nil {
		t.Fatalf("RUNNING update %q does not carry both networks' addresses", running)
	}

	// From the node (the test's namespace), the service answers on the
	// primary address {{mesos.ip}} (blue's: the first network) with the
	// addresses its templates rendered.
	// The socket is made inside the node's namespace (http.Transport dials
	// on goroutines of its own, which netnstest.Run would not cover).
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = netnstest.Run(ns, func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	var body string
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := client.Get("http://" + net.JoinHostPort(blueIP[1], fmt.Sprint(httpPort)) + "/")
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			body, err = string(b), rerr
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service on %s:%d: %v\n%s", blueIP[1], httpPort, err, output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if want := fmt.Sprintf("blue=%s green=%s\n", blueIP[1], greenIP[1]); body != want {
		t.Errorf("service says %q, want %q", body, want)
	}

	// Ctrl-C: the agent shuts the executor down, which kills the task.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if l := next(); !strings.HasPrefix(l, "TASK_KILLED ") {
		t.Errorf("update after Ctrl-C %q, want TASK_KILLED\n%s", l, output())
	}
	// The agent then removes the container and exits; a second Ctrl-C
	// (the cleanup's) must not cut that short.
	for range lines {
	}
}
