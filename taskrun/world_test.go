package taskrun

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
)

// world is a fake of everything a task talks to: addresses, ZooKeeper, the
// processes, the health monitor and the lifecycle endpoints. Every call the
// task makes, and every status it reports, goes into one log, in the order
// they happened, so that a test reads the task's life as a list of steps.
//
// The fakes take (fake) time where the real parts would, so that a test in
// a synctest bubble sees a wait the task should not have made.
type world struct {
	t *testing.T

	// Set before the launch.
	addrs        []netdiscover.NetworkAddrs // what discovery finds
	hangDiscover bool                       // discovery finds nothing and times out
	hangDial     bool                       // ZooKeeper never answers; the connect times out
	hangLeave    bool                       // ZooKeeper stops answering before the withdrawal
	processes    []string                   // the processes start reports started (default: the task's first)
	// useSandbox starts the real processes (sandbox.Start) instead of fakes.
	useSandbox bool
	// stepFile, when set, gets every step too, one a line, so that the
	// real processes can write their own steps between them.
	stepFile string

	watch  chan []netdiscover.NetworkAddrs // address changes the test sends
	health chan health.Event               // health verdicts the test sends

	mu       sync.Mutex
	steps    []string
	statuses []executor.Status
	runner   *fakeRunner
	healthMu sync.Once
}

func newWorld(t *testing.T) *world {
	return &world{
		t:      t,
		addrs:  []netdiscover.NetworkAddrs{netAddrs("blue", 0, "198.18.0.2/24")},
		watch:  make(chan []netdiscover.NetworkAddrs, 1),
		health: make(chan health.Event, 2),
	}
}

func netAddrs(name string, i int, prefixes ...string) netdiscover.NetworkAddrs {
	n := netdiscover.NetworkAddrs{Name: name, Interface: netdiscover.InterfaceName(i)}
	for _, p := range prefixes {
		n.Addrs = append(n.Addrs, netip.MustParsePrefix(p))
	}
	return n
}

func (w *world) record(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	step := fmt.Sprintf(format, args...)
	w.steps = append(w.steps, step)
	if w.stepFile != "" {
		f, err := os.OpenFile(w.stepFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			w.t.Error(err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, step)
	}
}

// log is the steps so far.
func (w *world) log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.steps...)
}

func (w *world) report(st executor.Status) {
	w.mu.Lock()
	w.statuses = append(w.statuses, st)
	w.mu.Unlock()
	w.record("%s", st.State)
}

func (w *world) lastStatus() executor.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.statuses) == 0 {
		w.t.Fatal("no status reported")
	}
	return w.statuses[len(w.statuses)-1]
}

func (w *world) status(state mesos.TaskState) (executor.Status, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.statuses {
		if st.State == state {
			return st, true
		}
	}
	return executor.Status{}, false
}

func (w *world) deps() deps {
	d := deps{
		addrs:     fakeAddrs{w},
		dial:      w.dial,
		start:     w.start,
		monitor:   w.monitor,
		lifecycle: func(_ *zap.Logger, _ time.Duration) lifecycle { return fakeLifecycle{w} },
	}
	if w.useSandbox {
		d.start = realDeps().start
	}
	return d
}

// launch starts info with the world's fakes, as the executor would: the
// task's networks are the world's ("blue" unless changed), the ensemble
// is set, processes run as the test's user.
func (w *world) launch(ctx context.Context, info mesos.TaskInfo, edit func(*Options, *executor.LaunchEnv)) executor.Task {
	w.t.Helper()
	env := executor.LaunchEnv{
		Config:    executor.Config{ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
	}
	if len(w.addrs) > 0 {
		env.Executor.Container = &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum()}
		for _, n := range w.addrs {
			env.Executor.Container.NetworkInfos = append(env.Executor.Container.NetworkInfos, mesos.NetworkInfo{Name: ptr(n.Name)})
		}
	}
	opt := Options{
		NoSetuid:         true,
		DiscoveryTimeout: 10 * time.Second,
		Announcer:        &announcer.Config{Ensemble: []string{"zk.invalid:2181"}, ConnectTimeout: 30 * time.Second},
		Logger:           zaptest.NewLogger(w.t),
	}
	if edit != nil {
		edit(&opt, &env)
	}
	l := New(opt)
	l.deps = w.deps()
	return l.Launch(ctx, env, info, w.report)
}

// fakeAddrs is the container's addresses.
type fakeAddrs struct{ w *world }

func (a fakeAddrs) Discover(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) ([]netdiscover.NetworkAddrs, error) {
	a.w.record("discover")
	if a.w.hangDiscover {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opt.TentativeWait):
			return nil, fmt.Errorf("eth0: %w", netdiscover.ErrInterfaceMissing)
		}
	}
	return a.w.addrs, nil
}

