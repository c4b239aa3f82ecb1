package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// childEnv makes the test binary an "executor": a process of its own that
// holds one announcer session with one task joined, prints "joined
// <session>" and runs until its stdin closes (so it cannot outlive a test
// that dies) or it is killed. Value: "<ensemble,...> <job> <shard>".
const childEnv = "DEWAR_RELIABILITY_CHILD"

func childMain() int {
	fields := strings.Fields(os.Getenv(childEnv))
	if len(fields) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want \"<ensemble> <job> <shard>\"\n", childEnv, os.Getenv(childEnv))
		return 2
	}
	shard, err := strconv.Atoi(fields[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := announcer.New(ctx, announcerConfig(strings.Split(fields[0], ",")), zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer a.Close()
	if err := a.Join(ctx, specFor(fields[1], shard)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("joined %d\n", a.SessionID())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// executorKilled: a process holding an announcer session (as the executor
// does) is SIGKILLed, so nothing withdraws its member. Figure: time from
// the kill until its member is gone, which only the session timeout can
// do. Must hold: ≤ session timeout + 1 s; the process is gone.
func executorKilled(t *testing.T, ens *zktest.Ensemble, sc scale) result {
	bound := sessionTimeout + time.Second
	res := result{
		scenario: fmt.Sprintf("executor process SIGKILLed (×%d)", sc.rounds),
		must:     fmt.Sprintf("member gone ≤ session timeout + 1 s = %s; no orphan process", secs(bound)),
	}
	r := reader(t, ens)
	var worst time.Duration
	pass := true
	for round := range sc.rounds {
		gone, orphan := killOne(t, ens, r, round)
		worst = max(worst, gone)
		if gone > bound || orphan {
			pass = false
		}
	}
	res.figure = fmt.Sprintf("member gone %s after SIGKILL (worst round; session timeout %s)", secs(worst), secs(sessionTimeout))
	res.pass = pass
	return res
}

// killOne runs one child, kills it and returns how long its member took to
// vanish and whether the process outlived the kill.
func killOne(t *testing.T, ens *zktest.Ensemble, r *zk.Conn, round int) (time.Duration, bool) {
	t.Helper()
	job := "exec-" + testenv.RandomHex(4)
	path := "/aurora/rel/test/" + job
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", childEnv, strings.Join(ens.Addrs(), ","), job, round))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-exited
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var sid int64
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "joined %d", &sid); err != nil {
			t.Fatalf("child said %q: %v; stderr:\n%s", l, err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("child did not join within a minute; stderr:\n%s", stderr.String())
	}

	node := ownedMember(t, r, path, sid)
	ok, _, ch, err := r.ExistsW(node)
	if err != nil || !ok {
		t.Fatalf("watch %s: exists=%v, %v", node, ok, err)
	}
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	orphan := false
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Errorf("child %d still running 10 s after SIGKILL", cmd.Process.Pid)
		orphan = true
	}
	gone := waitGone(t, r, node, ch, t0)
	t.Logf("round %d: member %s gone %v after SIGKILL", round, node, gone)
	return gone, orphan
}

// ownedMember is the one member under path owned by session sid.
func ownedMember(t *testing.T, r *zk.Conn, path string, sid int64) string {
	t.Helper()
	children, _, err := r.Children(path)
	if err != nil || len(children) != 1 {
		t.Fatalf("members of %s: %v, %v (want one)", path, children, err)
	}
	node := path + "/" + children[0]
	_, stat, err := r.Get(node)
	if err != nil || stat.EphemeralOwner != sid {
		t.Fatalf("%s: owner %#x, child session %#x, %v", node, stat.EphemeralOwner, sid, err)
	}
	return node
}

// waitGone waits for node's deletion (its watch ch fires; on connection
// trouble it asks again) and returns the time since t0.
func waitGone(t *testing.T, r *zk.Conn, node string, ch <-chan zk.Event, t0 time.Time) time.Duration {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-ch:
			at := time.Now()
			if ev.Type == zk.EventNodeDeleted {
				return at.Sub(t0)
			}
			// Another event (connection trouble): look again, and watch again.
			for {
				ok, _, next, err := r.ExistsW(node)
				if err == nil && !ok {
					return time.Since(t0)
				}
				if err == nil {
					ch = next
					break
				}
				if time.Since(t0) > time.Minute {
					t.Fatalf("%s: cannot read it a minute after the kill: %v", node, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		case <-deadline:
			t.Fatalf("%s still exists a minute after its session's process was killed", node)
		}
	}
}
