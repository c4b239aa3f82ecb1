package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill: Kill from outside ends the task KILLED, runs final processes
// when the regular ones stop in time, and SIGKILLs what ignores SIGTERM
// once grace runs out.
func TestKill(t *testing.T) {
	t.Parallel()
	final := Process{Name: "final", Cmdline: "echo ran > final.out", MaxFailures: 1, Final: true}
	tests := []struct {
		name      string
		regular   Process
		grace     time.Duration
		finalRuns bool
		minTime   time.Duration // Kill takes at least this long
	}{
		{"SIGTERM stops it, final runs", newProc("server", "echo up > up; sleep 1000"), 10 * time.Second, true, 0},
		{"ignores SIGTERM, SIGKILL after grace", newProc("stubborn", "trap '' TERM; echo up > up; sleep 1000"), 500 * time.Millisecond, false, 500 * time.Millisecond},
		{"retry forever, then killed", Process{Name: "crashloop", Cmdline: "echo up > up; exit 1", MinDuration: 20 * time.Millisecond}, 10 * time.Second, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := startTask(t, Task{Name: "k", MaxFailures: 1, FinalizationWait: time.Minute,
				Processes: []Process{tc.regular, final}})
			eventually(t, 10*time.Second, "the process to come up", func() bool {
				_, err := os.Stat(filepath.Join(tr.workDir, "up"))
				return err == nil
			})
			if tc.regular.MaxFailures == 0 {
				eventually(t, 10*time.Second, "five failed runs", func() bool { return tr.count(tc.regular.Name, EventFailed) >= 5 })
			}
			begin := time.Now()
			tr.r.Kill(context.Background(), tc.grace)
			took := time.Since(begin)
			select {
			case <-tr.r.Done():
			default:
				t.Fatal("Kill returned before the task ended")
			}
			res := tr.wait(time.Second)
			if res.State != StateKilled || !strings.HasPrefix(res.Message, "task killed") {
				t.Errorf("result %+v, want KILLED", res)
			}
			if took < tc.minTime || took > tc.grace+5*time.Second {
				t.Errorf("Kill took %s, want between %s and grace %s", took, tc.minTime, tc.grace)
			}
			_, err := os.Stat(filepath.Join(tr.workDir, "final.out"))
			if ran := err == nil; ran != tc.finalRuns {
				t.Errorf("final process ran: %v, want %v; events:\n%s", ran, tc.finalRuns, tr.dump())
			}
			if tr.count(tc.regular.Name, EventLost) != 1 && tc.regular.MaxFailures != 0 {
				t.Errorf("want one lost run of %s; events:\n%s", tc.regular.Name, tr.dump())
			}
		})
	}
}

