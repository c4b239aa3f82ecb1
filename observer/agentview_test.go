package observer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// writeAgentStream writes, where a Mesos agent keeps it, the task's status
// update stream with one RUNNING update whose container_status lists the
// executor's NetworkInfos and then the agent's (as Slave::_statusUpdate
// merges them).
func writeAgentStream(t *testing.T, run, taskID string, executor, agent map[string][]string) {
	t.Helper()
	var nis []mesos.NetworkInfo
	for _, view := range []map[string][]string{executor, agent} {
		for _, name := range []string{"blue", "green"} {
			addrs, ok := view[name]
			if !ok {
				continue
			}
			ni := mesos.NetworkInfo{Name: &name}
			for _, a := range addrs {
				ni.IPAddresses = append(ni.IPAddresses, mesos.NetworkInfo_IPAddress{IPAddress: &a})
			}
			nis = append(nis, ni)
		}
	}
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: mesos.TASK_RUNNING.Enum(), UUID: bytes.Repeat([]byte{7}, 16),
		ContainerStatus: &mesos.ContainerStatus{NetworkInfos: nis}}
	b, err := mesosmeta.AppendUpdate(nil, "fw-1", "thermos-"+taskID, "agent-1", st)
	if err != nil {
		t.Fatal(err)
	}
	meta, ok := mesosmeta.MetaRunDir(run)
	if !ok {
		t.Fatalf("%s is not a Mesos run dir", run)
	}
	path := mesosmeta.UpdatesPath(meta, taskID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAgentView: the task page and /j/task show the agent's account of the
// addresses, read from the agent's checkpointed updates, and say whether it
// agrees with the executor's; without a stream they say why there is none.
func TestAgentView(t *testing.T) {
	f := newFixture(t)
	executorView := map[string][]string{"blue": {"198.18.0.2", "2001:db8:1::2"}, "green": {"198.19.0.7", "2001:db8:2::7"}}
	for _, tt := range []struct {
		name   string
		agent  map[string][]string // nil: no stream
		agrees bool
		page   string
	}{
		{"no stream", nil, false, "its framework does not checkpoint"},
		{"same addresses", executorView, true, "agree with the executor"},
		{"another address", map[string][]string{"blue": {"198.18.0.9"}, "green": {"198.19.0.7", "2001:db8:2::7"}}, false, "differ from the executor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.agent != nil {
				writeAgentStream(t, f.run, "t-two", executorView, tt.agent)
			}
			var doc map[string]struct {
				Agent AgentView `json:"agent_view"`
			}
			if err := json.Unmarshal([]byte(f.mustGet(t, "/j/task/t-two")), &doc); err != nil {
				t.Fatal(err)
			}
			av := doc["t-two"].Agent
			var got int
			for _, n := range av.Networks {
				got += len(n.Addresses)
			}
			want := 0
			for _, a := range tt.agent {
				want += len(a)
			}
			if av.Agrees != tt.agrees || got != want {
				t.Errorf("agent view %+v: %d addresses, agrees %v; want %d, %v", av, got, av.Agrees, want, tt.agrees)
			}
			if page := f.mustGet(t, "/task/t-two"); !strings.Contains(page, tt.page) {
				t.Errorf("the task page does not say %q", tt.page)
			}
		})
	}
}
