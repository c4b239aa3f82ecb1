package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// child is one run of a process.
type child struct {
	p   *proc
	run int
	pid int
}

// exit is the end of a run, sent by its wait goroutine.
type exit struct {
	c    *child
	at   time.Time
	code int // exit status, -1 for a signal
	// signaled: a signal ended the run (bash itself, not a child of it):
	// Thermos' coordinator sees rc < 0 and marks the run KILLED, a loss
	// (thermos/core/process.py, Process.execute).
	signaled bool
	status   string // "exit status 3", "signal: killed"
}

// spawn starts one run: `bash -c cmdline` in a new session, with its output
// wired to the run's log directory.
func (r *Runner) spawn(p *proc, run int) (*child, error) {
	procDir := filepath.Join(r.logDir(), p.spec.Name)
	if err := r.makeDir(procDir); err != nil {
		return nil, err
	}
	dir := filepath.Join(procDir, strconv.Itoa(run))
	if err := r.makeDir(dir); err != nil {
		return nil, err
	}
	cfg := r.opt.Log
	if p.spec.Log != nil {
		cfg = *p.spec.Log
	}
	stdout, err := r.openOutput(cfg, dir, "stdout", os.Stdout)
	if err != nil {
		return nil, err
	}
	stderr, err := r.openOutput(cfg, dir, "stderr", os.Stderr)
	if err != nil {
		stdout.abort()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:   r.bash,
		Args:   []string{"bash", "-c", p.spec.Cmdline},
		Env:    r.runEnv(),
		Dir:    r.opt.WorkDir,
		Stdout: stdout.writer(),
		Stderr: stderr.writer(),
		// A session of its own: the run's tree is found by session id, and
		// signals to it never reach the executor.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if im := r.opt.Image; im != nil {
		// mesos-containerizer starts as root to change root and switches
		// to the user itself; Thermos setuids only its coordinator
		// (process.py, Process.execute: taskfs_isolated). It execs bash in
		// place, so the run's pid and session are bash's as usual.
		user := ""
		if r.id != nil {
			user = r.id.name
		}
		argv := im.Command(p.spec.Cmdline, user, im.MountPoint)
		cmd.Path, cmd.Args = argv[0], argv
	} else if r.id != nil {
		cmd.SysProcAttr.Credential = r.id.cred
	}
	c := &child{p: p, run: run}
	// Start under the registry lock: a concurrent sweep must never see this
	// child before it is registered, or it would take it for an orphan.
	reg.mu.Lock()
	err = cmd.Start()
	if err == nil {
		c.pid = cmd.Process.Pid
		reg.children[c.pid] = c
		reg.sessions[c.pid] = r
	}
	reg.mu.Unlock()
	stdout.started()
	stderr.started()
	if err != nil {
		stdout.abort()
		stderr.abort()
		return nil, fmt.Errorf("start bash for process %q: %w", p.spec.Name, err)
	}
	r.copy(stdout)
	r.copy(stderr)
	go r.wait(cmd, c)
	return c, nil
}

// thermosProfile is sourced by every run's bash when the work directory
// holds it, as Thermos does (it sets BASH_ENV).
const thermosProfile = ".thermos_profile"

func (r *Runner) runEnv() []string {
	profile := filepath.Join(r.opt.WorkDir, thermosProfile)
	if _, err := os.Stat(profile); err != nil {
		return r.env
	}
	if r.opt.Image != nil {
		// The same file, where bash inside the image sees it.
		profile = filepath.Join(r.opt.Image.MountPoint, thermosProfile)
	}
	return append(r.env[:len(r.env):len(r.env)], "BASH_ENV="+profile)
}

// wait reaps exactly this run's pid and reports how it ended. Before
// reaping it kills what the run left in its process group, as Thermos does
// after every run: while the run is an unreaped zombie its pid, and so its
// group id, cannot be reused by anyone else.
func (r *Runner) wait(cmd *exec.Cmd, c *child) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	r.killGroup(c.pid)
	err := cmd.Wait()
	ex := exit{c: c, at: time.Now(), status: "exit status 0"}
	reg.mu.Lock()
	if reg.children[c.pid] == c {
		delete(reg.children, c.pid)
	}
	reg.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ex.code = ee.ExitCode()
		ex.status = ee.ProcessState.String()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			ex.signaled = ws.Signaled()
		}
	default:
		ex.code = -1
		ex.status = err.Error()
	}
	// Never blocks: the channel has room for one run of every process.
	r.exits <- ex
}
