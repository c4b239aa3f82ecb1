package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// job writes testdata/jobs/<name> with its networks renamed to the node's.
func (n *node) job(t *testing.T, name string, networks ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "jobs", name))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's command line names its networks ({{mesos.ips[blue]}}).
	if len(networks) == 2 {
		b = []byte(strings.NewReplacer("[blue]", "["+networks[0]+"]", "[green]", "["+networks[1]+"]").Replace(string(b)))
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if networks != nil {
		var nets []any
		for _, nw := range networks {
			nets = append(nets, map[string]any{"name": nw, "labels": map[string]any{"e2e": "yes"}})
		}
		doc["networks"] = nets
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, string(out))
	return path
}

// TestDemo is the demo path as a specification: a two-instance service on
// two CNI networks, launched by the stub through the fake agent, reported,
// stored, announced and answering on every address; the stub's refusals;
// a restart of the stub; and a job without networks on host networking.
func TestDemo(t *testing.T) {
	n := startNode(t)
	const jobName = "/aurora/root/devel/hello"

	t.Run("refuses networks while CNI is off", func(t *testing.T) {
		out := n.reject(t, n.job(t, "web_cni.json", n.nets[0], n.nets[1]))
		if !strings.Contains(out, "--enable-cni") {
			t.Fatalf("refusal does not say how to enable CNI:\n%s", out)
		}
	})
	t.Run("refuses a network not allowed", func(t *testing.T) {
		out := n.reject(t, n.job(t, "web_cni.json", n.nets[0], "dewar-nope"), "--enable-cni", "--allowed-networks", n.nets[0]+","+n.nets[1])
		if !strings.Contains(out, `"dewar-nope"`) || !strings.Contains(out, "allowed networks: "+n.nets[0]+", "+n.nets[1]) {
			t.Fatalf("refusal does not name the network and the allowed ones:\n%s", out)
		}
	})

	db := filepath.Join(t.TempDir(), "stub.db")
	cniJob := n.job(t, "web_cni.json", n.nets[0], n.nets[1])
	cniArgs := []string{"--enable-cni", "--allowed-networks", n.nets[0] + "," + n.nets[1]}
	s := n.startStub(t, db, cniJob, cniArgs...)
	latest := waitRunning(t, db, 2, nil)

	t.Run("stored addresses: agent's CNI results equal the executor's view", func(t *testing.T) {
		for i, r := range latest {
			if len(r.Views.Agent) != 2 {
				t.Fatalf("instance %d: agent view %+v, want both networks", i, r.Views.Agent)
			}
			if d := r.Views.Disagreement(); d != "" || len(r.Views.Executor) != 2 {
				t.Fatalf("instance %d: views disagree (%s): %+v", i, d, r.Views)
			}
			n.checkSubnets(t, i, r.Views.Agent)
		}
		// And the agent's own record of its CNI results (/state) says the same.
		cni := n.agentNetworks(t)
		for i, r := range latest {
			got, want := fmt.Sprint(cni["thermos-"+r.TaskID]), fmt.Sprint(r.Views.Agent)
			if got != want {
				t.Errorf("instance %d: agent /state has %s, the stub stored %s", i, got, want)
			}
		}
	})

	t.Run("serverset members carry the same addresses", func(t *testing.T) {
		conn := n.zkConn(t)
		// The classic path holds the primary (first) network's address;
		// <job>@<net> that network's. One member per instance on each.
		paths := map[string]string{jobName: n.nets[0]}
		for _, nw := range n.nets {
			paths[jobName+"@"+nw] = nw
		}
		for path, nw := range paths {
			var hosts []string
			for _, m := range e2etest.AwaitMembers(t, conn, path, len(latest), 30*time.Second) {
				hosts = append(hosts, m.ServiceEndpoint.Host)
			}
			for i, r := range latest {
				addrs := e2etest.AddressesOf(r.Views.Agent, nw)
				if !slices.ContainsFunc(hosts, func(h string) bool { return slices.Contains(addrs, h) }) {
					t.Errorf("%s: no member for instance %d (its %s addresses %v); members %v", path, i, nw, addrs, hosts)
				}
			}
		}
	})

	t.Run("every instance answers on every address", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(n.ns)}}
		for i, r := range latest {
			port := r.Ports["http"]
			for _, nw := range r.Views.Agent {
				for _, a := range nw.Addresses {
					url := "http://" + net.JoinHostPort(a, strconv.Itoa(int(port))) + "/"
					body := e2etest.AwaitHTTP(t, client, url, 20*time.Second)
					if !strings.Contains(body, r.TaskID) {
						t.Errorf("instance %d on %s answered %q, want its task id", i, a, body)
					}
				}
			}
		}
	})

	t.Run("a restarted stub keeps the addresses and reconciles", func(t *testing.T) {
		s.stop(t)
		n.startStub(t, db, cniJob, cniArgs...)
		again := waitRunning(t, db, 2, func(l map[int]scheduler.TaskRecord) bool {
			for _, r := range l {
				if r.Reason != "REASON_RECONCILIATION" {
					return false
				}
			}
			return true
		})
		for i, r := range again {
			if r.TaskID != latest[i].TaskID || fmt.Sprint(r.Views) != fmt.Sprint(latest[i].Views) {
				t.Errorf("instance %d after restart: %+v, want task %s with views %+v", i, r, latest[i].TaskID, latest[i].Views)
			}
		}
	})

	t.Run("without CNI a job without networks runs on host networking", func(t *testing.T) {
		hostDB := filepath.Join(t.TempDir(), "host.db")
		n.startStub(t, hostDB, n.job(t, "web_host.json"))
		l := waitRunning(t, hostDB, 1, nil)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(n.ns)}}
		url := fmt.Sprintf("http://127.0.0.1:%d/", l[0].Ports["http"])
		e2etest.AwaitHTTP(t, client, url, 20*time.Second)
	})
}

