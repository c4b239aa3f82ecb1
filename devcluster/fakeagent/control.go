package fakeagent

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/user"
	"slices"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// LaunchPath is the agent's control endpoint for `dewar-agent launch`: POST
// a TaskInfo in mesos-go's JSON form; the response streams every status
// update of the task, one TaskStatus JSON object a line, until a terminal one.
const LaunchPath = "/dewar/v1/launch"

// CLIFrameworkID is the framework tasks from LaunchPath run under.
const CLIFrameworkID = "dewar-cli"

// CLIFramework is the FrameworkInfo of tasks launched from the command line:
// checkpointing (executors survive agent restarts) and partition-aware.
func CLIFramework() mesos.FrameworkInfo {
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	yes := true
	return mesos.FrameworkInfo{
		ID:           &mesos.FrameworkID{Value: CLIFrameworkID},
		User:         name,
		Name:         "dewar-agent launch",
		Checkpoint:   &yes,
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}},
	}
}

func (a *Agent) serveLaunch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var task mesos.TaskInfo
	if err := task.UnmarshalJSON(body); err != nil {
		http.Error(w, "body is not a TaskInfo in JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if task.TaskID.Value == "" {
		task.TaskID.Value = task.Name + "-" + newID()
	}
	updates := make(chan mesos.TaskStatus, 256)
	stop := a.watch(func(fw string, st mesos.TaskStatus) {
		if fw == CLIFrameworkID && st.TaskID.Value == task.TaskID.Value {
			select {
			case updates <- st:
			default: // a reader this far behind has gone away
			}
		}
	})
	defer stop()
	if err := a.Launch(r.Context(), CLIFramework(), nil, task); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	for {
		select {
		case st := <-updates:
			b, err := st.MarshalJSON()
			if err != nil {
				a.log.Error("encoding update", zap.Error(err))
				return
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
			if isTerminal(st.GetState()) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// FormatUpdate is the one-line form in which the agent prints an update:
// state, task, source, reason, message and the addresses of every network
// in container_status.
func FormatUpdate(st mesos.TaskStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s task=%s source=%s", st.GetState(), st.TaskID.Value, st.GetSource())
	if st.Reason != nil {
		fmt.Fprintf(&b, " reason=%s", st.GetReason())
	}
	if st.Message != nil {
		fmt.Fprintf(&b, " message=%s", strconv.Quote(st.GetMessage()))
	}
	if addrs := Addresses(st); len(addrs) > 0 {
		fmt.Fprintf(&b, " addresses=%s", strings.Join(addrs, ","))
	}
	return b.String()
}

// Addresses lists container_status' addresses as network=ip.
func Addresses(st mesos.TaskStatus) []string {
	var out []string
	for _, n := range st.GetContainerStatus().GetNetworkInfos() {
		name := n.GetName()
		if name == "" {
			name = "-"
		}
		for _, ip := range n.IPAddresses {
			out = append(out, name+"="+ip.GetIPAddress())
		}
	}
	return out
}

func (a *Agent) printUpdate(fw string, st mesos.TaskStatus) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Fprintf(a.cfg.Out, "%s framework=%s\n", FormatUpdate(st), fw)
}

// State is the /state document.
type State struct {
	ID         string           `json:"id"`
	Hostname   string           `json:"hostname"`
	Endpoint   string           `json:"endpoint"`
	Socket     string           `json:"socket"`
	Frameworks []FrameworkState `json:"frameworks"`
	// Fatal lists the conditions on which a real Mesos agent would have
	// aborted (see Agent.Fatal).
	Fatal []string `json:"fatal,omitempty"`
}

// FrameworkState is a framework in /state.
type FrameworkState struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Checkpoint bool            `json:"checkpoint"`
	Executors  []ExecutorState `json:"executors"`
}

// ExecutorState is an executor's current run in /state.
type ExecutorState struct {
	ID          string            `json:"id"`
	ContainerID string            `json:"container_id"`
	PID         int               `json:"pid"`
	Sandbox     string            `json:"sandbox"`
	State       string            `json:"state"` // registering, subscribed, disconnected, terminated
	Networks    []json.RawMessage `json:"network_infos"`
	Tasks       []TaskState       `json:"tasks"`
}

// TaskState is a task in /state with its latest status (mesos-go JSON).
type TaskState struct {
	ID     string          `json:"id"`
	Name   string          `json:"name"`
	State  string          `json:"state"`
	Status json.RawMessage `json:"status,omitempty"`
}

// Snapshot returns what /state serves.
func (a *Agent) Snapshot() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := State{ID: a.info.ID.Value, Hostname: a.info.Hostname, Endpoint: a.Addr(), Socket: a.SocketPath(), Frameworks: []FrameworkState{}}
	for _, err := range a.fatal {
		s.Fatal = append(s.Fatal, err.Error())
	}
	for _, fw := range slices.Sorted(maps.Keys(a.frameworks)) {
		f := a.frameworks[fw]
		fs := FrameworkState{ID: fw, Name: f.info.Name, Checkpoint: f.checkpoints(), Executors: []ExecutorState{}}
		for _, exID := range slices.Sorted(maps.Keys(f.executors)) {
			ex := f.executors[exID]
			es := ExecutorState{ID: exID, ContainerID: ex.run.ContainerID, PID: ex.run.PID, Sandbox: ex.run.Sandbox, Networks: []json.RawMessage{}, Tasks: []TaskState{}}
			switch {
			case ex.ended:
				es.State = "terminated"
			case ex.conn != nil:
				es.State = "subscribed"
			case ex.subscribed:
				es.State = "disconnected"
			default:
				es.State = "registering"
			}
			for i := range ex.networks {
				if b, err := ex.networks[i].MarshalJSON(); err == nil {
					es.Networks = append(es.Networks, b)
				}
			}
			for _, id := range ex.order {
				t := ex.tasks[id]
				ts := TaskState{ID: id, Name: t.info.Name, State: t.state().String()}
				if t.latest != nil {
					if b, err := t.latest.MarshalJSON(); err == nil {
						ts.Status = b
					}
				}
				es.Tasks = append(es.Tasks, ts)
			}
			fs.Executors = append(fs.Executors, es)
		}
		s.Frameworks = append(s.Frameworks, fs)
	}
	return s
}

func (a *Agent) serveState(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(a.Snapshot())
}

// ExecutorDone returns a channel closed when the executor's current run has
// ended and its container is cleaned up (nil for an unknown executor).
func (a *Agent) ExecutorDone(frameworkID, executorID string) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.frameworks[frameworkID]; f != nil {
		if ex := f.executors[executorID]; ex != nil {
			return ex.exited
		}
	}
	return nil
}

