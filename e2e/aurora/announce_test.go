package aurorae2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/internal/zktest"
)

// quietZK keeps go-zookeeper's own logging out of the test output.
type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// memberWatch records, from ZooKeeper watches, when a serverset first had
// a member and when it next had none.
type memberWatch struct {
	mu       sync.Mutex
	appeared time.Time
	gone     time.Time
}

func (w *memberWatch) times() (appeared, gone time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appeared, w.gone
}

// watchMembers follows path until the test ends. The times are when the
// watch fired, so an event happened no later than its recorded time.
func watchMembers(t *testing.T, conn *zk.Conn, path string) *memberWatch {
	w := &memberWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var ch <-chan zk.Event
			kids, _, cch, err := conn.ChildrenW(path)
			if errors.Is(err, zk.ErrNoNode) {
				_, _, ch, err = conn.ExistsW(path)
			} else {
				ch = cch
			}
			if err != nil {
				// Connection trouble: go-zookeeper reconnects; try again.
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return
				}
			}
			now := time.Now()
			w.mu.Lock()
			if len(kids) > 0 && w.appeared.IsZero() {
				w.appeared = now
			}
			if len(kids) == 0 && !w.appeared.IsZero() && w.gone.IsZero() {
				w.gone = now
			}
			w.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

// TestAnnounceAndWithdraw: with --announcer-ensemble, the web service is
// announced at /aurora/<role>/<env>/<job> once it is healthy (when it goes
// RUNNING, not before), and on KILL its member is withdrawn before the
// process receives SIGTERM.
func TestAnnounceAndWithdraw(t *testing.T) {
	t.Parallel()
	srv := zktest.Start(t)
	conn, _, err := zk.Connect([]string{srv.Addr()}, 5*time.Second, zk.WithLogger(quietZK{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	const path = "/aurora/root/prod/web" // role, environment and name of web_service.json
	watch := watchMembers(t, conn, path)

	n := startNode(t)
	ports := freePorts(t, "http", "health")
	tk := n.launch(t, "web_service", fixture(t, "web_service.json", nil), ports,
		map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)},
		"--announcer-ensemble", srv.Addr())

	tk.await(t, mesos.TASK_RUNNING)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	// The executor joins before it reports RUNNING: the member is there now.
	kids, _, err := conn.Children(path)
	if err != nil || len(kids) != 1 {
		t.Fatalf("members of %s while RUNNING: %v, %v; want one", path, kids, err)
	}
	data, _, err := conn.Get(path + "/" + kids[0])
	if err != nil {
		t.Fatal(err)
	}
	var member struct {
		ServiceEndpoint struct {
			Host string `json:"host"`
			Port int    `json:"port"`
		} `json:"serviceEndpoint"`
		AdditionalEndpoints map[string]struct {
			Port int `json:"port"`
		} `json:"additionalEndpoints"`
		Status string `json:"status"`
		Shard  *int   `json:"shard"`
	}
	if err := json.Unmarshal(data, &member); err != nil {
		t.Fatalf("member %s: %v\n%s", kids[0], err, data)
	}
	if member.ServiceEndpoint.Port != int(ports["http"]) || member.Status != "ALIVE" || member.Shard == nil || *member.Shard != 0 ||
		member.AdditionalEndpoints["aurora"].Port != int(ports["http"]) {
		t.Errorf("member %s: %s\nwant serviceEndpoint and aurora on port %d, ALIVE, shard 0", kids[0], data, ports["http"])
	}
	// The observer's record has the membership, with its path.
	if c, err := checkpoint.Read(tk.sandbox); err != nil {
		t.Errorf("checkpoint: %v", err)
	} else if len(c.Serversets) != 1 || c.Serversets[0].Path != path || !c.Serversets[0].Joined ||
		c.Serversets[0].Endpoint.Port != int(ports["http"]) {
		t.Errorf("checkpoint serversets while RUNNING: %+v", c.Serversets)
	}
	ev := events(t, tk)
	if appeared, _ := watch.times(); appeared.Before(ev["healthy"]) {
		t.Errorf("member appeared at %v, before the service was first healthy at %v", appeared, ev["healthy"])
	}

	tk.kill(t, 20*time.Second)
	tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLED)
	ev = events(t, tk)
	term := ev["SIGTERM"]
	if term.IsZero() {
		t.Fatalf("the process never got SIGTERM; events %v", ev)
	}
	// The watch fires once the node is deleted, so deletion happened no
	// later than gone. The lifecycle waits put seconds between the two.
	deadline := time.Now().Add(waitFor)
	for {
		if _, gone := watch.times(); !gone.IsZero() {
			if !gone.Before(term) {
				t.Errorf("member withdrawn at %v, not before SIGTERM at %v", gone, term)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member of %s never withdrawn", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ... and the withdrawal, with the terminal state on disk before the
	// agent heard of it.
	if c, err := checkpoint.Read(tk.sandbox); err != nil {
		t.Errorf("checkpoint: %v", err)
	} else if len(c.Serversets) != 1 || c.Serversets[0].Joined || c.State() != "TASK_KILLED" {
		t.Errorf("checkpoint after the kill: state %s, serversets %+v", c.State(), c.Serversets)
	}
}

// TestAnnounceAsThermos: a chroot in --announcer-ensemble
// ("host:port/chroot", which kazoo honours) prefixes the serverset path, and
// a primary_port the task was not given is announced as port 0 with a
// warning, as Thermos' make_endpoints does, instead of failing the task.
func TestAnnounceAsThermos(t *testing.T) {
	t.Parallel()
	srv := zktest.Start(t)
	conn, _, err := zk.Connect([]string{srv.Addr()}, 5*time.Second, zk.WithLogger(quietZK{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	const path = "/dewar-chroot/aurora/root/prod/web"

	n := startNode(t)
	ports := freePorts(t, "http", "health")
	job := fixture(t, "web_service.json", func(doc map[string]any) {
		doc["announce"] = map[string]any{"primary_port": "thrift", "portmap": map[string]any{"aurora": "http"}}
	})
	tk := n.launch(t, "web_service", job, ports, map[string]string{"DEWAR_TEST_WEBSERVER": recordingServer(t)},
		"--announcer-ensemble", srv.Addr()+"/dewar-chroot")
	tk.await(t, mesos.TASK_RUNNING)
	kids, _, err := conn.Children(path)
	if err != nil || len(kids) != 1 {
		t.Fatalf("members of %s while RUNNING: %v, %v; want one\nexecutor log:\n%s", path, kids, err, tk.executorLog())
	}
	data, _, err := conn.Get(path + "/" + kids[0])
	if err != nil {
		t.Fatal(err)
	}
	var member struct {
		ServiceEndpoint struct {
			Port *int `json:"port"`
		} `json:"serviceEndpoint"`
		AdditionalEndpoints map[string]struct {
			Port int `json:"port"`
		} `json:"additionalEndpoints"`
	}
	if err := json.Unmarshal(data, &member); err != nil {
		t.Fatal(err)
	}
	if p := member.ServiceEndpoint.Port; p == nil || *p != 0 || member.AdditionalEndpoints["aurora"].Port != int(ports["http"]) {
		t.Errorf("member %s, want serviceEndpoint port 0 and aurora on %d", data, ports["http"])
	}
	if log := tk.executorLog(); !strings.Contains(log, "announcing port 0") || !strings.Contains(log, `primary_port \"thrift\"`) {
		t.Errorf("no warning naming primary_port thrift in the executor log:\n%s", log)
	}
	tk.kill(t, 20*time.Second)
	tk.awaitTerminal(t)
}
