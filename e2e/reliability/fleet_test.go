package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// sessionTimeout is what every announcer asks for: the production
// setting. The executor asks for announcer.DefaultSessionTimeout and has no
// flag for it, and Thermos' announcer asks for kazoo's default
// (KazooClient(timeout=10.0): DefaultAnnouncerCheckerProvider.make_zk_client
// in Aurora's executor/common/announcer.py passes none). A shorter timeout
// would stage outages faster, but it measures a setting nobody runs: with
// 4 s, a loaded 2-core machine that needs more than 4 s to reconnect 200
// or 1,000 sessions after an election expires them (issue 13's failed rows:
// 181 of 200 members re-created after a leader kill, 901 sessions expired in
// a storm), while 10 s leaves the same machine the room production has.
const sessionTimeout = announcer.DefaultSessionTimeout

// joinParallel bounds how many announcers connect and join at once while a
// fleet starts (not during the faults: there every session acts alone).
const joinParallel = 50

// fleet is N simulated tasks of one job, each with its own announcer (its
// own ZooKeeper session), as N executors on N agents would be.
type fleet struct {
	path   string // the job's serverset
	job    string
	tasks  []*announcer.Announcer
	events *sessionEvents
}

func specFor(job string, shard int) announcer.Spec {
	return announcer.Spec{
		Role: "rel", Environment: "test", Job: job, Shard: shard,
		Hostname: fmt.Sprintf("task-%d.rel.test", shard),
		Ports:    map[string]int{"http": 20000 + shard},
	}
}

func announcerConfig(ens []string) announcer.Config {
	return announcer.Config{Ensemble: ens, SessionTimeout: sessionTimeout, ConnectTimeout: time.Minute}
}

// startFleet starts n announcers against the ensemble and joins each one's
// task; it returns once every member exists.
func startFleet(t *testing.T, ens *zktest.Ensemble, n int) *fleet {
	t.Helper()
	job := "svc-" + testenv.RandomHex(4)
	f := &fleet{path: "/aurora/rel/test/" + job, job: job, tasks: make([]*announcer.Announcer, n)}
	// Warnings only: a line per member and reconnect would drown a failure.
	f.events = &sessionEvents{}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel), zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, f.events)
	})))
	if p := os.Getenv(LogEnv); p != "" {
		// Every announcer's Info lines, with times, for a post-mortem.
		cfg := zap.NewProductionConfig()
		cfg.OutputPaths = []string{p}
		cfg.Sampling = nil
		l, err := cfg.Build()
		if err != nil {
			t.Fatal(err)
		}
		log = zap.New(zapcore.NewTee(l.Core(), f.events))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sem := make(chan struct{}, joinParallel)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := announcer.New(ctx, announcerConfig(ens.Addrs()), log.With(zap.Int("task", i)))
			if err != nil {
				errs[i] = err
				return
			}
			f.tasks[i] = a
			errs[i] = a.Join(ctx, specFor(job, i))
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, a := range f.tasks {
			if a != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = a.Close() }()
			}
		}
		wg.Wait()
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start %d tasks: %v", n, err)
	}
	return f
}

// baseline reads the complete serverset of a fleet that has just started.
func (f *fleet) baseline(t *testing.T, conn *zk.Conn) census {
	t.Helper()
	c := f.read(conn, len(f.tasks))
	if !c.complete(shards(len(f.tasks))) {
		t.Fatalf("serverset %s after every Join: %v", f.path, c)
	}
	return c
}

// shards is 0..n-1 minus the ones given.
func shards(n int, except ...int) []int {
	var out []int
	for i := range n {
		if !slices.Contains(except, i) {
			out = append(out, i)
		}
	}
	return out
}

// census is one reading of the serverset.
type census struct {
	byShard map[int]int    // members per shard
	names   map[int]string // a member znode name per shard
	stale   int            // members whose owner is not their task's current session
	bad     int            // members that do not parse
	err     error          // the reading failed (no session, no quorum)
}

// read lists the serverset and reads every member: shard, and whether its
// owner is the session its task holds now (a member of an old session is
// about to vanish with it).
func (f *fleet) read(conn *zk.Conn, want int) census {
	c := census{byShard: map[int]int{}, names: map[int]string{}}
	children, _, err := conn.Children(f.path)
	if err != nil {
		c.err = err
		return c
	}
	if len(children) != want {
		c.byShard[-1] = len(children) // incomplete: no need to read them
		return c
	}
	type got struct {
		shard int
		name  string
		stale bool
		err   error
	}
	res := make([]got, len(children))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, child := range children {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data, stat, err := conn.Get(f.path + "/" + child)
			if err != nil {
				res[i].err = err
				return
			}
			m, err := announcer.ParseMember(data)
			if err != nil || m.Shard == nil || *m.Shard >= len(f.tasks) {
				res[i].shard = -2
				return
			}
			res[i].shard, res[i].name = *m.Shard, child
			res[i].stale = stat.EphemeralOwner != f.tasks[*m.Shard].SessionID()
		}()
	}
	wg.Wait()
	for _, r := range res {
		switch {
		case r.err != nil:
			c.err = r.err
		case r.shard == -2:
			c.bad++
		default:
			c.byShard[r.shard]++
			c.names[r.shard] = r.name
			if r.stale {
				c.stale++
			}
		}
	}
	return c
}

