package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/shell"
)

// eventBuffer is how many events wait for a slow reader before the oldest
// are dropped.
const eventBuffer = 256

// Runner runs one task. Create it with Start.
type Runner struct {
	marker  string // value of markerEnv in every process of this Runner
	log     *zap.Logger
	task    Task
	opt     Options
	bash    string
	env     []string
	id      *identity // nil: run as the executor's user
	regular plan
	final   plan

	exits  chan exit          // run ends, from the per-run wait goroutines
	killc  chan time.Duration // Kill requests
	events chan Event
	done   chan struct{}

	started atomic.Bool
	copiers sync.WaitGroup // goroutines copying piped output into logs
	pipes   pipeSet        // read ends of those pipes, closed if a writer never goes away

	mu     sync.Mutex // guards result
	result Result

	// Owned by the loop goroutine.
	state    State
	killed   bool      // Kill (or ctx) forced the task to end KILLED
	healthy  bool      // the regular plan ended within task max_failures
	deadline time.Time // end of CLEANING+FINALIZING, set on entering CLEANING
	failures []string  // messages of failed processes, in the order they failed
	dropped  int       // events dropped because nobody read them
	// leftovers is how many untracked processes of the task the SIGTERM of
	// CLEANING found; FINALIZING waits for them too (Thermos waits for the
	// whole tree), SIGKILLing nothing that is still alive.
	leftovers int
	reapAt    time.Time // when to reap orphans after a SIGCHLD; zero: none pending
}

// Start validates the task and the options, prepares the work and log
// directories, and starts running the task. Nothing runs when it returns an
// error. Cancelling ctx kills the task at once (Kill with no grace).
func Start(ctx context.Context, t Task, opt Options) (*Runner, error) {
	deps, err := validate(t)
	if err != nil {
		return nil, fmt.Errorf("invalid task %q: %w", t.Name, err)
	}
	if err := checkLogConfig(&opt.Log); err != nil {
		return nil, err
	}
	t.Processes = append([]Process(nil), t.Processes...) // Log defaults are filled in below
	for i := range t.Processes {
		if lc := t.Processes[i].Log; lc != nil {
			c := *lc
			if err := checkLogConfig(&c); err != nil {
				return nil, fmt.Errorf("process %q logger: %w", t.Processes[i].Name, err)
			}
			t.Processes[i].Log = &c
		}
	}
	if opt.Sandbox == "" {
		return nil, fmt.Errorf("no sandbox directory given: set Options.Sandbox ($MESOS_SANDBOX)")
	}
	if opt.WorkDir == "" {
		opt.WorkDir = filepath.Join(opt.Sandbox, "sandbox")
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	bash, err := shell.Bash()
	if err != nil {
		return nil, err
	}
	id, err := lookupUser(opt.User)
	if err != nil {
		return nil, err
	}
	home := opt.WorkDir
	if opt.Image != nil {
		if err := opt.Image.check(); err != nil {
			return nil, err
		}
		// Thermos: HOME and cwd are the sandbox as the image sees it
		// (thermos/core/process.py, Process.execute, taskfs_isolated).
		home = opt.Image.MountPoint
	}
	marker := newMarker()
	r := &Runner{
		marker: marker,
		log:    opt.Logger.With(zap.String("task", t.Name)),
		task:   t,
		opt:    opt,
		bash:   bash,
		env:    processEnv(opt.Env, id, home, marker),
		id:     id,
		exits:  make(chan exit, len(t.Processes)), // at most one run per process in flight
		killc:  make(chan time.Duration),
		events: make(chan Event, eventBuffer),
		done:   make(chan struct{}),
		state:  StateActive,
	}
	if err := r.createSandbox(); err != nil {
		return nil, err
	}
	if err := r.makeDir(r.logDir()); err != nil {
		return nil, err
	}
	if im := opt.Image; im != nil {
		if err := im.prepare(opt.Sandbox, opt.WorkDir, id, r.log); err != nil {
			im.release(r.log)
			return nil, err
		}
	}
	byName := make(map[string]*proc, len(t.Processes))
	for _, p := range t.Processes {
		pp := &proc{spec: p}
		byName[p.Name] = pp
		if p.Final {
			r.final = append(r.final, pp)
		} else {
			r.regular = append(r.regular, pp)
		}
	}
	for name, ds := range deps {
		for _, d := range ds {
			byName[name].deps = append(byName[name].deps, byName[d])
		}
	}
	registerRunner(r)
	go r.loop(ctx)
	return r, nil
}

// processEnv sets the identity variables as Thermos does whatever the user:
// HOME is the task's sandbox (the work directory), USER and LOGNAME the
// user the processes run as (thermos/core/process.py, Process.execute).
// It is never nil: exec.Cmd would hand the executor's own environment (and
// its agent token) to the task. It adds the Runner's marker.
func processEnv(env []string, id *identity, workDir, marker string) []string {
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == markerEnv || k == "HOME" || k == "USER" || k == "LOGNAME" {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "HOME="+workDir)
	if name := userName(id); name != "" {
		out = append(out, "USER="+name, "LOGNAME="+name)
	}
	return append(out, markerEnv+"="+marker)
}

// logDir is where the process logs go: <WorkDir>/.logs, Thermos' default
// log_dir (thermos/core/runner.py, TaskRunner.__init__).
func (r *Runner) logDir() string { return filepath.Join(r.opt.WorkDir, ".logs") }

// createSandbox makes the task's sandbox (WorkDir) and, when the processes
// run as a given user, gives it and the Mesos directory (Sandbox) to that
// user, with the sandbox 0700: Thermos' DirectorySandbox.create
// (aurora/executor/common/sandbox.py). Mesos >= 1.6 creates the Mesos
// directory root:root 0750 (src/slave/paths.cpp, createSandboxDirectory),
// so without this a task user cannot reach its own sandbox.
func (r *Runner) createSandbox() error {
	if err := os.MkdirAll(r.opt.WorkDir, 0o755); err != nil {
		return fmt.Errorf("create the task sandbox %s: %w", r.opt.WorkDir, err)
	}
	if r.id == nil {
		return nil
	}
	if filepath.Dir(r.opt.WorkDir) == filepath.Clean(r.opt.Sandbox) {
		if err := r.chown(r.opt.Sandbox); err != nil {
			return err
		}
	}
	if err := r.chown(r.opt.WorkDir); err != nil {
		return err
	}
	if err := os.Chmod(r.opt.WorkDir, 0o700); err != nil {
		return fmt.Errorf("chmod 0700 the task sandbox %s: %w", r.opt.WorkDir, err)
	}
	return nil
}

// makeDir creates dir (and parents) and gives it to the task's user.
func (r *Runner) makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return r.chown(dir)
}

