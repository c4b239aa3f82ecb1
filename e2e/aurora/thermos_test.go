package aurorae2e_test

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/testenv"
)

// Tests that dewar-executor is a drop-in for thermos_executor: an operator
// swaps the binary and changes nothing else (issue 10).

// announcerAuth is Aurora's examples/vagrant/config/announcer-auth.json.
const announcerAuth = `{"auth": [{"scheme": "digest", "credential": "user:pass"}],
 "acl": [{"scheme": "digest", "credential": "user:pass", "permissions": {"read": true, "create": true, "delete": true, "write": true}},
         {"scheme": "world", "credential": "anyone", "permissions": {"read": true, "delete": true}}]}`

// TestThermosCommandLine: the executor starts with Thermos' command line.
// Aurora's scheduler runs the executor through the shell as
// "<executor> <-thermos_executor_flags>" (ExecutorModule.makeExecutorCommand);
// the first case is the flags of Aurora's own packaging
// (examples/vagrant/systemd/aurora-scheduler.service), the second every
// flag of thermos_executor_main.py and of the twitter.common modules it
// runs under, in both of optparse's forms. Flags that cannot apply are
// logged once each, never fatal.
func TestThermosCommandLine(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	auth := filepath.Join(t.TempDir(), "announcer-auth.json")
	if err := os.WriteFile(auth, []byte(announcerAuth), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags string
		inert []string // flags that must be logged as having no effect
	}{
		{"aurora packaging",
			"--announcer-ensemble localhost:2181 --announcer-zookeeper-auth-config " + auth +
				" --mesos-containerizer-path=/usr/libexec/mesos/mesos-containerizer --log_to_stderr=google:INFO",
			[]string{"--log_to_stderr"}},
		{"every thermos flag",
			"--announcer-ensemble=localhost:2181 --announcer-serverset-path /aurora --announcer-allow-custom-serverset-path" +
				" --announcer-hostname=localhost --announcer-zookeeper-auth-config " + auth +
				" --mesos-containerizer-path /usr/libexec/mesos/mesos-containerizer --no-create-user" +
				" --sandbox-mount-point=/mnt/mesos/sandbox --execute-as-user root --nosetuid --nosetuid-health-checks" +
				" --runner-logger-destination=file --runner-logger-mode standard --runner-rotate-log-size-mb=100" +
				" --runner-rotate-log-backups 5 --preserve_env --stop_timeout_in_secs=120" +
				" --log_to_stderr=google:INFO --log_to_disk NONE --log_dir=. --log_simple --app_debug" +
				" --scribe_port 1463 --app_ignore_rc_file",
			[]string{"--log_to_stderr",
				"--log_to_disk", "--log_dir", "--log_simple", "--app_debug", "--scribe_port", "--app_ignore_rc_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobJSON := fixture(t, "hello_world.json", nil)
			job, err := aurora.ParseJob(jobJSON)
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("%s-%s-%s-0-%d", job.Role, job.Environment, job.Name, time.Now().UnixNano())
			data, err := aurora.BuildAssignedTask(job, jobJSON, id, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			shell := true
			tk := n.launchCommand(t, job.Name, id, data, &mesos.CommandInfo{Shell: &shell, Value: ptr(n.executor + " " + tc.flags)})
			tk.awaitTerminal(t)
			tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
			log := tk.executorLog()
			for _, f := range tc.inert {
				if got := strings.Count(log, `"flag":"`+f+`"`); got != 1 {
					t.Errorf("%s logged %d times as having no effect, want once\nexecutor log:\n%s", f, got, log)
				}
			}
		})
	}
}

// TestSandboxOwnership: under a Mesos directory that is root:root 0750,
// as Mesos >= 1.6 makes it, a task of a non-root role runs, and owns the
// Mesos directory and its 0700 sandbox as Thermos' DirectorySandbox.create
// makes them.
func TestSandboxOwnership(t *testing.T) {
	testenv.NeedRoot(t)
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["role"] = "nobody"
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = "id -un"
	})
	tk := n.launch(t, "hello_world", job, nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if got := tk.processLog(t, "hello", 0, "stdout"); got != "nobody\n" {
		t.Errorf("stdout %q, want the process to run as nobody", got)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{tk.sandbox, 0o750}, {filepath.Join(tk.sandbox, "sandbox"), 0o700}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != nobodyUID(t) {
			t.Errorf("%s owned by uid %d, want nobody", c.path, uid)
		}
	}
}