// complete: every wanted shard exactly once, nothing else, all current.
func (c census) complete(want []int) bool {
	if c.err != nil || c.stale > 0 || c.bad > 0 || len(c.byShard) != len(want) {
		return false
	}
	for _, s := range want {
		if c.byShard[s] != 1 {
			return false
		}
	}
	return true
}

func (c census) String() string {
	present, dups := 0, 0
	for s, n := range c.byShard {
		if s >= 0 {
			present++
			dups += n - 1
		}
	}
	if n, ok := c.byShard[-1]; ok {
		return fmt.Sprintf("%d member znodes (not read), err %v", n, c.err)
	}
	return fmt.Sprintf("%d shards present, %d duplicates, %d stale, %d unparsable, err %v", present, dups, c.stale, c.bad, c.err)
}

// waitStable polls the serverset until it has held exactly the wanted
// shards, each owned by its task's current session, for settle without a
// break, and returns when that stretch began. A member that is present but
// about to expire with its old session therefore does not count as back.
func (f *fleet) waitStable(ctx context.Context, conn *zk.Conn, want []int, settle time.Duration) (time.Time, census, error) {
	var since time.Time
	var last census
	for {
		last = f.read(conn, len(want))
		now := time.Now()
		switch {
		case !last.complete(want):
			since = time.Time{}
		case since.IsZero():
			since = now
		case now.Sub(since) >= settle:
			return since, last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, last, fmt.Errorf("serverset %s never stably complete (%d shards wanted); last reading: %v", f.path, len(want), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recreated counts the shards of before whose member znode is not the same
// one in after: the member was lost (its session expired, or it was
// deleted) and announced again, so readers had a gap.
func recreated(before, after census) int {
	n := 0
	for s, name := range before.names {
		if after.names[s] != name {
			n++
		}
	}
	return n
}

// duplicates is members beyond one per shard.
func (c census) duplicates() int {
	d := 0
	for s, n := range c.byShard {
		if s >= 0 && n > 1 {
			d += n - 1
		}
	}
	return d
}

// discard drops go-zookeeper's log: it logs from goroutines that outlive
// conn.Close, and t.Log after the test ends panics.
type discard struct{}

func (discard) Printf(string, ...any) {}

// reader is a client of the whole ensemble, as Finagle or Prometheus is.
func reader(t *testing.T, ens *zktest.Ensemble) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(ens.Addrs(), 10*time.Second, zk.WithLogger(discard{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(time.Minute)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			t.Fatalf("reader: no session with %v", ens.Addrs())
		}
	}
	return conn
}

// LogEnv names a file that gets every fleet announcer's log at Info level
// (JSON, with times); without it only warnings reach the test log.
const LogEnv = "DEWAR_RELIABILITY_LOG"

// sessionEvents is a zap core that counts what the fleet's announcers
// report about their sessions, by the lines they log (announcer.go,
// session.go): sessions expired, fresh connections opened because servers
// kept refusing the old session, and old sessions given up for a fresh one.
type sessionEvents struct {
	mu                        sync.Mutex
	expired, fresh, abandoned int
}

var _ zapcore.Core = (*sessionEvents)(nil)

func (e *sessionEvents) Enabled(l zapcore.Level) bool      { return l >= zap.InfoLevel }
func (e *sessionEvents) With([]zapcore.Field) zapcore.Core { return e }
func (e *sessionEvents) Sync() error                       { return nil }

func (e *sessionEvents) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Enabled(ent.Level) {
		return ce.AddCore(ent, e)
	}
	return ce
}

func (e *sessionEvents) Write(ent zapcore.Entry, _ []zapcore.Field) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case strings.HasPrefix(ent.Message, "zookeeper session expired"):
		e.expired++
	case strings.HasPrefix(ent.Message, "zookeeper servers keep refusing the session; opening a fresh connection"):
		e.fresh++
	case strings.HasPrefix(ent.Message, "zookeeper refuses the old session"):
		e.abandoned++
	}
	return nil
}

// counts returns the counts so far.
func (e *sessionEvents) counts() (expired, fresh, abandoned int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.expired, e.fresh, e.abandoned
}

// String is the figure: what the sessions went through.
func (e *sessionEvents) String() string {
	expired, fresh, abandoned := e.counts()
	return fmt.Sprintf("%d sessions expired, %d fresh connections opened (%d replaced their old session)", expired, fresh, abandoned)
}