func (r *Runner) chown(path string) error {
	if r.id == nil || r.id.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(r.id.cred.Uid), int(r.id.cred.Gid)); err != nil {
		return fmt.Errorf("give %s to user %q: %w", path, r.id.name, err)
	}
	return nil
}

// Events delivers process starts and exits and task state changes. The
// runner never blocks on it: when eventBuffer events are unread, the oldest
// is dropped. The channel is closed after the terminal state's event.
func (r *Runner) Events() <-chan Event { return r.events }

// Running reports whether at least one process has started.
func (r *Runner) Running() bool { return r.started.Load() }

// Done is closed when the task has ended and nothing it started survives.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Result is how the task ended; its State is "" until Done is closed.
func (r *Runner) Result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result
}

// Kill ends the task as Thermos' kill does: SIGTERM to every process tree,
// final processes once the regular ones are gone, SIGKILL to everything
// left when grace runs out. It returns when nothing the task started
// survives. If ctx ends first, Kill escalates to SIGKILL at once and still
// waits, because returning earlier would break that promise; the wait after
// SIGKILL is bounded by the runner's own sweep limit.
func (r *Runner) Kill(ctx context.Context, grace time.Duration) {
	select {
	case r.killc <- grace:
	case <-r.done:
		return
	case <-ctx.Done():
	}
	select {
	case <-r.done:
		return
	case <-ctx.Done():
	}
	select {
	case r.killc <- 0:
	case <-r.done:
		return
	}
	<-r.done
}

