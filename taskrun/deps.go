package taskrun

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/sandbox"
)

// A task talks to five parts of the world: the container's addresses, the
// serversets, its processes, its health monitor and its HTTP lifecycle
// endpoints. Each sits behind an interface declared here, where it is
// used, so that the ordering rules of a task's life (RUNNING only after the
// join; on a kill: withdraw, lifecycle endpoints, signals) are tests that
// run in-process with fakes, as nomad's task runner tests "deregister
// before kill" with a mock registry. New wires the real parts in.

// addressSource finds the container's addresses and follows their changes
// (netdiscover, over netlink).
type addressSource interface {
	Discover(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) ([]netdiscover.NetworkAddrs, error)
	Host(ctx context.Context, hostname string, opt netdiscover.Options) (netdiscover.HostAddrs, error)
	Watch(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) (addressWatch, error)
}

// addressWatch is a running watch (*netdiscover.Watcher).
type addressWatch interface {
	Updates() <-chan []netdiscover.NetworkAddrs
	Close() error
}

// membership is the task's serverset membership: *zkAnnouncement, the
// members kept by an announcer.Announcer.
type membership interface {
	join(ctx context.Context, f *Facts) error
	update(ctx context.Context, f *Facts) error
	leave(ctx context.Context) error
}

// processes are the task's running processes (*sandbox.Runner).
type processes interface {
	// Events delivers process starts and ends and the runner's states; it
	// is closed after the terminal state.
	Events() <-chan sandbox.Event
	// Done is closed when nothing the task started survives; Result then
	// says how the task ended.
	Done() <-chan struct{}
	Result() sandbox.Result
	// Kill sends SIGTERM, runs the final processes once the others are
	// gone and SIGKILLs what is left after grace.
	Kill(ctx context.Context, grace time.Duration)
}

// healthMonitor is a running health monitor (*health.Monitor).
type healthMonitor interface {
	Events() <-chan health.Event
	Close()
}

// startMonitor starts checking the task's health (health.StartMonitor).
type startMonitor func(ctx context.Context, c health.Checker, cfg health.MonitorConfig, log *zap.Logger) (healthMonitor, error)

// lifecycle asks the task over HTTP to stop (*health.Lifecycle).
type lifecycle interface {
	Shutdown(ctx context.Context, port int, cfg health.ShutdownConfig)
}

// deps are the constructors of those parts; realDeps by default.
type deps struct {
	addrs addressSource
	// dial opens the ZooKeeper session of an announcement; close ends it.
	dial func(ctx context.Context, cfg announcer.Config, a *zkAnnouncement) (m membership, close func(), err error)
	// start starts the processes; nothing runs when it fails.
	start     func(ctx context.Context, task sandbox.Task, opt sandbox.Options) (processes, error)
	monitor   startMonitor
	lifecycle func(log *zap.Logger, timeout time.Duration) lifecycle
}

func realDeps() deps {
	return deps{
		addrs: netlinkAddrs{},
		dial:  dialZooKeeper,
		start: func(ctx context.Context, task sandbox.Task, opt sandbox.Options) (processes, error) {
			r, err := sandbox.Start(ctx, task, opt)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return r, nil
		},
		monitor: func(ctx context.Context, c health.Checker, cfg health.MonitorConfig, log *zap.Logger) (healthMonitor, error) {
			m, err := health.StartMonitor(ctx, c, cfg, log)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		lifecycle: func(log *zap.Logger, timeout time.Duration) lifecycle {
			return &health.Lifecycle{Log: log, Timeout: timeout}
		},
	}
}

// netlinkAddrs is the real addressSource.
type netlinkAddrs struct{}

func (netlinkAddrs) Discover(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) ([]netdiscover.NetworkAddrs, error) {
	return netdiscover.Discover(ctx, nets, opt)
}

func (netlinkAddrs) Host(ctx context.Context, hostname string, opt netdiscover.Options) (netdiscover.HostAddrs, error) {
	return netdiscover.Host(ctx, hostname, opt)
}

func (netlinkAddrs) Watch(ctx context.Context, nets []netdiscover.Network, opt netdiscover.Options) (addressWatch, error) {
	w, err := netdiscover.Watch(ctx, nets, opt)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// dialZooKeeper connects the announcer; a's methods then keep the members.
func dialZooKeeper(ctx context.Context, cfg announcer.Config, a *zkAnnouncement) (membership, func(), error) {
	an, err := announcer.New(ctx, cfg, a.log)
	if err != nil {
		return nil, nil, fmt.Errorf("announce: %w", err)
	}
	a.a = an
	return a, a.close, nil
}

var (
	_ addressWatch  = (*netdiscover.Watcher)(nil)
	_ membership    = (*zkAnnouncement)(nil)
	_ processes     = (*sandbox.Runner)(nil)
	_ healthMonitor = (*health.Monitor)(nil)
	_ lifecycle     = (*health.Lifecycle)(nil)
)
