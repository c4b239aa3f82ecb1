package announcer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/zktest"
)

// BenchmarkJoinVisible: time from Join to the member being visible to
// another client (its child watch fires).
func BenchmarkJoinVisible(b *testing.B) {
	srv := zktest.Start(b)
	obs := observer(b, srv)
	a := newAnnouncer(b, srv, nil)
	for _, p := range []string{"/aurora", "/aurora/www-data", "/aurora/www-data/prod", job} {
		if _, err := obs.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _, watch, err := obs.ChildrenW(job)
		if err != nil {
			b.Fatal(err)
		}
		s := twoNetworks()
		s.Shard = i
		start := time.Now()
		joined := make(chan error, 1)
		go func() { joined <- a.Join(ctx, s) }()
		select {
		case <-watch:
		case <-ctx.Done():
			b.Fatal("member never became visible")
		}
		total += time.Since(start)
		if err := <-joined; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/visible")
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
	rtt := createRoundTrip(b, obs)

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
	b.ReportMetric(float64(rtt.Microseconds())/1000, "ms/create-rtt")
}

// createRoundTrip is the mean of a few sequential creates by another client.
func createRoundTrip(b *testing.B, conn *zk.Conn) time.Duration {
	b.Helper()
	const n = 50
	var total time.Duration
	for i := range n {
		p := fmt.Sprintf("/rtt-%d", i)
		start := time.Now()
		if _, err := conn.Create(p, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if err := conn.Delete(p, -1); err != nil {
			b.Fatal(err)
		}
	}
	return total / n
}
