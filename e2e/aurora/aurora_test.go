package aurorae2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestHelloWorld: the hello world fixture goes STARTING, RUNNING,
// FINISHED, and its one run printed the rendered template.
func TestHelloWorld(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	tk := n.launch(t, "hello_world", fixture(t, "hello_world.json", nil), nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	want := fmt.Sprintf("hello world from instance 0 of task %s\n", tk.id)
	if got := tk.processLog(t, "hello", 0, "stdout"); got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if runs := tk.runs(t, "hello"); runs != 1 {
		t.Errorf("hello ran %d times, want once", runs)
	}
}

// TestOrderedWithFinal: ordering constraints hold and the final processes
// run after every regular one, in their own order. Each command line is
// wrapped to append "<process> start|end <unix ns>" to order.log, so the
// order is proven by the times the processes themselves wrote.
func TestOrderedWithFinal(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "ordered_final.json", func(doc map[string]any) {
		for _, p := range doc["task"].(map[string]any)["processes"].([]any) {
			pr := p.(map[string]any)
			name := pr["name"].(string)
			pr["cmdline"] = fmt.Sprintf(`echo "%[1]s start $(date +%%s%%N)" >> order.log; ( %[2]s ); rc=$?; echo "%[1]s end $(date +%%s%%N)" >> order.log; exit $rc`,
				name, pr["cmdline"])
		}
	})
	tk := n.launch(t, "ordered_final", job, nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)

	times := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(tk.workFile(t, "order.log")), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad order.log line %q", line)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad order.log line %q", line)
		}
		times[f[0]+" "+f[1]] = ns
	}
	before := func(a, b string) {
		t.Helper()
		ta, oka := times[a]
		tb, okb := times[b]
		if !oka || !okb || ta >= tb {
			t.Errorf("%q (%d) must come before %q (%d)", a, ta, b, tb)
		}
	}
	before("fetch end", "build start")
	before("build end", "publish start")
	for _, final := range []string{"archive", "cleanup"} {
		for _, regular := range []string{"fetch", "build", "publish"} {
			before(regular+" end", final+" start")
		}
	}
	before("archive end", "cleanup start")
	if got := tk.workFile(t, "archive.out"); got != "fetched\nbuilt\npublished\n" {
		t.Errorf("archive.out %q", got)
	}
	for _, p := range []string{"fetch", "build", "publish", "archive", "cleanup"} {
		if runs := tk.runs(t, p); runs != 1 {
			t.Errorf("%s ran %d times, want once", p, runs)
		}
	}
}

// TestCronBatch: the cron-style batch job fails its first run, is retried
// (max_failures 3, min_duration 1 s) and finishes; the run's logs show both.
func TestCronBatch(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	tk := n.launch(t, "cron_batch", fixture(t, "cron_batch.json", nil), nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if runs := tk.runs(t, "report"); runs != 2 {
		t.Fatalf("report ran %d times, want 2 (one failure, one success)", runs)
	}
	if got := tk.processLog(t, "report", 0, "stderr"); !strings.Contains(got, "transient failure") {
		t.Errorf("run 0 stderr %q", got)
	}
	if got := strings.TrimSpace(tk.workFile(t, "attempts")); got != "2" {
		t.Errorf("attempts %q, want 2", got)
	}
	if got := tk.workFile(t, "report.out"); got != "report for localhost\n" {
		t.Errorf("report.out %q, want the agent's host name rendered", got)
	}
}

// TestWebServiceHealthAndKill: the web service fixture (health port,
// initial_interval 5 s, interval 1 s) turns healthy after 2 s: the task is
// STARTING until then and RUNNING only after its first healthy answer. On
// KILL, /quitquitquit and then /abortabortabort are called, each waited
// for, before SIGTERM reaches the process.
func TestWebServiceHealthAndKill(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	tk := n.launch(t, "web_service", fixture(t, "web_service.json", nil), ports,
		map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})

	running := tk.await(t, mesos.TASK_RUNNING)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	if !running.GetHealthy() {
		t.Errorf("RUNNING without healthy=true: %v", running.TaskStatus.String())
	}
	ev := events(t, tk)
	if ev["healthy"].IsZero() {
		t.Fatalf("RUNNING, but the service never answered /health with ok; events %v", ev)
	}
	if at := statusTime(running); at.Before(ev["healthy"]) {
		t.Errorf("RUNNING sent at %v, before the first healthy answer at %v", at, ev["healthy"])
	}
	if d := ev["healthy"].Sub(ev["start"]); d < 2*time.Second {
		t.Errorf("healthy %v after start, want >= 2s (-healthy-after 2s)", d)
	}

	tk.kill(t, 20*time.Second)
	end := tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	ev = events(t, tk)
	quit, abort, term := ev["quitquitquit"], ev["abortabortabort"], ev["SIGTERM"]
	if quit.IsZero() || abort.IsZero() || term.IsZero() {
		t.Fatalf("events %v: want quitquitquit, abortabortabort and SIGTERM (final status %q)", ev, end.GetMessage())
	}
	// graceful_shutdown_wait_secs and shutdown_wait_secs are 1 in the
	// fixture; the helper ignores both requests, so each wait runs out.
	if d := abort.Sub(quit); d < time.Second {
		t.Errorf("/abortabortabort %v after /quitquitquit, want >= graceful_shutdown_wait_secs (1s)", d)
	}
	if d := term.Sub(abort); d < time.Second {
		t.Errorf("SIGTERM %v after /abortabortabort, want >= shutdown_wait_secs (1s)", d)
	}
	if got := tk.processLog(t, "server", 0, "stderr"); !strings.Contains(got, "listening on :"+strconv.Itoa(int(ports["health"]))) {
		t.Errorf("server stderr %q: want it listening on the assigned health port", got)
	}
}