// loop is the runner: the only goroutine that changes the plan.
func (r *Runner) loop(ctx context.Context) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	defer signal.Stop(sigc)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ctxDone := ctx.Done()
	r.emitState()
	for {
		wake := r.step(time.Now())
		if r.state.Terminal() {
			break
		}
		wake = earliest(wake, r.reapAt)
		if wake.IsZero() {
			wake = time.Now().Add(time.Hour)
		}
		timer.Reset(time.Until(wake))
		select {
		case ex := <-r.exits:
			r.onExit(ex)
		case g := <-r.killc:
			r.onKill(g)
		case <-ctxDone:
			ctxDone = nil
			r.onKill(0)
		case <-sigc:
			// Batch: most SIGCHLDs are tracked runs, which exec.Cmd.Wait
			// reaps; a /proc scan per signal would cost more than the run.
			if r.reapAt.IsZero() {
				r.reapAt = time.Now().Add(reapDelay)
			}
		case <-timer.C:
		}
		if !r.reapAt.IsZero() && !time.Now().Before(r.reapAt) {
			r.reapAt = time.Time{}
			r.reapOrphans()
		}
	}
	r.sweep()
	r.finish()
}

// step advances the state machine as far as it can at now and returns when
// it wants to run again (zero: only on an exit or a kill).
func (r *Runner) step(now time.Time) time.Time {
	for {
		switch r.state {
		case StateActive:
			r.launch(r.regular, now)
			underLimit := r.task.MaxFailures == 0 || r.regular.count(failed) < r.task.MaxFailures
			if r.regular.complete() || !underLimit || r.regular.deadlocked() {
				r.healthy = underLimit && r.regular.complete()
				r.enterCleaning(now)
				continue
			}
			return r.regular.nextReady(now)
		case StateCleaning:
			inFlight := r.regular.count(running) + r.final.count(running)
			// The count from the SIGTERM scan spares a rescan when
			// nothing but the tracked runs was alive.
			if inFlight == 0 && (r.leftovers == 0 || !r.anyLeft()) {
				r.leftovers = 0
				r.setState(StateFinalizing)
				continue
			}
			if !now.Before(r.deadline) {
				r.log.Warn("finalization wait exceeded while cleaning; skipping final processes")
				r.endTask()
				return time.Time{}
			}
			if inFlight == 0 {
				// Only untracked leftovers remain: they send no exit, so poll.
				return earliest(r.deadline, now.Add(pollInterval))
			}
			return r.deadline
		case StateFinalizing:
			r.launch(r.final, now)
			if r.final.complete() || r.final.deadlocked() || !now.Before(r.deadline) {
				r.endTask()
				return time.Time{}
			}
			return earliest(r.deadline, r.final.nextReady(now))
		default:
			return time.Time{}
		}
	}
}

const (
	pollInterval = 20 * time.Millisecond
	reapDelay    = 500 * time.Millisecond
	// startRetryDelay is the least wait before retrying a run that could
	// not start.
	startRetryDelay = time.Second
)

func earliest(a, b time.Time) time.Time {
	if b.IsZero() || (!a.IsZero() && a.Before(b)) {
		return a
	}
	return b
}

// launch starts the runnable processes of pl within max_concurrency.
func (r *Runner) launch(pl plan, now time.Time) {
	room := -1
	if r.task.MaxConcurrency > 0 {
		room = r.task.MaxConcurrency - pl.count(running)
	}
	for _, p := range pl.runnable(now) {
		if room == 0 {
			return
		}
		r.startRun(p, now)
		room--
	}
}

func (r *Runner) startRun(p *proc, now time.Time) {
	run := p.runs
	p.runs++
	c, err := r.spawn(p, run)
	if err != nil {
		r.log.Error("cannot start process", zap.String("process", p.spec.Name), zap.Int("run", run), zap.Error(err))
		p.status = "cannot start: " + err.Error()
		r.emit(Event{Time: now, Process: p.spec.Name, Run: run, Kind: EventFailed, ExitCode: -1, Message: p.status})
		p.notBefore = now.Add(startRetryDelay)
		r.settle(p, now, false)
		return
	}
	p.state = running
	p.cur = c
	r.started.Store(true)
	r.log.Info("process started", zap.String("process", p.spec.Name), zap.Int("run", run), zap.Int("pid", c.pid))
	r.emit(Event{Process: p.spec.Name, Run: run, Kind: EventStarted, PID: c.pid})
}

// settle applies a run's outcome and records a process that failed for good.
func (r *Runner) settle(p *proc, at time.Time, ok bool) {
	p.ended(at, ok)
	if p.state == failed {
		r.recordFailure(p)
	}
}

// recordFailure keeps the message of a process that failed for good, with
// the reason a full sandbox gives (checked now: the task's cleanup may
// free the space before the task ends).
func (r *Runner) recordFailure(p *proc) {
	msg := p.failureMessage()
	if note := diskFullNote(r.opt.WorkDir, unix.Statfs); note != "" {
		msg += ": " + note
	}
	r.failures = append(r.failures, msg)
}

