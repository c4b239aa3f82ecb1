package e2etest

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/testenv"
)

// AwaitMembers waits until the serverset at path holds n ALIVE members and
// returns them. A member that does not parse fails the test: every reader
// (Finagle, Prometheus, kazoo) would trip over it.
func AwaitMembers(t testing.TB, conn *zk.Conn, path string, n int, timeout time.Duration) []announcer.Member {
	t.Helper()
	var members []announcer.Member
	testenv.WaitUntil(t, timeout, "ALIVE members in "+path, func() bool {
		entries, err := announcer.ListMembers(conn, path)
		if err != nil {
			t.Fatal(err)
		}
		members = nil
		for _, e := range entries {
			if e.Err != nil {
				t.Fatalf("%s: member %s: %v", path, e.Node, e.Err)
			}
			if e.Member.Status == "ALIVE" {
				members = append(members, e.Member)
			}
		}
		return len(members) == n
	})
	return members
}

// AwaitHTTP waits until url answers 200 OK through client and returns the
// body of that answer.
func AwaitHTTP(t testing.TB, client *http.Client, url string, timeout time.Duration) string {
	t.Helper()
	var body string
	testenv.WaitUntil(t, timeout, "an answer from "+url, func() bool {
		res, err := client.Get(url)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		body = string(b)
		return res.StatusCode == http.StatusOK
	})
	return body
}

// AddressesOf returns the addresses of network name in one view of a
// task's networks (the agent's or the executor's), nil if it has none.
func AddressesOf(nets []scheduler.Network, name string) []string {
	for _, nw := range nets {
		if nw.Name == name {
			return nw.Addresses
		}
	}
	return nil
}

// GatedJob is the MesosJob JSON of an Aurora task named name whose one
// process waits for the file done and whose shell health check passes
// once the file healthy exists: the test decides when it becomes RUNNING
// and when it FINISHES. The loop also ends when done's directory is gone
// (a test's temp dir), so a failed test leaves nothing running.
func GatedJob(name, healthy, done string) string {
	return fmt.Sprintf(`{
  "name": %[1]q, "role": "root", "environment": "test", "cluster": "e2e", "instances": 1,
  "health_check_config": {
    "health_checker": {"shell": {"shell_command": "test -e %[2]s"}},
    "initial_interval_secs": 60, "interval_secs": 0.1, "timeout_secs": 5,
    "max_consecutive_failures": 0, "min_consecutive_successes": 1
  },
  "task": {
    "name": "gated",
    "processes": [{"name": "wait", "cmdline": "while [ ! -e %[3]s ] && [ -d %[4]s ]; do sleep 0.05; done; echo done", "max_failures": 1}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 0
  }
}`, name, healthy, done, filepath.Dir(done))
}
