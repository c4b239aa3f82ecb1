package observer

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

type runRow struct {
	Run                                int
	State, Start, Stop, Duration, Exit string
	Message, Stdout, Stderr            string
	CPU, RSS                           string // the executor's last sample, else /proc's of a running run
	Sampled                            string // when the executor sampled CPU and RSS
	PID                                int
	Selected                           bool
}

func makeRunRow(taskID, process string, r checkpoint.Run, now time.Time, active bool, live func() sessions) runRow {
	logs := "/logs/" + url.PathEscape(taskID) + "/" + url.PathEscape(process) + "/" + strconv.Itoa(r.Run) + "/"
	row := runRow{Run: r.Run, State: r.State, PID: r.PID, Start: fmtTimePtr(r.Start), Stop: fmtTimePtr(r.Stop),
		Duration: fmtDuration(r, now), Exit: fmtExit(r), Message: r.Message, Stdout: logs + "stdout", Stderr: logs + "stderr"}
	if u, ok := runUse(r, active, live); ok {
		row.CPU, row.RSS, row.Sampled = fmt.Sprintf("%.2f s", u.cpu), fmtBytes(int64(u.rss)), fmtTime(u.sampled)
	}
	return row
}

type stateRow struct{ State, Time, Message string }

type serversetRow struct {
	Path, Network, Endpoint, Time string
	Additional                    []string
	Joined                        bool
}

func endpointString(e checkpoint.Endpoint) string {
	h := e.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(e.Port)
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	e := s.entry(w, r)
	if e == nil {
		return
	}
	type processRow struct {
		Name string
		Runs int
		Last *runRow
	}
	type portRow struct {
		Name string
		Port int
	}
	type taskView struct {
		ID, Job, User, Hostname, State, RunnerState, Health, HealthMessage, Disk string
		Instance                                                                 int
		Networks                                                                 []NetView
		Agent                                                                    AgentView
		Serversets                                                               []serversetRow
		Processes                                                                []processRow
		Ports                                                                    []portRow
		States                                                                   []stateRow
	}
	data := struct {
		page
		Entry *Entry
		Task  *taskView
	}{page: page{Title: e.ID, Hostname: s.opt.Hostname}, Entry: e}
	if t := e.Task; t != nil {
		now := time.Now()
		live := s.usage.lazy(s.log)
		v := &taskView{ID: e.ID, Job: jobKey(t), User: t.User, Hostname: t.Hostname, State: t.State(),
			RunnerState: runnerState(t), Instance: t.Instance, Networks: networks(t), Agent: s.agent.view(e), Health: "no health check"}
		if h := t.Health; h != nil {
			v.Health, v.HealthMessage = h.State, h.Message
		}
		du := s.disk.of(e)
		v.Disk = fmtBytes(du.Bytes)
		if !du.Complete {
			v.Disk = "more than " + v.Disk
		}
		for _, ss := range t.Serversets {
			row := serversetRow{Path: ss.Path, Network: ss.Network, Endpoint: endpointString(ss.Endpoint), Joined: ss.Joined, Time: fmtTime(ss.Time)}
			for _, name := range slices.Sorted(maps.Keys(ss.Additional)) {
				row.Additional = append(row.Additional, name+" "+endpointString(ss.Additional[name]))
			}
			v.Serversets = append(v.Serversets, row)
		}
		for _, p := range t.Processes {
			pr := processRow{Name: p.Name, Runs: len(p.Runs)}
			if last := p.Last(); last != nil {
				rr := makeRunRow(e.ID, p.Name, *last, now, e.Active(), live)
				pr.Last = &rr
			}
			v.Processes = append(v.Processes, pr)
		}
		for _, name := range sortedPorts(t.Ports) {
			v.Ports = append(v.Ports, portRow{name, t.Ports[name]})
		}
		for _, st := range t.States {
			v.States = append(v.States, stateRow{State: st.State, Time: fmtTime(st.Time), Message: st.Message})
		}
		data.Task = v
		if e.Active() {
			data.Refresh = 10
		}
	}
	s.render(w, "task", data)
}