// TestKillAfterEnd returns at once; a cancelled Start context kills.
func TestKillAfterEndAndContext(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "quick", MaxFailures: 1, Processes: []Process{newProc("q", "true")}})
	tr.wait(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tr.r.Kill(ctx, time.Hour)
	if ctx.Err() != nil {
		t.Error("Kill of an ended task waited")
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	r, err := Start(ctx2, Task{Name: "ctx", MaxFailures: 1, FinalizationWait: time.Hour,
		Processes: []Process{newProc("s", "sleep 1000")}},
		Options{Sandbox: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Running", r.Running)
	cancel2()
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the context did not end the task")
	}
	if res := r.Result(); res.State != StateKilled {
		t.Errorf("result %+v, want KILLED", res)
	}
}

// TestNothingSurvives: a process that double-forks a `sleep 1000`, inside
// its session or out of it (setsid), leaves nothing behind, whether the task
// is killed or ends by itself.
//
// Not parallel: an orphan that left its session, lost its parent and
// scrubbed its environment carries no mark of its task, so any Runner
// ending meanwhile in this test binary would kill it as its own (see the
// package comment); a sequential test runs while every parallel one waits.
func TestNothingSurvives(t *testing.T) {
	forks := map[string]string{
		"same session": "(sleep 1000 & echo $! > orphan.pid)",
		"own session":  "(setsid sleep 1000 & echo $! > orphan.pid)",
		"daemon-style": "(setsid bash -c 'sleep 1000 & echo $! > orphan.pid' &)",
		// Without the Runner's marker only the subreaper rule finds it.
		"scrubbed env": "(exec env -i setsid sleep 1000 & echo $! > orphan.pid)",
	}
	for name, fork := range forks {
		for _, kill := range []bool{true, false} {
			label := name + "/completes"
			if kill {
				label = name + "/killed"
			}
			t.Run(label, func(t *testing.T) {
				tr := startTask(t, Task{Name: "df", MaxFailures: 1, FinalizationWait: 10 * time.Second,
					Processes: []Process{newProc("forker", fork+"; while [ ! -e go ]; do sleep 0.02; done")}})
				pid := readPid(t, filepath.Join(tr.workDir, "orphan.pid"))
				eventually(t, 10*time.Second, "the orphan to run", func() bool { return alive(pid) })
				if kill {
					tr.r.Kill(context.Background(), 5*time.Second)
				} else if err := os.WriteFile(filepath.Join(tr.workDir, "go"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				res := tr.wait(30 * time.Second)
				want := StateSuccess
				if kill {
					want = StateKilled
				}
				if res.State != want {
					t.Errorf("result %+v, want %s", res, want)
				}
				if exists(pid) {
					t.Errorf("orphan %d survives the task (alive: %v)", pid, alive(pid))
				}
			})
		}
	}
}

// TestRunnersKeepTheirOrphans: a Runner that ends kills its own escaped
// orphans, never those of another Runner in the same process.
func TestRunnersKeepTheirOrphans(t *testing.T) {
	t.Parallel()
	a := startTask(t, Task{Name: "a", MaxFailures: 1, Processes: []Process{
		newProc("keeper", "(setsid sleep 1000 & echo $! > orphan.pid); sleep 1000")}})
	pid := readPid(t, filepath.Join(a.workDir, "orphan.pid"))
	eventually(t, 10*time.Second, "a's orphan to run", func() bool { return alive(pid) })
	for range 3 {
		b := startTask(t, Task{Name: "b", MaxFailures: 1, Processes: []Process{
			newProc("leaver", "(setsid sleep 1000 & echo $! > orphan.pid)")}})
		if res := b.wait(30 * time.Second); res.State != StateSuccess {
			t.Fatalf("b: %+v", res)
		}
		if bpid := readPid(t, filepath.Join(b.workDir, "orphan.pid")); exists(bpid) {
			t.Errorf("b's own orphan %d survives b", bpid)
		}
		if !alive(pid) {
			t.Fatalf("b's end killed a's orphan %d", pid)
		}
	}
	a.r.Kill(context.Background(), time.Second)
	if exists(pid) {
		t.Errorf("a's orphan %d survives a", pid)
	}
}

// TestExecutorChildrenUntouched: children the executor starts itself (a
// health-check command in its own process group) survive a task's end, and
// their exit status stays theirs to collect.
func TestExecutorChildrenUntouched(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
	})
	tr := startTask(t, Task{Name: "bystander", MaxFailures: 1, Processes: []Process{
		newProc("leaver", "(setsid sleep 1000 & echo $! > orphan.pid)")}})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v", res)
	}
	if !alive(cmd.Process.Pid) {
		t.Fatal("the end of a task killed a child the executor started itself")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := <-waited; !errors.As(err, &ee) || ee.String() != "signal: killed" {
		t.Errorf("Wait = %v, want the child's own status (signal: killed)", err)
	}
	waited <- nil // for the cleanup
}

// TestRunLeftoversKilled: what a run leaves in its process group is killed
// when the run exits, while the task goes on (Thermos kills the process
// tree after every run).
func TestRunLeftoversKilled(t *testing.T) {
	t.Parallel()
	tr := startTask(t, Task{Name: "leftovers", MaxFailures: 1, Processes: []Process{
		newProc("spawner", "sleep 1000 & echo $! > bg.pid"),
		newProc("keeper", "while [ ! -e go ]; do sleep 0.02; done"),
	}})
	pid := readPid(t, filepath.Join(tr.workDir, "bg.pid"))
	eventually(t, 10*time.Second, "spawner to exit", func() bool { return tr.count("spawner", EventExited) == 1 })
	eventually(t, 10*time.Second, "the background sleep to die", func() bool { return !alive(pid) })
	if st := tr.r.Result().State; st != "" {
		t.Fatalf("task ended (%s) before the check", st)
	}
	if err := os.WriteFile(filepath.Join(tr.workDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Errorf("result %+v", res)
	}
}
