package announcer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/benchtab"
	"github.com/dewarhq/dewar/internal/zktest"
)

// BenchmarkJoinVisible: time from Join to the member being visible to
// another client (its child watch fires), over many joins after a
// warm-up, beside the floor measured in the same run against the same
// server: one create round trip of a plain client.
func BenchmarkJoinVisible(b *testing.B) {
	const warm, samples = 5, 100
	srv := zktest.Start(b)
	obs := observer(b, srv)
	a := newAnnouncer(b, srv, nil)
	for _, p := range []string{"/aurora", "/aurora/www-data", "/aurora/www-data/prod", job} {
		if _, err := obs.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for b.Loop() {
		shard := 0
		visible, rtt := benchtab.Pair(b, warm, samples, func() (time.Duration, error) {
			_, _, watch, err := obs.ChildrenW(job)
			if err != nil {
				return 0, err
			}
			s := twoNetworks()
			s.Shard = shard
			shard++
			start := time.Now()
			joined := make(chan error, 1)
			go func() { joined <- a.Join(ctx, s) }()
			select {
			case <-watch:
			case <-ctx.Done():
				return 0, errors.New("member never became visible")
			}
			d := time.Since(start)
			return d, <-joined
		}, createRoundTrip(obs))
		benchtab.Report(b, "announcer: Join until a watcher of the job path sees the member", "join-visible", visible,
			"one ZooKeeper create round trip", rtt)
	}
}

// BenchmarkRecreate1000AfterExpiry: one session holds 1,000 members (1,000
// tasks of one job); the session is expired; how long until all 1,000 are
// back, beside one ZooKeeper create round trip measured in the same run.
func BenchmarkRecreate1000AfterExpiry(b *testing.B) {
	const members = 1000
	const path = "/aurora/bench/prod/many"
	srv := zktest.Start(b)
	obs := observer(b, srv)
	a := newAnnouncer(b, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, members)
	for i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- a.Join(ctx, announcer.Spec{Role: "bench", Environment: "prod", Job: "many", Shard: i,
				Hostname: fmt.Sprintf("host-%d.example.com", i), Ports: map[string]int{"http": 30000 + i}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	rtt := createRoundTrips(b, obs, 5, 100)

	var total, session time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := a.SessionID()
		start := time.Now()
		if err := srv.ExpireSession(ctx, old); err != nil {
			b.Fatal(err)
		}
		var newSession time.Duration
		for {
			if newSession == 0 {
				if id := a.SessionID(); id != 0 && id != old {
					newSession = time.Since(start)
				}
			}
			children, _, err := obs.Children(path)
			if err != nil {
				b.Fatal(err)
			}
			if len(children) == members {
				break
			}
			if len(children) > members {
				b.Fatalf("%d members for %d tasks", len(children), members)
			}
			select {
			case <-ctx.Done():
				b.Fatalf("only %d of %d members back", len(children), members)
			case <-time.After(2 * time.Millisecond):
			}
		}
		total += time.Since(start)
		session += newSession
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/recreate-1000")
	b.ReportMetric(float64(session.Microseconds())/1000/float64(b.N), "ms/new-session")
	b.ReportMetric(float64((total-session).Microseconds())/1000/float64(b.N), "ms/recreate-after-session")
	b.ReportMetric(benchtab.Ms(rtt.P50()), "ms/create-rtt-p50")
	// The floor of re-creating is 1,000 sequential creates; the announcer
	// pipelines them, so the ratio may be below 1. The new session itself
	// is ZooKeeper's and go-zookeeper's (the reconnect), not a create.
	recreate := (total - session) / time.Duration(b.N)
	benchtab.Add(b, benchtab.Row{Figure: "announcer: 1,000 members re-created after their session expired, from the new session", N: b.N,
		P50:   fmt.Sprintf("%.0f ms", benchtab.Ms(recreate)),
		P99:   fmt.Sprintf("new session after %.0f ms", benchtab.Ms(session/time.Duration(b.N))),
		Floor: "1,000 sequential ZooKeeper create round trips", FloorP50: fmt.Sprintf("%.0f ms", benchtab.Ms(1000*rtt.P50())),
		Ratio: fmt.Sprintf("%.2f×", float64(recreate)/float64(1000*rtt.P50()))})
}

// createRoundTrips times n sequential creates (each deleted again) by
// conn, after warm unrecorded ones.
func createRoundTrips(b *testing.B, conn *zk.Conn, warm, n int) benchtab.Samples {
	b.Helper()
	return benchtab.Time(b, warm, n, createRoundTrip(conn))
}

// createRoundTrip returns a sampler of one create by conn (deleted again,
// outside the figure).
func createRoundTrip(conn *zk.Conn) func() (time.Duration, error) {
	i := 0
	return func() (time.Duration, error) {
		p := fmt.Sprintf("/rtt-%d", i)
		i++
		start := time.Now()
		if _, err := conn.Create(p, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			return 0, err
		}
		d := time.Since(start)
		return d, conn.Delete(p, -1)
	}
}