// TestWebServiceNeverHealthy: a service that never answers ok fails with
// Thermos' "failed health check" message and is never RUNNING.
func TestWebServiceNeverHealthy(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	tk := n.launch(t, "web_unhealthy", fixture(t, "web_unhealthy.json", nil), ports,
		map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	end := tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_FAILED)
	if !strings.Contains(end.GetMessage(), "failed health check") {
		t.Errorf("message %q, want it to say \"failed health check\"", end.GetMessage())
	}
	if end.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
		t.Errorf("reason %v, want REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", end.GetReason())
	}
	ev := events(t, tk)
	if !ev["healthy"].IsZero() {
		t.Errorf("the service answered ok at %v; the test is wrong", ev["healthy"])
	}
	// The failed task is killed the graceful way too.
	if ev["SIGTERM"].IsZero() || ev["quitquitquit"].IsZero() || !ev["quitquitquit"].Before(ev["SIGTERM"]) {
		t.Errorf("events %v: want /quitquitquit before SIGTERM", ev)
	}
}

// TestKillWhileHealthFails: a service that drains on /quitquitquit stops
// answering its health checks while it is being killed. That is part of the
// kill, not a health failure: the task ends TASK_KILLED.
func TestKillWhileHealthFails(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	job := fixture(t, "web_service.json", func(doc map[string]any) {
		doc["health_check_config"] = map[string]any{
			"health_checker":           map[string]any{"http": map[string]any{}},
			"initial_interval_secs":    0.5,
			"interval_secs":            0.25,
			"max_consecutive_failures": 0,
		}
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = strings.Replace(pr["cmdline"].(string), "-healthy-after 2s", "-quit-stops-health", 1)
	})
	tk := n.launch(t, "web_service", job, ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	tk.await(t, mesos.TASK_RUNNING)
	tk.kill(t, 20*time.Second)
	end := tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	if strings.Contains(end.GetMessage(), "health") {
		t.Errorf("message %q: a kill is not a health failure", end.GetMessage())
	}
	if ev := events(t, tk); ev["SIGTERM"].IsZero() || !ev["quitquitquit"].Before(ev["SIGTERM"]) {
		t.Errorf("events %v: want /quitquitquit, then SIGTERM", ev)
	}
}

// TestRunsAsRole: as root, the executor runs the processes as the job's
// role (Thermos' setuid), and refuses a role with no such user with a
// message that names it, before anything runs.
func TestRunsAsRole(t *testing.T) {
	testenv.NeedRoot(t)
	t.Parallel()
	n := startNode(t)
	asRole := func(role string) []byte {
		return fixture(t, "hello_world.json", func(doc map[string]any) {
			doc["role"] = role
			pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
			pr["cmdline"] = "id -un; echo user={{thermos.user}}"
		})
	}
	t.Run("existing user", func(t *testing.T) {
		tk := n.launch(t, "hello_world", asRole("nobody"), nil, nil)
		tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		if got := tk.processLog(t, "hello", 0, "stdout"); got != "nobody\nuser=nobody\n" {
			t.Errorf("stdout %q, want the process to run as nobody", got)
		}
	})
	t.Run("missing user", func(t *testing.T) {
		const role = "dewar-no-such-user"
		tk := n.launch(t, "hello_world", asRole(role), nil, nil)
		end := tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_FAILED)
		// The task id holds the role too: look for the user, quoted.
		if !strings.Contains(end.GetMessage(), `user "`+role+`"`) {
			t.Errorf("message %q does not name the user %s", end.GetMessage(), role)
		}
		if _, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", ".logs", "hello")); !os.IsNotExist(err) {
			t.Errorf("the process was prepared or started (%v)", err)
		}
	})
}

