package observer

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetrics: /metrics counts tasks by state and shows each task's
// addresses per network, health, serverset membership, runs, and the CPU
// and RSS of a live run read from /proc.
func TestMetrics(t *testing.T) {
	f := newFixture(t)
	// A live process run, in a session of its own as sandbox starts them.
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	live := syntheticTask("t-live", "live", 0, time.Now().Add(-time.Second))
	live.RunStarted("sidecar", 0, cmd.Process.Pid, time.Now())
	writeRun(t, f.root, "agent-1", live)

	body := f.mustGet(t, "/metrics")
	for _, want := range []string{
		`dewar_tasks{state="TASK_RUNNING"} 2`,
		`dewar_tasks{state="TASK_FINISHED"} 1`,
		`dewar_tasks{state="UNREADABLE"} 1`,
		`dewar_task_addresses{interface="eth1",network="green",task_id="t-two"} 2`,
		`dewar_task_healthy{task_id="t-two"} 1`,
		`dewar_task_serverset_member{network="green",path="/aurora/www/prod/hello@green",task_id="t-two"} 1`,
		`dewar_process_runs{process="web",task_id="t-two"} 2`,
		`process_resident_memory_bytes`, // the observer's own
		`dewar_task_disk_bytes{task_id="t-two"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	m := regexp.MustCompile(`dewar_process_resident_memory_bytes\{process="sidecar",task_id="t-live"\} (\S+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no RSS for the live run:\n%s", grepLines(body, "dewar_process"))
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
		t.Errorf("RSS of the live run = %s", m[1])
	}
	// The task and process pages show the live run's CPU and RSS too.
	used := regexp.MustCompile(`<td class="cpu">\d+\.\d\d s</td><td class="rss">[\d.]+ [KMG]iB</td>`)
	for _, path := range []string{"/task/t-live", "/process/t-live/sidecar"} {
		if !used.MatchString(f.mustGet(t, path)) {
			t.Errorf("%s shows no CPU and RSS for the live run", path)
		}
	}
	if body := f.mustGet(t, "/j/process/t-live/sidecar"); !strings.Contains(body, `"used"`) || !strings.Contains(body, `"ram"`) {
		t.Errorf("/j/process of the live run has no usage: %s", body)
	}
	// Pids of the synthetic task t-two are not its processes (1002 is
	// someone else's or nobody's): no usage is made up for them.
	if strings.Contains(body, `dewar_process_cpu_seconds_total{process="web",task_id="t-two"}`) {
		t.Error("usage reported for a run whose pid does not match its start time")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
