package reliability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// sessionTimeout is what every announcer asks for. Production uses 10 s
// (announcer.DefaultSessionTimeout); 4 s keeps outages "longer than the
// session timeout" short to stage while leaving a loaded 2-core machine
// room to reconnect 1,000 sessions.
const sessionTimeout = 4 * time.Second

// joinParallel bounds how many announcers connect and join at once while a
// fleet starts (not during the faults: there every session acts alone).
const joinParallel = 50

// fleet is N simulated tasks of one job, each with its own announcer (its
// own ZooKeeper session), as N executors on N agents would be.
type fleet struct {
	path  string // the job's serverset
	job   string
	tasks []*announcer.Announcer
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
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
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
