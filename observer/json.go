package observer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// JSON in the shapes of Thermos' observer (http/json.py and
// task_observer.py: main, _task, process), plus what dewar adds: the
// job key, every network with its addresses, serversets and health.
// Timestamps are seconds since the epoch, as there.

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

func seconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

// taskRow is an entry of /j/task_ids (task_observer.py, main: task_row).
type taskRow struct {
	TaskID          string         `json:"task_id"`
	Name            string         `json:"name,omitempty"`
	Role            string         `json:"role,omitempty"`
	Environment     string         `json:"environment,omitempty"`
	Job             string         `json:"job,omitempty"`
	Instance        int            `json:"instance"`
	LaunchTimestamp float64        `json:"launch_timestamp"`
	State           string         `json:"state"`
	MesosState      string         `json:"mesos_state,omitempty"`
	StateTimestamp  float64        `json:"state_timestamp"`
	Ports           map[string]int `json:"ports"`
	Addresses       []string       `json:"addresses"`
	Unreadable      string         `json:"unreadable,omitempty"`
}

func makeTaskRow(e *Entry) taskRow {
	if e.Task == nil {
		return taskRow{TaskID: e.ID, State: "UNREADABLE", Unreadable: e.Err.Error(), Ports: map[string]int{}, Addresses: []string{}}
	}
	t := e.Task
	row := taskRow{TaskID: e.ID, Name: t.Name, Role: t.Role, Environment: t.Environment, Job: t.Job, Instance: t.Instance,
		LaunchTimestamp: seconds(t.Launched()), State: runnerState(t), MesosState: t.State(),
		StateTimestamp: seconds(stateSince(t)), Ports: t.Ports, Addresses: addressList(t)}
	if row.Ports == nil {
		row.Ports = map[string]int{}
	}
	if row.Addresses == nil {
		row.Addresses = []string{}
	}
	return row
}

func (s *Server) handleJSONTaskIDs(w http.ResponseWriter, r *http.Request) {
	q := parseListQuery(r)
	which := r.PathValue("which")
	if which == "" {
		which = "all"
	}
	switch which {
	case "all", "active", "finished":
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown task type " + which + ": all, active or finished"})
		return
	}
	sel := s.selectTasks(q)
	rows := make([]taskRow, 0, len(sel.Page))
	for _, e := range sel.Page {
		rows = append(rows, makeTaskRow(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": rows, "type": which, "offset": q.Offset, "num": q.Num, "task_count": sel.Total})
}

func (s *Server) handleJSONTaskIDCount(w http.ResponseWriter, r *http.Request) {
	var active, finished int
	for _, e := range s.index.Tasks() {
		if e.Active() {
			active++
		} else {
			finished++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"active": active, "finished": finished, "all": active + finished})
}

// taskJSON is /j/task/<id>'s value (task_observer.py, _task).
type taskJSON struct {
	taskRow
	User       string                 `json:"user,omitempty"`
	Processes  map[string][]string    `json:"processes"`
	Statuses   [][2]any               `json:"statuses"`
	Networks   []NetView              `json:"networks"`
	Agent      AgentView              `json:"agent_view"` // the agent's account of the addresses
	Serversets []checkpoint.Serverset `json:"serversets"`
	Health     *checkpoint.Health     `json:"health,omitempty"`
}

func (s *Server) makeTaskJSON(e *Entry) taskJSON {
	tj := taskJSON{taskRow: makeTaskRow(e), Processes: map[string][]string{}, Statuses: [][2]any{}, Networks: []NetView{}, Serversets: []checkpoint.Serverset{}}
	if t := e.Task; t != nil {
		tj.User, tj.Processes, tj.Networks, tj.Health = t.User, processBuckets(t), networks(t), t.Health
		tj.Agent = s.agent.view(e)
		for _, st := range t.States {
			tj.Statuses = append(tj.Statuses, [2]any{st.State, seconds(st.Time)})
		}
		if t.Serversets != nil {
			tj.Serversets = t.Serversets
		}
	}
	return tj
}

// handleJSONTasks is /j/task?task_id=a,b (unknown ids are left out) and
// /j/task/<id> (404 when unknown).
func (s *Server) handleJSONTasks(w http.ResponseWriter, r *http.Request) {
	out := map[string]taskJSON{}
	if id := r.PathValue("id"); id != "" {
		e := s.index.Get(id)
		if e == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown task " + id})
			return
		}
		out[id] = s.makeTaskJSON(e)
		writeJSON(w, http.StatusOK, out)
		return
	}
	var ids []string
	if v := r.URL.Query().Get("task_id"); v != "" {
		ids = strings.Split(v, ",")
	}
	for _, id := range ids {
		if e := s.index.Get(id); e != nil {
			out[id] = s.makeTaskJSON(e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleJSONProcess is /j/process/<id>/<process>[/<run>]
// (task_observer.py, process: the latest run without <run>).
func (s *Server) handleJSONProcess(w http.ResponseWriter, r *http.Request) {
	e, p := s.process(w, r)
	if p == nil {
		return
	}
	n, ok := runOf(r, p)
	if !ok || len(p.Runs) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("process %s of task %s has no run %s", p.Name, e.ID, r.PathValue("run"))})
		return
	}
	for _, run := range p.Runs {
		if run.Run != n {
			continue
		}
		d := map[string]any{"process_name": p.Name, "process_run": run.Run, "state": run.State, "pid": run.PID}
		if run.Start != nil {
			d["start_time"] = seconds(*run.Start)
		}
		if run.Stop != nil {
			d["stop_time"] = seconds(*run.Stop)
		}
		if run.ExitCode != nil {
			d["return_code"] = *run.ExitCode
		}
		// Thermos' "used" of a process; cpu here is CPU seconds so far
		// (Thermos: a rate), ram resident bytes; the executor's last
		// sample, else /proc's for a running process.
		if u, ok := runUse(run, e.Active(), s.usage.lazy(s.log)); ok {
			d["used"] = map[string]any{"cpu_seconds": u.cpu, "ram": u.rss}
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
}