func (a fakeAddrs) Host(ctx context.Context, hostname string, opt netdiscover.Options) (netdiscover.HostAddrs, error) {
	a.w.record("discover host")
	return netdiscover.HostAddrs{Hostname: hostname, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, nil
}

func (a fakeAddrs) Watch(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) (addressWatch, error) {
	a.w.record("watch")
	// As netdiscover.Watch: the first value is the state now.
	select {
	case a.w.watch <- a.w.addrs:
	default:
	}
	return fakeWatch{a.w.watch}, nil
}

type fakeWatch struct {
	c chan []netdiscover.NetworkAddrs
}

func (f fakeWatch) Updates() <-chan []netdiscover.NetworkAddrs { return f.c }
func (f fakeWatch) Close() error                               { return nil }

// dial is the ZooKeeper connect.
func (w *world) dial(ctx context.Context, cfg announcer.Config, a *zkAnnouncement) (membership, func(), error) {
	w.record("connect")
	if w.hangDial {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("announce: %w", ctx.Err())
		case <-time.After(cfg.ConnectTimeout):
			return nil, nil, fmt.Errorf("announce: %w", announcer.ErrUnreachable)
		}
	}
	return fakeMembership{w}, func() { w.record("session closed") }, nil
}

// fakeMembership takes a second for every ZooKeeper operation.
type fakeMembership struct{ w *world }

func (m fakeMembership) op(ctx context.Context, what string) error {
	select {
	case <-time.After(time.Second):
		m.w.record("%s", what)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m fakeMembership) join(ctx context.Context, f *Facts) error {
	return m.op(ctx, "join "+describe(f.Networks))
}

func (m fakeMembership) update(ctx context.Context, f *Facts) error {
	return m.op(ctx, "update "+describe(f.Networks))
}

func (m fakeMembership) leave(ctx context.Context) error {
	if m.w.hangLeave {
		<-ctx.Done()
		m.w.record("leave timed out")
		return ctx.Err()
	}
	return m.op(ctx, "leave")
}

// start starts fake processes: each reports its start at once; they run
// until killed or finished by the test.
func (w *world) start(ctx context.Context, task sandbox.Task, opt sandbox.Options) (processes, error) {
	names := w.processes
	if names == nil {
		names = []string{task.Processes[0].Name}
	}
	w.record("start %s", strings.Join(names, ","))
	r := &fakeRunner{w: w, events: make(chan sandbox.Event, 16), done: make(chan struct{})}
	for _, n := range names {
		r.events <- sandbox.Event{Kind: sandbox.EventStarted, Process: n, Time: time.Now()}
	}
	w.mu.Lock()
	w.runner = r
	w.mu.Unlock()
	return r, nil
}

// started is the processes started; the test fails when there are none.
func (w *world) started() *fakeRunner {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runner == nil {
		w.t.Fatalf("no process started; steps %q, statuses %v", w.steps, w.statuses)
	}
	return w.runner
}

type fakeRunner struct {
	w      *world
	events chan sandbox.Event
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	result sandbox.Result
}

func (r *fakeRunner) Events() <-chan sandbox.Event { return r.events }
func (r *fakeRunner) Done() <-chan struct{}        { return r.done }

func (r *fakeRunner) Result() sandbox.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result
}

// Kill records the signals as the runner sends them: SIGTERM now, the
// final processes, SIGKILL once grace has passed (the fake's processes
// ignore SIGTERM, as a stubborn service does).
func (r *fakeRunner) Kill(ctx context.Context, grace time.Duration) {
	r.w.record("SIGTERM")
	select {
	case <-time.After(grace):
	case <-ctx.Done():
	}
	r.w.record("SIGKILL after %s", grace)
	r.finish(sandbox.StateKilled)
}

// finish ends the task in state.
func (r *fakeRunner) finish(state sandbox.State) {
	r.once.Do(func() {
		r.mu.Lock()
		r.result = sandbox.Result{State: state, Message: "fake " + string(state)}
		r.mu.Unlock()
		r.events <- sandbox.Event{Kind: sandbox.EventState, TaskState: state, Time: time.Now()}
		close(r.events)
		close(r.done)
	})
}

func (w *world) monitor(ctx context.Context, c health.Checker, cfg health.MonitorConfig, _ *zap.Logger) (healthMonitor, error) {
	w.record("health monitor")
	return fakeMonitor{w}, nil
}

type fakeMonitor struct{ w *world }

func (m fakeMonitor) Events() <-chan health.Event { return m.w.health }
func (m fakeMonitor) Close()                      { m.w.healthMu.Do(func() { close(m.w.health) }) }

// fakeLifecycle POSTs nothing; it records the endpoints and waits as the
// real one does when the processes do not exit.
type fakeLifecycle struct{ w *world }

func (l fakeLifecycle) Shutdown(ctx context.Context, port int, cfg health.ShutdownConfig) {
	for _, s := range []struct {
		endpoint string
		wait     time.Duration
	}{{cfg.GracefulShutdownEndpoint, cfg.GracefulShutdownWait}, {cfg.ShutdownEndpoint, cfg.ShutdownWait}} {
		if ctx.Err() != nil {
			return
		}
		l.w.record("POST %s", s.endpoint)
		select {
		case <-time.After(s.wait):
		case <-ctx.Done():
		}
	}
}