// TestRunnerLoggerFlags: the executor's --runner-logger-* flags decide
// where process output goes: nowhere, or into files rotated at a size.
func TestRunnerLoggerFlags(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		// 2.5 MiB of x on stdout.
		pr["cmdline"] = "head -c 2621440 /dev/zero | tr '\\0' x"
	})
	t.Run("destination none", func(t *testing.T) {
		tk := n.launch(t, "hello_world", job, nil, nil, "--runner-logger-destination=none")
		tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		if _, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", ".logs", "hello", "0", "stdout")); !os.IsNotExist(err) {
			t.Errorf("stdout log exists (%v), want none", err)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		tk := n.launch(t, "hello_world", job, nil, nil,
			"--runner-logger-mode=rotate", "--runner-rotate-log-size-mb=1", "--runner-rotate-log-backups=1")
		tk.awaitTerminal(t)
		tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
		dir := filepath.Join(tk.sandbox, "sandbox", ".logs", "hello", "0")
		for name, want := range map[string]int64{"stdout": 512 << 10, "stdout.1": 1 << 20} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil || st.Size() != want {
				t.Errorf("%s: %v, size %d, want %d bytes", name, err, sizeOf(st), want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "stdout.2")); !os.IsNotExist(err) {
			t.Errorf("stdout.2 exists (%v): one backup was asked for", err)
		}
	})
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// TestHealthPortAlias: Aurora's common announce.portmap {"health": "http"}
// makes the http port the health port, as Thermos' resolve_ports does:
// the task is health-checked there (STARTING until healthy), the alias
// renders in {{thermos.ports[health]}}, and the kill calls the lifecycle
// endpoints on it before SIGTERM.
func TestHealthPortAlias(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http")
	job := fixture(t, "web_service.json", func(doc map[string]any) {
		doc["announce"] = map[string]any{"primary_port": "http", "portmap": map[string]any{"aurora": "http", "health": "http"}}
		hc := doc["health_check_config"].(map[string]any)
		hc["initial_interval_secs"], hc["interval_secs"] = 3.0, 0.5
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = `echo "health={{thermos.ports[health]}} env=$DEWAR_PORT_HEALTH"; exec ${DEWAR_TEST_WEBSERVER:-dewar-test-webserver} -http {{thermos.ports[http]}} -healthy-after 1s`
	})
	tk := n.launch(t, "web_service", job, ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	running := tk.await(t, mesos.TASK_RUNNING)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	ev := events(t, tk)
	if ev["healthy"].IsZero() || statusTime(running).Before(ev["healthy"]) {
		t.Errorf("RUNNING at %v, first healthy answer at %v: want RUNNING after a check on the http port", statusTime(running), ev["healthy"])
	}
	want := fmt.Sprintf("health=%d env=%d\n", ports["http"], ports["http"])
	if got := tk.processLog(t, "server", 0, "stdout"); got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	tk.kill(t, 20*time.Second)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	ev = events(t, tk)
	if ev["quitquitquit"].IsZero() || ev["abortabortabort"].IsZero() || ev["SIGTERM"].IsZero() ||
		!ev["quitquitquit"].Before(ev["abortabortabort"]) || !ev["abortabortabort"].Before(ev["SIGTERM"]) {
		t.Errorf("events %v: want /quitquitquit, /abortabortabort, SIGTERM in that order", ev)
	}
}

// TestHealthCheckSnooze: while .healthchecksnooze exists in the task's
// sandbox ($MESOS_DIRECTORY/sandbox, the processes' working directory and
// HOME; Thermos' health_checker.py), health checks count as passed, so a
// service that never answers ok still goes RUNNING.
func TestHealthCheckSnooze(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	job := fixture(t, "web_unhealthy.json", func(doc map[string]any) {
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = `touch "$MESOS_SANDBOX/sandbox/.healthchecksnooze" && ` + pr["cmdline"].(string)
	})
	tk := n.launch(t, "web_unhealthy", job, ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	tk.await(t, mesos.TASK_RUNNING)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	// Snoozed, the task can be RUNNING before the helper even started.
	tk.awaitEvent(t, "start", 20*time.Second)
	if ev := events(t, tk); !ev["healthy"].IsZero() {
		t.Fatalf("the service answered ok at %v; the test is wrong", ev["healthy"])
	}
	tk.kill(t, 20*time.Second)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
}

// TestBadInput: what the executor cannot run ends in TASK_FAILED naming
// the field, no process starts, and the executor exits cleanly (the
// harness waits for it) instead of crashing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	hello := fixture(t, "hello_world.json", nil)
	job, err := aurora.ParseJob(hello)
	if err != nil {
		t.Fatal(err)
	}
	good, err := aurora.BuildAssignedTask(job, hello, "bad-input", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	unknownVar, err := aurora.BuildAssignedTask(job, fixture(t, "hello_world.json", func(doc map[string]any) {
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = "echo {{thermos.ports[http]}}"
	}), "bad-input", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		data   []byte
		states []mesos.TaskState
		want   string
	}{
		{"truncated Thrift", good[:len(good)-7], []mesos.TaskState{mesos.TASK_FAILED}, "AssignedTask"},
		{"unallocated port", unknownVar, []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_FAILED}, "thermos.ports[http]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("bad-%d", time.Now().UnixNano())
			tk := n.launchData(t, "bad", id, tt.data, nil)
			end := tk.awaitTerminal(t)
			tk.expectStates(t, tt.states...)
			if !strings.Contains(end.GetMessage(), tt.want) || end.GetReason() != mesos.REASON_TASK_INVALID {
				t.Errorf("%v %q, want REASON_TASK_INVALID naming %s", end.GetReason(), end.GetMessage(), tt.want)
			}
			if _, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", ".logs")); !os.IsNotExist(err) {
				t.Errorf("process logs exist (%v): something ran", err)
			}
		})
	}
}