// agentNetworks reads each executor's CNI results from the agent's /state.
func (n *node) agentNetworks(t *testing.T) map[string][]scheduler.Network {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netnstest.DialIn(n.ns)}}
	res, err := client.Get("http://" + n.agentAddr + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The parts of the agent's /state this test reads.
	var st struct {
		Frameworks []struct {
			Executors []struct {
				ID       string            `json:"id"`
				Networks []json.RawMessage `json:"network_infos"`
			} `json:"executors"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("decode /state: %v", err)
	}
	out := map[string][]scheduler.Network{}
	for _, fw := range st.Frameworks {
		for _, ex := range fw.Executors {
			var nis []mesos.NetworkInfo
			for _, raw := range ex.Networks {
				var ni mesos.NetworkInfo
				if err := json.Unmarshal(raw, &ni); err != nil {
					t.Fatalf("decode network info %s: %v", raw, err)
				}
				nis = append(nis, ni)
			}
			// ViewsOf reads a lone NetworkInfo list as the agent's view.
			v, err := scheduler.ViewsOf(mesos.TaskStatus{ContainerStatus: &mesos.ContainerStatus{NetworkInfos: nis}})
			if err != nil {
				t.Fatal(err)
			}
			out[ex.ID] = v.Agent
		}
	}
	return out
}

func (n *node) checkSubnets(t *testing.T, instance int, nets []scheduler.Network) {
	t.Helper()
	for _, nw := range nets {
		k := slices.Index(n.nets[:], nw.Name)
		if k < 0 {
			t.Errorf("instance %d: unexpected network %q", instance, nw.Name)
			continue
		}
		for _, a := range nw.Addresses {
			ip := net.ParseIP(a)
			if !n.subnets[k].Contains(ip) && !(k == 1 && n.subnet6.Contains(ip)) {
				t.Errorf("instance %d: %s address %s is outside the network's ranges", instance, nw.Name, a)
			}
		}
	}
}

func (n *node) zkConn(t *testing.T) *zk.Conn {
	t.Helper()
	return zktest.ConnectWith(t, netnstest.DialIn(n.ns), "127.0.0.1:"+n.zkPort)
}