// Tasks calls fn for every task the agent knows, with its latest status (a
// synthesized TASK_STAGING before the first update): what a master started
// after the agent needs to account for recovered tasks. exec is nil for a
// command task.
func (a *Agent) Tasks(fn func(fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, task mesos.TaskInfo, latest mesos.TaskStatus)) {
	type item struct {
		fw     mesos.FrameworkInfo
		exec   *mesos.ExecutorInfo
		task   mesos.TaskInfo
		latest mesos.TaskStatus
	}
	var items []item
	a.mu.Lock()
	for _, fwID := range slices.Sorted(maps.Keys(a.frameworks)) {
		f := a.frameworks[fwID]
		for _, exID := range slices.Sorted(maps.Keys(f.executors)) {
			ex := f.executors[exID]
			for _, id := range ex.order {
				t := ex.tasks[id]
				it := item{fw: f.info, task: t.info}
				if t.info.Executor != nil || t.info.Command == nil {
					e := ex.info
					it.exec = &e
				}
				if t.latest != nil {
					it.latest = *t.latest
				} else {
					it.latest = mesos.TaskStatus{TaskID: t.info.TaskID, State: mesos.TASK_STAGING.Enum(), AgentID: a.info.ID, ExecutorID: &ex.info.ExecutorID}
				}
				items = append(items, it)
			}
		}
	}
	a.mu.Unlock()
	for _, it := range items {
		fn(it.fw, it.exec, it.task, it.latest)
	}
}
