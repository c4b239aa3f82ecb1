package mesostest

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/scheduler"
	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// MasterState is the part of the master's (and agent's) /state the tests
// read. Tasks and statuses are Mesos' JSON models (src/common/http.cpp,
// model(const Task&), model(const TaskStatus&)), not the protobuf mapping.
type MasterState struct {
	Slaves []struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
		Active   bool   `json:"active"`
	} `json:"slaves"`
	Frameworks []masterFramework `json:"frameworks"`
	// A torn down framework (the stub tears down once its job is killed)
	// moves here with its tasks.
	CompletedFrameworks []masterFramework `json:"completed_frameworks"`
}

type masterFramework struct {
	ID             string      `json:"id"`
	Name           string      `json:"name"`
	Tasks          []StateTask `json:"tasks"`
	CompletedTasks []StateTask `json:"completed_tasks"`
}

// agentState is the part of the agent's /state the tests read.
type agentState struct {
	Frameworks []struct {
		ID        string `json:"id"`
		Executors []struct {
			ID        string      `json:"id"`
			Directory string      `json:"directory"`
			Container string      `json:"container"`
			Tasks     []StateTask `json:"tasks"`
		} `json:"executors"`
	} `json:"frameworks"`
}

// StateTask is a task in the master's or the agent's /state.
type StateTask struct {
	ID         string        `json:"id"`
	State      string        `json:"state"`
	ExecutorID string        `json:"executor_id"`
	Statuses   []StateStatus `json:"statuses"`
}

// StateStatus is one of a task's statuses in /state.
type StateStatus struct {
	State  string `json:"state"`
	Labels []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"labels"`
	ContainerStatus *struct {
		NetworkInfos []struct {
			Name        string `json:"name"`
			IPAddresses []struct {
				IPAddress string `json:"ip_address"`
			} `json:"ip_addresses"`
		} `json:"network_infos"`
	} `json:"container_status"`
}

// Views reads both address views from the latest status that carries
// addresses, as the stub reads them from an update (scheduler.ViewsOf).
func (tk StateTask) Views(t *testing.T) scheduler.Views {
	t.Helper()
	for i := len(tk.Statuses) - 1; i >= 0; i-- {
		s := tk.Statuses[i]
		if s.ContainerStatus == nil || len(s.ContainerStatus.NetworkInfos) == 0 {
			continue
		}
		st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: tk.ID}, ContainerStatus: &mesos.ContainerStatus{}}
		for _, ni := range s.ContainerStatus.NetworkInfos {
			name := ni.Name
			info := mesos.NetworkInfo{Name: &name}
			for _, a := range ni.IPAddresses {
				addr := a.IPAddress
				info.IPAddresses = append(info.IPAddresses, mesos.NetworkInfo_IPAddress{IPAddress: &addr})
			}
			st.ContainerStatus.NetworkInfos = append(st.ContainerStatus.NetworkInfos, info)
		}
		if len(s.Labels) > 0 {
			st.Labels = &mesos.Labels{}
			for _, l := range s.Labels {
				v := l.Value
				st.Labels.Labels = append(st.Labels.Labels, mesos.Label{Key: l.Key, Value: &v})
			}
		}
		v, err := scheduler.ViewsOf(st)
		if err != nil {
			t.Fatalf("task %s: %v", tk.ID, err)
		}
		return v
	}
	return scheduler.Views{}
}

// MasterTasks returns the master's record of every task (running and
// completed) by id.
func (c *Cluster) MasterTasks(t *testing.T) map[string]StateTask {
	t.Helper()
	var st MasterState
	if err := c.GetJSON(MasterAddr, "/state", &st); err != nil {
		t.Fatalf("master /state: %v", err)
	}
	out := map[string]StateTask{}
	for _, fw := range append(st.Frameworks, st.CompletedFrameworks...) {
		for _, tk := range append(fw.Tasks, fw.CompletedTasks...) {
			out[tk.ID] = tk
		}
	}
	return out
}

// AgentTasks returns the agent's record of every task of a live executor.
func (c *Cluster) AgentTasks(t *testing.T) map[string]StateTask {
	t.Helper()
	var st agentState
	if err := c.GetJSON(AgentAddr, "/state", &st); err != nil {
		t.Fatalf("agent /state: %v", err)
	}
	out := map[string]StateTask{}
	for _, fw := range st.Frameworks {
		for _, ex := range fw.Executors {
			for _, tk := range ex.Tasks {
				out[tk.ID] = tk
			}
		}
	}
	return out
}

// StreamRecord is one record of the agent's checkpointed status update
// stream of a task: an update as the agent accepted it, or the framework's
// acknowledgement of one.
type StreamRecord struct {
	Ack    bool
	UUID   string // hex; for an UPDATE the status' uuid
	Status mesos.TaskStatus
}

func (r StreamRecord) String() string {
	if r.Ack {
		return "ACK " + r.UUID
	}
	return fmt.Sprintf("UPDATE %s %s (%s)", r.UUID, r.Status.GetState(), r.Status.GetSource())
}

// TaskStream reads the agent's checkpointed status update stream of
// taskID (mesosmeta: <work_dir>/meta/slaves/.../runs/<container>/tasks/
// <task>/task.updates).
func (c *Cluster) TaskStream(t *testing.T, taskID string) []StreamRecord {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(c.AgentWork, "meta", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "tasks", taskID, mesosmeta.UpdatesFile))
	var files []string
	for _, p := range paths {
		if !strings.Contains(p, "/latest/") { // slaves/latest, runs/latest: symlinks
			files = append(files, p)
		}
	}
	if len(files) != 1 {
		t.Fatalf("task %s: want one checkpointed update stream, found %v", taskID, files)
	}
	recs, err := mesosmeta.ReadStream(files[0])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]StreamRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, StreamRecord{Ack: r.Ack, UUID: hex.EncodeToString(r.UUID), Status: r.Status})
	}
	return out
}

// CheckStream checks a checkpointed stream: every update accepted once
// (distinct UUIDs) and acknowledged exactly once, and returns the states in
// order.
func CheckStream(t *testing.T, taskID string, recs []StreamRecord) []string {
	t.Helper()
	var states []string
	updates, acks := map[string]int{}, map[string]int{}
	for _, r := range recs {
		if r.Ack {
			acks[r.UUID]++
			continue
		}
		updates[r.UUID]++
		states = append(states, r.Status.GetState().String())
	}
	for u, n := range updates {
		if n != 1 {
			t.Errorf("task %s: update %s checkpointed %d times:\n%s", taskID, u, n, DescribeStream(recs))
		}
		if acks[u] != 1 {
			t.Errorf("task %s: update %s acknowledged %d times:\n%s", taskID, u, acks[u], DescribeStream(recs))
		}
	}
	for u := range acks {
		if updates[u] == 0 {
			t.Errorf("task %s: acknowledgement %s of no update:\n%s", taskID, u, DescribeStream(recs))
		}
	}
	return states
}

// AllAcked reports whether every update of the stream has been acknowledged.
func AllAcked(recs []StreamRecord) bool {
	acked := map[string]bool{}
	for _, r := range recs {
		if r.Ack {
			acked[r.UUID] = true
		}
	}
	for _, r := range recs {
		if !r.Ack && !acked[r.UUID] {
			return false
		}
	}
	return len(recs) > 0
}

// DescribeStream renders a stream, one record a line, for messages.
func DescribeStream(recs []StreamRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}