func nobodyUID(t *testing.T) uint32 {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		testenv.Missing(t, "user nobody: %v", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(uid)
}

// killJob is web_service with lifecycle waits of wait seconds each, a
// health check that passes at once, and a final process that records when
// it ran.
func killJob(t *testing.T, fixtureName string, wait int) []byte {
	return fixture(t, fixtureName, func(doc map[string]any) {
		lc := doc["lifecycle"].(map[string]any)["http"].(map[string]any)
		lc["graceful_shutdown_wait_secs"], lc["shutdown_wait_secs"] = wait, wait
		hc := doc["health_check_config"].(map[string]any)
		hc["initial_interval_secs"], hc["interval_secs"] = 1.0, 0.25
		task := doc["task"].(map[string]any)
		pr := task["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = strings.Replace(pr["cmdline"].(string), "-healthy-after 2s", "", 1)
		task["processes"] = append(task["processes"].([]any), map[string]any{
			"name": "cleanup", "cmdline": "date +%s%N > final.txt", "final": true,
			"max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5})
	})
}

// TestKillSequence: Thermos' kill, which the agent's shutdown grace period
// (5 s here) does not bound: /quitquitquit and graceful_shutdown_wait_secs,
// /abortabortabort and shutdown_wait_secs (3 s each: 6 s, more than the
// shutdown grace), then SIGTERM, then the final process. A service whose
// endpoints answer but never make it exit still gets its SIGTERM and its
// final process. Failing health checks kill the same way.
func TestKillSequence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fixture string
		kill    bool
		end     mesos.TaskState
	}{
		{"scheduler KILL", "web_service.json", true, mesos.TASK_KILLED},
		{"failing health checks", "web_unhealthy.json", false, mesos.TASK_FAILED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t)
			ports := freePorts(t, "http", "health")
			tk := n.launch(t, "web", killJob(t, tc.fixture, 3), ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
			if tc.kill {
				tk.await(t, mesos.TASK_RUNNING)
				tk.killWith(t, nil) // Aurora's KILL has no kill policy
			}
			end := tk.awaitTerminal(t)
			if end.GetState() != tc.end {
				t.Fatalf("ended %v %q, want %v\nexecutor log:\n%s", end.GetState(), end.GetMessage(), tc.end, tk.executorLog())
			}
			ev := events(t, tk)
			quit, abort, term := ev["quitquitquit"], ev["abortabortabort"], ev["SIGTERM"]
			if quit.IsZero() || abort.IsZero() || term.IsZero() {
				t.Fatalf("events %v: want quitquitquit, abortabortabort and SIGTERM\nexecutor log:\n%s", ev, tk.executorLog())
			}
			if d := abort.Sub(quit); d < 3*time.Second {
				t.Errorf("/abortabortabort %v after /quitquitquit, want >= graceful_shutdown_wait_secs (3s)", d)
			}
			if d := term.Sub(abort); d < 3*time.Second {
				t.Errorf("SIGTERM %v after /abortabortabort, want >= shutdown_wait_secs (3s)", d)
			}
			var finalNS int64
			if _, err := fmt.Sscan(tk.workFile(t, "final.txt"), &finalNS); err != nil {
				t.Fatalf("final.txt: %v", err)
			}
			if final := time.Unix(0, finalNS); final.Before(term) {
				t.Errorf("the final process ran at %v, before the SIGTERM at %v", final, term)
			}
		})
	}
}

// TestKillPolicyBoundsTermToKill: a kill policy's grace period is the time
// from SIGTERM to SIGKILL (Mesos' KillPolicy), not a bound on the lifecycle
// endpoints before it: with 2 s + 2 s of lifecycle waits and a grace period
// of 2 s, SIGTERM comes after both waits, and a process that ignores it is
// SIGKILLed about 2 s later.
func TestKillPolicyBoundsTermToKill(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	job := fixture(t, "web_service.json", func(doc map[string]any) {
		lc := doc["lifecycle"].(map[string]any)["http"].(map[string]any)
		lc["graceful_shutdown_wait_secs"], lc["shutdown_wait_secs"] = 2, 2
		hc := doc["health_check_config"].(map[string]any)
		hc["initial_interval_secs"], hc["interval_secs"] = 1.0, 0.25
		task := doc["task"].(map[string]any)
		pr := task["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = strings.Replace(pr["cmdline"].(string), "-healthy-after 2s", "", 1)
		task["processes"] = append(task["processes"].([]any), map[string]any{
			"name": "stubborn", "cmdline": `trap 'echo TERM >> stubborn.log' TERM; while :; do sleep 0.1; done`,
			"max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5})
	})
	tk := n.launch(t, "web_service", job, ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	tk.await(t, mesos.TASK_RUNNING)
	tk.kill(t, 2*time.Second)
	end := tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	ev := events(t, tk)
	quit, term := ev["quitquitquit"], ev["SIGTERM"]
	if quit.IsZero() || ev["abortabortabort"].IsZero() || term.IsZero() {
		t.Fatalf("events %v: want quitquitquit, abortabortabort and SIGTERM", ev)
	}
	if d := term.Sub(quit); d < 4*time.Second {
		t.Errorf("SIGTERM %v after /quitquitquit, want >= 4s: the grace period must not cut the lifecycle waits", d)
	}
	if got := tk.workFile(t, "stubborn.log"); !strings.Contains(got, "TERM") {
		t.Errorf("stubborn.log %q: the stubborn process got no SIGTERM", got)
	}
	// SIGKILL comes 2 s after SIGTERM; the rest is margin for a slow
	// machine, far below Thermos' one-minute preemption wait. The SIGTERM
	// time is when the web server noticed it, which lags the executor's
	// send by as much as a loaded machine delays the process: hence the
	// lower margin.
	if d := statusTime(end).Sub(term); d < 2*time.Second-250*time.Millisecond || d > 12*time.Second {
		t.Errorf("TASK_KILLED %v after SIGTERM, want the 2s grace period (and a margin)", d)
	}
}

// TestShutdownDuringKill: a SHUTDOWN in the middle of a long kill ends it
// within the shutdown grace period (5 s): the remaining lifecycle waits are
// skipped, the processes get SIGTERM and then SIGKILL, and the executor's
// own TASK_KILLED reaches the agent before it would destroy the container.
func TestShutdownDuringKill(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ports := freePorts(t, "http", "health")
	tk := n.launch(t, "web", killJob(t, "web_service.json", 30), ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)})
	tk.await(t, mesos.TASK_RUNNING)
	tk.killWith(t, nil)
	tk.awaitEvent(t, "quitquitquit", 20*time.Second)
	start := time.Now()
	if err := n.agent.ShutdownFramework(context.Background(), n.fw.ID.Value); err != nil {
		t.Fatal(err)
	}
	end := tk.awaitTerminal(t)
	if end.GetState() != mesos.TASK_KILLED || end.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Fatalf("ended %v from %v %q, want TASK_KILLED from the executor", end.GetState(), end.GetSource(), end.GetMessage())
	}
	if d := end.received.Sub(start); d > 5*time.Second {
		t.Errorf("TASK_KILLED %v after SHUTDOWN, want within the 5s grace period", d)
	}
	if ev := events(t, tk); ev["SIGTERM"].IsZero() {
		t.Errorf("events %v: no SIGTERM before the SIGKILL", ev)
	}
}

// TestThermosLayout: where Thermos puts things, which log shippers,
// `aurora task run` and docs rely on: the task's sandbox is
// $MESOS_DIRECTORY/sandbox, the processes' cwd and HOME; logs are in
// sandbox/.logs/<process>/<run>/; shell health checks run in
// $MESOS_DIRECTORY (the check below passes only there).
func TestThermosLayout(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["health_check_config"] = map[string]any{
			"health_checker": map[string]any{"shell": map[string]any{
				"shell_command": `test "$(pwd -P)" = "$(cd "$MESOS_SANDBOX" && pwd -P)"`}},
			"initial_interval_secs": 0.5, "interval_secs": 0.25, "max_consecutive_failures": 2,
			"min_consecutive_successes": 0, "timeout_secs": 5.0, // 0: accepted, as the Aurora client does
		}
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = `echo "home=$HOME pwd=$PWD"; sleep 3`
	})
	tk := n.launch(t, "hello_world", job, nil, nil)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	sb := filepath.Join(tk.sandbox, "sandbox")
	if got, want := tk.processLog(t, "hello", 0, "stdout"), "home="+sb+" pwd="+sb+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

// TestThermosEnvironment: processes get Thermos' environment (HOME, USER,
// LOGNAME, PATH and dewar's documented variables), not the executor's,
// unless the executor runs with --preserve_env.
func TestThermosEnvironment(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
		pr["cmdline"] = `echo "leak=${DEWAR_TEST_EXECUTOR_ONLY-unset} user=$USER logname=$LOGNAME path=${PATH:+set}"`
	})
	env := map[string]string{"DEWAR_TEST_EXECUTOR_ONLY": "leaked"}
	for _, tc := range []struct {
		name  string
		flags []string
		leak  string
	}{
		{"default", nil, "unset"},
		{"--preserve_env", []string{"--preserve_env"}, "leaked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := n.launch(t, "hello_world", job, nil, env, tc.flags...)
			tk.awaitTerminal(t)
			tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
			want := "leak=" + tc.leak + " user=root logname=root path=set\n"
			if got := tk.processLog(t, "hello", 0, "stdout"); got != want {
				t.Errorf("stdout %q, want %q", got, want)
			}
		})
	}
}

