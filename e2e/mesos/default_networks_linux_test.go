package mesose2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/e2etest"
	"github.com/dewarhq/dewar/internal/mesostest"
)

// TestStockAuroraOnAgentDefaultNetworks is the route for a stock Aurora
// scheduler, which sends no ContainerInfo for a job without an image
// (MesosTaskFactory.createTaskInfo): the agent's --default_container_info
// puts every such executor on its CNI networks (src/slave/slave.cpp,
// Slave::_run, only when !executorInfo.has_container()), and the executor,
// told their names by --default-networks in the scheduler's executor flags
// (Aurora's -thermos_executor_flags), reports and announces the container's
// addresses. The stub runs with its CNI toggle off, as stock Aurora would.
func TestStockAuroraOnAgentDefaultNetworks(t *testing.T) {
	c := mesostest.New(t, mesostest.WithAgentFlags(func(c *mesostest.Cluster) []string {
		ci, err := json.Marshal(map[string]any{"type": "MESOS", "network_infos": []any{
			map[string]any{"name": c.Nets[0]}, map[string]any{"name": c.Nets[1]},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return []string{"--default_container_info=" + string(ci)}
	}))
	job := c.Job(t, 1, 0)
	withoutNetworks(t, job)
	s := c.StartStubWith(t, job, "--executor-flags", fmt.Sprintf("--default-networks %s,%s", c.Nets[0], c.Nets[1]))
	latest := c.WaitRunning(t, s, 1)
	r := latest[0]

	// The agent's view: its CNI results, in every update's container_status.
	checkAgentView(t, c, 0, r.Views)
	if r.Views.Executor == nil {
		t.Fatalf("no executor view in the stub's record %+v: the executor did not report the default networks", r.Views)
	}
	if d := r.Views.Disagreement(); d != "" {
		t.Errorf("the agent and the executor disagree: %s", d)
	}

	conn := c.ZKConn(t)
	for path, nw := range map[string]string{jobPath: c.Nets[0], jobPath + "@" + c.Nets[1]: c.Nets[1]} {
		members := e2etest.AwaitMembers(t, conn, path, 1, 30*time.Second)
		if addrs := e2etest.AddressesOf(r.Views.Agent, nw); !slices.Contains(addrs, members[0].ServiceEndpoint.Host) {
			t.Errorf("%s: member host %s, want one of the container's %s addresses %v (not the agent's host name)", path, members[0].ServiceEndpoint.Host, nw, addrs)
		}
	}
}

// withoutNetworks removes the job's "networks" (dewar's extension): a stock
// Aurora client sends none.
func withoutNetworks(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "networks")
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
