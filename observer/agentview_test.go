package observer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestAgentViewReadsChangedStreamsOnly: the agent's stream is read once
// however often the task is shown, and again only when the agent has
// appended to it; a stream that goes away is forgotten.
func TestAgentViewReadsChangedStreamsOnly(t *testing.T) {
	f := newFixture(t)
	var reads atomic.Int64
	f.srv.agent.read = func(path string) ([]mesosmeta.Record, error) {
		reads.Add(1)
		return mesosmeta.ReadStream(path)
	}
	views := map[string][]string{"blue": {"198.18.0.2", "2001:db8:1::2"}, "green": {"198.19.0.7", "2001:db8:2::7"}}
	writeAgentStream(t, f.run, "t-two", views, views)
	for range 3 {
		f.mustGet(t, "/task/t-two")
		f.mustGet(t, "/j/task/t-two")
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("6 requests read the unchanged stream %d times, want 1", n)
	}

	// The agent appends an update with another address.
	meta, _ := mesosmeta.MetaRunDir(f.run)
	path := mesosmeta.UpdatesPath(meta, "t-two")
	v4 := mesos.IPv4
	blue, green, addr9, addr7 := "blue", "green", "198.18.0.9", "198.19.0.7"
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t-two"}, State: mesos.TASK_RUNNING.Enum(), UUID: bytes.Repeat([]byte{8}, 16),
		ContainerStatus: &mesos.ContainerStatus{NetworkInfos: []mesos.NetworkInfo{
			{Name: &blue, IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: &v4, IPAddress: &addr9}}},
			{Name: &green, IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: &v4, IPAddress: &addr7}}},
		}}}
	rec, err := mesosmeta.AppendUpdate(nil, "fw-1", "thermos-t-two", "agent-1", st)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for range 3 {
		if page := f.mustGet(t, "/task/t-two"); !strings.Contains(page, "198.18.0.9") {
			t.Fatal("the task page does not show the address the agent appended")
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("reads after one append and 3 more requests: %d, want 2", n)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if page := f.mustGet(t, "/task/t-two"); !strings.Contains(page, "its framework does not checkpoint") {
		t.Error("the task page still shows a stream that is gone")
	}
	f.srv.agent.mu.Lock()
	n := len(f.srv.agent.m)
	f.srv.agent.mu.Unlock()
	if n != 0 || reads.Load() != 2 {
		t.Errorf("after the stream went: %d cached, %d reads; want 0 and 2", n, reads.Load())
	}
}

// TestCachesForgetGoneTasksWithoutScrapes: the status update stream and
// the disk walk a task page cached are dropped by the index's rescan that
// finds the task gone, though nobody scrapes the metrics.
func TestCachesForgetGoneTasksWithoutScrapes(t *testing.T) {
	f := newFixture(t)
	views := map[string][]string{"blue": {"198.18.0.2", "2001:db8:1::2"}, "green": {"198.19.0.7", "2001:db8:2::7"}}
	writeAgentStream(t, f.run, "t-two", views, views)
	f.mustGet(t, "/task/t-two")
	cached := func() (agent, disk int) {
		f.srv.agent.mu.Lock()
		agent = len(f.srv.agent.m)
		f.srv.agent.mu.Unlock()
		f.srv.disk.mu.Lock()
		_, ok := f.srv.disk.m[f.run]
		f.srv.disk.mu.Unlock()
		if ok {
			disk = 1
		}
		return agent, disk
	}
	if a, d := cached(); a != 1 || d != 1 {
		t.Fatalf("after the task page: %d streams and %d disk walks cached, want 1 and 1", a, d)
	}
	if err := os.RemoveAll(f.run); err != nil {
		t.Fatal(err)
	}
	f.mustGet(t, "/") // rescans (TTL 1 ns)
	if a, d := cached(); a != 0 || d != 0 {
		t.Errorf("after the rescan without the task: %d streams and %d disk walks cached, want 0 and 0", a, d)
	}
}
