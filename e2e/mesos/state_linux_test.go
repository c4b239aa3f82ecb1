package mesose2e_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/scheduler"
)

// masterState is the part of the master's (and agent's) /state the tests
// read. Tasks and statuses are Mesos' JSON models (src/common/http.cpp,
// model(const Task&), model(const TaskStatus&)), not the protobuf mapping.
type masterState struct {
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
	Tasks          []stateTask `json:"tasks"`
	CompletedTasks []stateTask `json:"completed_tasks"`
}

// agentState is the part of the agent's /state the tests read.
type agentState struct {
	Frameworks []struct {
		ID        string `json:"id"`
		Executors []struct {
			ID        string      `json:"id"`
			Directory string      `json:"directory"`
			Container string      `json:"container"`
			Tasks     []stateTask `json:"tasks"`
		} `json:"executors"`
	} `json:"frameworks"`
}

type stateTask struct {
	ID         string        `json:"id"`
	State      string        `json:"state"`
	ExecutorID string        `json:"executor_id"`
	Statuses   []stateStatus `json:"statuses"`
}

type stateStatus struct {
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

// views reads both address views from the latest status that carries
// addresses, as the stub reads them from an update (scheduler.ViewsOf).
func (tk stateTask) views(t *testing.T) scheduler.Views {
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

// masterTasks returns the master's record of every task (running and
// completed) by id.
func (c *cluster) masterTasks(t *testing.T) map[string]stateTask {
	t.Helper()
	var st masterState
	if err := c.getJSON(masterAddr, "/state", &st); err != nil {
		t.Fatalf("master /state: %v", err)
	}
	out := map[string]stateTask{}
	for _, fw := range append(st.Frameworks, st.CompletedFrameworks...) {
		for _, tk := range append(fw.Tasks, fw.CompletedTasks...) {
			out[tk.ID] = tk
		}
	}
	return out
}

// agentTasks returns the agent's record of every task of a live executor.
func (c *cluster) agentTasks(t *testing.T) map[string]stateTask {
	t.Helper()
	var st agentState
	if err := c.getJSON(agentAddr, "/state", &st); err != nil {
		t.Fatalf("agent /state: %v", err)
	}
	out := map[string]stateTask{}
	for _, fw := range st.Frameworks {
		for _, ex := range fw.Executors {
			for _, tk := range ex.Tasks {
				out[tk.ID] = tk
			}
		}
	}
	return out
}

// streamRecord is one record of the agent's checkpointed status update
// stream of a task: an update as the agent accepted it, or the framework's
// acknowledgement of one.
type streamRecord struct {
	Ack    bool
	UUID   string // hex; for an UPDATE the status' uuid
	Status mesos.TaskStatus
}

func (r streamRecord) String() string {
	if r.Ack {
		return "ACK " + r.UUID
	}
	return fmt.Sprintf("UPDATE %s %s (%s)", r.UUID, r.Status.GetState(), r.Status.GetSource())
}

// taskStream reads the agent's checkpointed status update stream of
// taskID: <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/
// runs/<container>/tasks/<task>/task.updates (src/slave/paths.hpp),
// StatusUpdateRecords (src/messages/messages.proto) each written as a
// native-endian uint32 length and the message (stout's protobuf::write).
func (c *cluster) taskStream(t *testing.T, taskID string) []streamRecord {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(c.agentWork, "meta", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "tasks", taskID, "task.updates"))
	var files []string
	for _, p := range paths {
		if !strings.Contains(p, "/latest/") { // slaves/latest, runs/latest: symlinks
			files = append(files, p)
		}
	}
	if len(files) != 1 {
		t.Fatalf("task %s: want one checkpointed update stream, found %v", taskID, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseStream(b)
	if err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return recs
}

func parseStream(b []byte) ([]streamRecord, error) {
	var out []streamRecord
	for len(b) > 0 {
		if len(b) < 4 {
			return out, nil // a record being written
		}
		size := binary.LittleEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(size) {
			return out, nil
		}
		msg := b[4 : 4+size]
		b = b[4+size:]
		varints, blobs, err := protoFields(msg)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(out), err)
		}
		var r streamRecord
		switch varints[1] { // StatusUpdateRecord.type
		case 0: // UPDATE
			_, upd, err := protoFields(blobs[2]) // StatusUpdateRecord.update
			if err != nil {
				return nil, fmt.Errorf("record %d: update: %w", len(out), err)
			}
			if err := r.Status.Unmarshal(upd[4]); err != nil { // StatusUpdate.status
				return nil, fmt.Errorf("record %d: status: %w", len(out), err)
			}
			r.UUID = hex.EncodeToString(r.Status.UUID)
		case 1: // ACK
			r.Ack, r.UUID = true, hex.EncodeToString(blobs[3])
		default:
			return nil, fmt.Errorf("record %d: unknown type %d", len(out), varints[1])
		}
		out = append(out, r)
	}
	return out, nil
}

// protoFields splits a protobuf message into its varint and
// length-delimited fields (the last occurrence of each wins).
func protoFields(b []byte) (map[int]uint64, map[int][]byte, error) {
	varints, blobs := map[int]uint64{}, map[int][]byte{}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, nil, errors.New("bad field key")
		}
		b = b[n:]
		num := int(key >> 3)
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, nil, errors.New("bad varint")
			}
			varints[num], b = v, b[n:]
		case 1:
			if len(b) < 8 {
				return nil, nil, errors.New("short fixed64")
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return nil, nil, errors.New("short fixed32")
			}
			b = b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, nil, errors.New("bad length")
			}
			blobs[num], b = bytes.Clone(b[n:n+int(l)]), b[n+int(l):]
		default:
			return nil, nil, fmt.Errorf("unsupported wire type %d", key&7)
		}
	}
	return varints, blobs, nil
}

// checkStream checks a checkpointed stream: every update accepted once
// (distinct UUIDs) and acknowledged exactly once, and returns the states in
// order.
func checkStream(t *testing.T, taskID string, recs []streamRecord) []string {
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
			t.Errorf("task %s: update %s checkpointed %d times:\n%s", taskID, u, n, describe(recs))
		}
		if acks[u] != 1 {
			t.Errorf("task %s: update %s acknowledged %d times:\n%s", taskID, u, acks[u], describe(recs))
		}
	}
	for u := range acks {
		if updates[u] == 0 {
			t.Errorf("task %s: acknowledgement %s of no update:\n%s", taskID, u, describe(recs))
		}
	}
	return states
}

// allAcked reports whether every update of the stream has been acknowledged.
func allAcked(recs []streamRecord) bool {
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

func describe(recs []streamRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}
