package announcer

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-zookeeper/zk"
)

// The rescue's timing (session.go), on synctest's fake clock, without
// ZooKeeper: go-zookeeper's session events are fed to a connection's
// refusal clock (zkConn.track) at fake times. The rescue itself, against
// real servers that refuse the old session, is wipe_test.go; one that
// keeps it, quorum_test.go.

// TestProbeAfterRefusals: a fresh connection opens once servers have
// refused the handshake for a quarter of the session timeout, counted
// from the first refusal since the last session.
func TestProbeAfterRefusals(t *testing.T) {
	const (
		ms      = time.Millisecond
		timeout = 4 * time.Second // a quarter: 1 s
	)
	type event struct {
		at    time.Duration
		state zk.State
	}
	// refused is a server accepting the TCP connection and closing it at
	// the handshake, as go-zookeeper reports it (conn.go, Conn.loop).
	refused := func(at time.Duration) []event {
		return []event{{at, zk.StateConnecting}, {at, zk.StateConnected}, {at, zk.StateDisconnected}}
	}
	type check struct {
		at   time.Duration
		wait time.Duration // untilProbe; -1: nothing refused, no probe to wait for
	}
	for _, tc := range []struct {
		name   string
		events [][]event
		checks []check
	}{
		{
			name:   "one refused handshake: the probe opens 1s later",
			events: [][]event{refused(0)},
			checks: []check{{0, time.Second}, {999 * ms, ms}, {time.Second, 0}, {5 * time.Second, 0}},
		},
		{
			name:   "refused again and again: counted from the first",
			events: [][]event{refused(0), refused(300 * ms), refused(600 * ms), refused(900 * ms)},
			checks: []check{{900 * ms, 100 * ms}, {time.Second, 0}},
		},
		{
			name: "servers down (no TCP connection) do not count: no probe for a restart",
			events: [][]event{
				{{0, zk.StateDisconnected}, {0, zk.StateConnecting}, {0, zk.StateDisconnected}},
				{{2 * time.Second, zk.StateConnecting}, {2 * time.Second, zk.StateDisconnected}},
			},
			checks: []check{{500 * ms, -1}, {3 * time.Second, -1}},
		},
		{
			name: "a session in between starts the count over",
			events: [][]event{refused(0),
				{{500 * ms, zk.StateConnecting}, {500 * ms, zk.StateConnected}, {500 * ms, zk.StateHasSession}},
				{{600 * ms, zk.StateDisconnected}}, // the session's connection drops: not a refusal
				refused(700 * ms)},
			checks: []check{{650 * ms, -1}, {1500 * ms, 200 * ms}, {1700 * ms, 0}},
		},
		{
			name: "an expiry (a server answered) starts the count over",
			events: [][]event{refused(0),
				{{800 * ms, zk.StateConnecting}, {800 * ms, zk.StateConnected}, {800 * ms, zk.StateExpired}},
				refused(900 * ms)},
			checks: []check{{850 * ms, -1}, {1500 * ms, 400 * ms}, {1900 * ms, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				zc := &zkConn{}
				zc.last.Store(int32(zk.StateDisconnected))
				feed := make(chan struct{})
				go func() {
					defer close(feed)
					for _, burst := range tc.events {
						time.Sleep(burst[0].at - time.Since(start))
						for _, ev := range burst {
							zc.track(zk.Event{Type: zk.EventSession, State: ev.state})
						}
					}
				}()
				for _, c := range tc.checks {
					time.Sleep(c.at - time.Since(start))
					synctest.Wait() // the events of this instant are in
					got := time.Duration(-1)
					if since := zc.refusedSince(); !since.IsZero() {
						got = untilProbe(since, time.Now(), timeout)
					}
					if got != c.wait {
						t.Errorf("at %v: %s, want %s", c.at, probeWait(got), probeWait(c.wait))
					}
				}
				<-feed
			})
		})
	}
}

// TestOldSessionWait: once the probe has a session, keepSession waits for
// the old session while members of it exist, looking again every second,
// at most the session timeout plus rescueGrace; the probe replaces the old
// connection as soon as nothing of the old session is left.
func TestOldSessionWait(t *testing.T) {
	const (
		ms      = time.Millisecond
		timeout = 4 * time.Second
		never   = time.Hour
	)
	for _, tc := range []struct {
		name     string
		goneAt   time.Duration // when the server expires the old session (its members vanish)
		looks    []time.Duration
		switchAt time.Duration
	}{
		{
			name:     "no member of the old session: switch at once",
			goneAt:   0,
			looks:    nil,
			switchAt: 0,
		},
		{
			name:     "members expire at 2.5s: switch at the next look",
			goneAt:   2500 * ms,
			looks:    []time.Duration{0, time.Second, 2 * time.Second},
			switchAt: 3 * time.Second,
		},
		{
			name:     "members never go: switch after the session timeout plus the grace",
			goneAt:   never,
			looks:    []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second},
			switchAt: 6 * time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				rs := rescue{probeAt: start}
				var looks []time.Duration
				for {
					look, _ := rs.untilSwitch(time.Since(start) < tc.goneAt, timeout)
					if look == 0 {
						break
					}
					looks = append(looks, time.Since(start))
					time.Sleep(look) // as run: keepSession again after look
				}
				if got := time.Since(start); got != tc.switchAt || !slices.Equal(looks, tc.looks) {
					t.Errorf("looked at %v, switched at %v; want looks at %v, switch at %v", looks, got, tc.looks, tc.switchAt)
				}
			})
		})
	}
}

func probeWait(d time.Duration) string {
	if d < 0 {
		return "no probe to wait for"
	}
	return fmt.Sprintf("probe in %v", d)
}