// onExit handles the end of a tracked run.
func (r *Runner) onExit(ex exit) {
	p := ex.c.p
	p.cur = nil
	counts := r.state == StateActive || (r.state == StateFinalizing && p.spec.Final)
	fields := []zap.Field{zap.String("process", p.spec.Name), zap.Int("run", ex.c.run), zap.String("status", ex.status)}
	switch {
	case !counts:
		p.state = waiting
		r.log.Info("process stopped by the runner", fields...)
		r.emit(Event{Time: ex.at, Process: p.spec.Name, Run: ex.c.run, Kind: EventLost, ExitCode: ex.code, Message: ex.status})
	case ex.signaled:
		r.log.Info("process killed by a signal: lost, not a failure; it runs again after min_duration", fields...)
		r.emit(Event{Time: ex.at, Process: p.spec.Name, Run: ex.c.run, Kind: EventLost, ExitCode: ex.code, Message: ex.status})
		p.status = ex.status
		p.lost(ex.at)
		if p.state == failed {
			r.recordFailure(p)
		}
	case ex.code == 0:
		r.log.Info("process exited", fields...)
		r.emit(Event{Time: ex.at, Process: p.spec.Name, Run: ex.c.run, Kind: EventExited, Message: ex.status})
		r.settle(p, ex.at, true)
	default:
		r.log.Info("process failed", fields...)
		p.status = ex.status
		r.emit(Event{Time: ex.at, Process: p.spec.Name, Run: ex.c.run, Kind: EventFailed, ExitCode: ex.code, Message: ex.status})
		r.settle(p, ex.at, false)
	}
}

func (r *Runner) onKill(grace time.Duration) {
	r.log.Info("kill requested", zap.Duration("grace", grace))
	d := time.Now().Add(grace)
	switch r.state {
	case StateActive:
		r.killed = true
		r.deadline = d
		r.enterCleaning(time.Now())
	case StateCleaning, StateFinalizing:
		r.killed = true
		if d.Before(r.deadline) {
			r.deadline = d
		}
	}
}

// enterCleaning stops what still runs of the regular plan with SIGTERM
// (daemons, ephemerals, and the rest when the task failed or is killed).
func (r *Runner) enterCleaning(now time.Time) {
	if r.deadline.IsZero() {
		r.deadline = now.Add(r.task.FinalizationWait)
	}
	r.setState(StateCleaning)
	r.leftovers = r.signalAll(syscall.SIGTERM) - r.regular.count(running)
}

// endTask picks the terminal state; the loop then sweeps.
func (r *Runner) endTask() {
	switch {
	case r.killed:
		r.state = StateKilled
	case r.healthy:
		r.state = StateSuccess
	default:
		r.state = StateFailed
	}
}

func (r *Runner) setState(s State) {
	r.state = s
	r.log.Info("task state", zap.String("state", string(s)))
	r.emitState()
}

func (r *Runner) emitState() { r.emit(Event{Kind: EventState, TaskState: r.state}) }

// emit sends without blocking, dropping the oldest event when full. Only the
// loop goroutine sends.
func (r *Runner) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.dropped += chans.SendDropOldest(r.events, e)
}

// message explains the terminal state.
func (r *Runner) message() string {
	var parts []string
	switch r.state {
	case StateKilled:
		parts = append(parts, "task killed")
	case StateSuccess:
		return "all processes finished"
	}
	parts = append(parts, r.failures...)
	if b := r.regular.blocked(); len(b) > 0 && r.state == StateFailed {
		parts = append(parts, fmt.Sprintf("processes %q never ran: they are ordered after a process that failed", b))
	}
	if len(parts) == 0 {
		return "task failed"
	}
	return strings.Join(parts, "; ")
}

// finish publishes the result once nothing survives.
func (r *Runner) finish() {
	msg := r.message()
	r.log.Info("task ended", zap.String("state", string(r.state)), zap.String("message", msg), zap.Int("dropped_events", r.dropped))
	forgetRunner(r)
	if r.opt.Image != nil {
		r.opt.Image.release(r.log)
	}
	r.pipes.waitOrClose(&r.copiers, copierGrace)
	r.mu.Lock()
	r.result = Result{State: r.state, Message: msg}
	r.mu.Unlock()
	r.emit(Event{Kind: EventState, TaskState: r.state, Message: msg})
	close(r.events)
	close(r.done)
}