// TestProcessLoggers: a process' own Thermos logger wins over the
// executor's flags: one process logs nowhere, another rotates at 1 MiB
// keeping one backup, a third follows the executor (file, standard).
func TestProcessLoggers(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	const big = "head -c 2621440 /dev/zero | tr '\\0' x" // 2.5 MiB
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["task"].(map[string]any)["processes"] = []any{
			map[string]any{"name": "quiet", "cmdline": "echo unseen", "logger": map[string]any{"destination": "none"}},
			map[string]any{"name": "rotated", "cmdline": big,
				"logger": map[string]any{"destination": "file", "mode": "rotate", "rotate": map[string]any{"log_size": 1 << 20, "backups": 1}}},
			map[string]any{"name": "plain", "cmdline": big},
		}
	})
	tk := n.launch(t, "hello_world", job, nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	size := func(process, file string) int64 {
		st, err := os.Stat(filepath.Join(tk.sandbox, "sandbox", ".logs", process, "0", file))
		if err != nil {
			return -1
		}
		return st.Size()
	}
	for _, c := range []struct {
		process, file string
		want          int64 // -1: absent
	}{
		{"quiet", "stdout", -1},
		{"rotated", "stdout", 512 << 10},
		{"rotated", "stdout.1", 1 << 20},
		{"rotated", "stdout.2", -1},
		{"plain", "stdout", 2621440},
		{"plain", "stdout.1", -1},
	} {
		if got := size(c.process, c.file); got != c.want {
			t.Errorf("%s %s: size %d, want %d (-1: absent)", c.process, c.file, got, c.want)
		}
	}
}