// process finds the task's process named in the request; 404 otherwise.
func (s *Server) process(w http.ResponseWriter, r *http.Request) (*Entry, *checkpoint.Process) {
	e := s.entry(w, r)
	if e == nil {
		return nil, nil
	}
	if e.Task == nil {
		http.Error(w, "task "+e.ID+" is unreadable: "+e.Err.Error(), http.StatusServiceUnavailable)
		return nil, nil
	}
	name := r.PathValue("process")
	p := e.Task.Process(name)
	if p == nil {
		http.Error(w, fmt.Sprintf("task %s has no process %q", e.ID, name), http.StatusNotFound)
		return nil, nil
	}
	return e, p
}

// runOf parses the run number of the request: the last run when absent.
func runOf(r *http.Request, p *checkpoint.Process) (int, bool) {
	v := r.PathValue("run")
	if v == "" || v == "-1" {
		if last := p.Last(); last != nil {
			return last.Run, true
		}
		return 0, v == ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	for _, run := range p.Runs {
		if run.Run == n {
			return n, true
		}
	}
	return n, false
}

func (s *Server) handleProcess(w http.ResponseWriter, r *http.Request) {
	e, p := s.process(w, r)
	if p == nil {
		return
	}
	sel, ok := runOf(r, p)
	if !ok {
		http.Error(w, fmt.Sprintf("process %s of task %s has no run %s", p.Name, e.ID, r.PathValue("run")), http.StatusNotFound)
		return
	}
	now := time.Now()
	live := s.usage.lazy(s.log)
	data := struct {
		page
		TaskID, Process string
		Runs            []runRow
	}{page: page{Title: p.Name + " · " + e.ID, Hostname: s.opt.Hostname}, TaskID: e.ID, Process: p.Name}
	for _, run := range p.Runs {
		row := makeRunRow(e.ID, p.Name, run, now, e.Active(), live)
		row.Selected = run.Run == sel && r.PathValue("run") != ""
		data.Runs = append(data.Runs, row)
	}
	if e.Active() {
		data.Refresh = 10
	}
	s.render(w, "process", data)
}

// logRel is the log file of a run relative to the run directory: the
// checkpoint's log_dir relative to its sandbox ("sandbox/.logs" for dewar;
// ".logs" when a checkpoint names none), as
// Thermos' TaskPath process_logdir.
func logRel(t *checkpoint.Task, process string, run int, stream string) (string, error) {
	dir := ".logs"
	if t.LogDir != "" && t.Sandbox != "" {
		rel, err := filepath.Rel(t.Sandbox, t.LogDir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", errForbidden
		}
		dir = filepath.ToSlash(rel)
	}
	if strings.ContainsAny(process, "/\x00") || process == ".." || process == "." {
		return "", errForbidden
	}
	return path.Join(dir, process, strconv.Itoa(run), stream), nil
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	e, p := s.process(w, r)
	if p == nil {
		return
	}
	stream := r.PathValue("stream")
	if stream != "stdout" && stream != "stderr" {
		http.Error(w, "logs are stdout or stderr, not "+stream, http.StatusNotFound)
		return
	}
	run, ok := runOf(r, p)
	if !ok {
		http.Error(w, fmt.Sprintf("process %s of task %s has no run %s", p.Name, e.ID, r.PathValue("run")), http.StatusNotFound)
		return
	}
	rel, err := logRel(e.Task, p.Name, run, stream)
	if err != nil {
		fileError(w, "log", err)
		return
	}
	data := struct {
		page
		TaskID, Process, Stream, Data, Raw string
		Run                                int
		Size, Shown                        int64
		Missing, Running                   bool
	}{page: page{Title: stream + " · " + p.Name, Hostname: s.opt.Hostname}, TaskID: e.ID, Process: p.Name, Stream: stream, Run: run,
		Raw: "/download/" + url.PathEscape(e.ID) + "/" + rel}
	for _, rr := range p.Runs {
		if rr.Run == run && rr.State == checkpoint.RunRunning {
			data.Running, data.Refresh = true, 5
		}
	}
	f, fi, err := openIn(e.RunDir, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data.Missing = true
	case err != nil:
		fileError(w, "log", err)
		return
	default:
		defer f.Close()
		b, _, err := tail(f, fi.Size(), s.opt.TailBytes)
		if err != nil {
			fileError(w, "log", err)
			return
		}
		data.Data, data.Size, data.Shown = string(b), fi.Size(), int64(len(b))
	}
	s.render(w, "logs", data)
}