// TestSignalerTimeoutFromEnvironment: AURORA_HTTP_SIGNALER_TIMEOUT_SECS in
// the executor's environment bounds each lifecycle request, as Thermos'
// HttpSignaler: a service that takes 2 s to answer /quitquitquit is heard
// with a 4 s timeout, so the graceful wait (1 s) follows the answer; with
// the default 1 s it is not, and /abortabortabort comes after 1 s.
func TestSignalerTimeoutFromEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		env      string
		min, max time.Duration // /quitquitquit → /abortabortabort
	}{
		{"4s", "4", 2*time.Second + time.Second, 10 * time.Second},
		// The helper stamps a request when it reads it, a little after
		// the executor sent it and started the signaler's clock.
		{"default", "", time.Second - 100*time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t)
			ports := freePorts(t, "http", "health")
			job := fixture(t, "web_service.json", func(doc map[string]any) {
				hc := doc["health_check_config"].(map[string]any)
				hc["initial_interval_secs"], hc["interval_secs"] = 1.0, 0.25
				pr := doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)
				pr["cmdline"] = strings.Replace(pr["cmdline"].(string), "-healthy-after 2s", "-lifecycle-delay 2s", 1)
			})
			env := map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)}
			if tc.env != "" {
				env["AURORA_HTTP_SIGNALER_TIMEOUT_SECS"] = tc.env
			}
			tk := n.launch(t, "web", job, ports, env)
			tk.await(t, mesos.TASK_RUNNING)
			tk.kill(t, 20*time.Second)
			tk.awaitTerminal(t)
			ev := events(t, tk)
			quit, abort := ev["quitquitquit"], ev["abortabortabort"]
			if quit.IsZero() || abort.IsZero() {
				t.Fatalf("events %v: want quitquitquit and abortabortabort", ev)
			}
			if d := abort.Sub(quit); d < tc.min || d > tc.max {
				t.Errorf("/abortabortabort %v after /quitquitquit, want %v to %v", d, tc.min, tc.max)
			}
		})
	}
}
