package observer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// Synthetic tasks in a Mesos work directory, written with the executor's
// own checkpoint writer.

// twoNetworks are the addresses of the synthetic two-network task.
var twoNetworks = []checkpoint.Network{
	{Name: "blue", Interface: "eth0", Labels: map[string]string{"zone": "a"}, Addresses: []string{"198.18.0.2/24", "2001:db8:1::2/64"}},
	{Name: "green", Interface: "eth1", Addresses: []string{"198.19.0.7/24", "2001:db8:2::7/64"}},
}

// syntheticTask is a running two-network task with five processes: web
// (a failed run 0, run 1 running), sidecar (running), setup (done),
// cleanup (never ran) and a killed one.
func syntheticTask(id, job string, instance int, start time.Time) checkpoint.Task {
	t := checkpoint.Task{
		TaskID: id, Name: "hello", Role: "www", Environment: "prod", Job: job, Instance: instance, User: "www",
		Hostname: "agent1", Sandbox: "/sandbox", LogDir: "/sandbox/.logs",
		Ports:    map[string]int{"http": 31000, "health": 31001},
		Networks: twoNetworks,
		Health:   &checkpoint.Health{State: checkpoint.HealthHealthy, Time: start.Add(3 * time.Second)},
		Serversets: []checkpoint.Serverset{
			{Path: "/aurora/www/prod/" + job, Network: "blue", Joined: true, Time: start.Add(3 * time.Second),
				Endpoint:   checkpoint.Endpoint{Host: "198.18.0.2", Port: 31000},
				Additional: map[string]checkpoint.Endpoint{"http": {Host: "198.18.0.2", Port: 31000}}},
			{Path: "/aurora/www/prod/" + job + "@green", Network: "green", Joined: true, Time: start.Add(3 * time.Second),
				Endpoint: checkpoint.Endpoint{Host: "198.19.0.7", Port: 31000}},
		},
	}
	t.AddState("TASK_STARTING", "launching", start)
	t.AddState("TASK_RUNNING", "healthy", start.Add(3*time.Second))
	t.AddRunnerState("ACTIVE", "", start)
	for _, p := range []string{"setup", "web", "sidecar", "cleanup", "reaper"} {
		t.AddProcess(p)
	}
	t.RunStarted("setup", 0, 1000, start)
	t.RunEnded("setup", 0, checkpoint.RunSuccess, 0, "", start.Add(time.Second))
	t.RunStarted("web", 0, 1001, start.Add(time.Second))
	t.RunEnded("web", 0, checkpoint.RunFailed, 1, "exit status 1", start.Add(2*time.Second))
	t.RunStarted("web", 1, 1002, start.Add(2*time.Second))
	t.RunStarted("sidecar", 0, 1003, start.Add(time.Second))
	t.RunStarted("reaper", 0, 1004, start.Add(time.Second))
	t.RunEnded("reaper", 0, checkpoint.RunKilled, -1, "signal: terminated", start.Add(2*time.Second))
	return t
}

// writeRun writes t as the executor would into a new run directory of
// the Mesos layout under root and returns that directory.
func writeRun(tb testing.TB, root, agent string, t checkpoint.Task) string {
	tb.Helper()
	run := filepath.Join(root, "slaves", agent, "frameworks", "fw-1", "executors", "thermos-"+t.TaskID, "runs", "c-"+t.TaskID)
	if err := os.MkdirAll(run, 0o755); err != nil {
		tb.Fatal(err)
	}
	w, err := checkpoint.NewWriter(run, t, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	// Mesos' "latest" symlink beside the run: it must not count twice.
	os.Symlink(run, filepath.Join(filepath.Dir(run), "latest"))
	return run
}

// writeLog writes a process run's log into the run directory.
func writeLog(tb testing.TB, run, process string, n int, stream, data string) {
	tb.Helper()
	dir := filepath.Join(run, ".logs", process, fmt.Sprint(n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stream), []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// manyTasks writes n synthetic tasks (a tenth of them finished) and
// returns the id of one of them.
func manyTasks(tb testing.TB, root string, n int) string {
	tb.Helper()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var id string
	for i := range n {
		id = fmt.Sprintf("www-prod-job%d-%d-%08x", i%50, i, i*2654435761)
		t := syntheticTask(id, fmt.Sprintf("job%d", i%50), i, start.Add(time.Duration(i)*time.Second))
		if i%10 == 0 {
			t.AddState("TASK_FINISHED", "all processes finished", start.Add(time.Hour))
		}
		writeRun(tb, root, "agent-1", t)
	}
	return id
}
