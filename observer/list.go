package observer

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// filter selects tasks for the list: by role, environment, job and state
// ("active", "finished", "unreadable" or a Mesos state such as
// TASK_RUNNING; "" or "all" for every task).
type filter struct {
	Role, Environment, Job, State string
}

func (f filter) match(e *Entry) bool {
	switch f.State {
	case "", "all":
	case "active":
		if !e.Active() {
			return false
		}
	case "finished":
		if e.Active() {
			return false
		}
	case "unreadable":
		return e.Task == nil && f.Role == "" && f.Environment == "" && f.Job == ""
	default:
		if e.Task == nil || e.Task.State() != f.State {
			return false
		}
	}
	if f.Role == "" && f.Environment == "" && f.Job == "" {
		return true
	}
	t := e.Task
	return t != nil && (f.Role == "" || t.Role == f.Role) &&
		(f.Environment == "" || t.Environment == f.Environment) && (f.Job == "" || t.Job == f.Job)
}

var stateChoices = []string{"", "active", "finished", "unreadable", "TASK_STARTING", "TASK_RUNNING",
	"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"}

// listQuery is a list request: Thermos' /main/<which>/<offset>/<num> path
// and our query parameters.
type listQuery struct {
	filter
	Offset, Num int
}

const defaultNum, maxNum = 20, 1000

func parseListQuery(r *http.Request) listQuery {
	q := r.URL.Query()
	lq := listQuery{filter: filter{Role: q.Get("role"), Environment: q.Get("environment"), Job: q.Get("job"), State: q.Get("state")}, Num: defaultNum}
	if w := r.PathValue("which"); w != "" && lq.State == "" {
		lq.State = w
	}
	if v, err := strconv.Atoi(cmpOr(r.PathValue("offset"), q.Get("offset"))); err == nil && v >= 0 {
		lq.Offset = v
	}
	if v, err := strconv.Atoi(cmpOr(r.PathValue("num"), q.Get("num"))); err == nil && v > 0 {
		lq.Num = min(v, maxNum)
	}
	return lq
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// url is the list page for q with another offset.
func (q listQuery) url(offset int) string {
	v := url.Values{}
	for k, s := range map[string]string{"role": q.Role, "environment": q.Environment, "job": q.Job, "state": q.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("offset", strconv.Itoa(offset))
	v.Set("num", strconv.Itoa(q.Num))
	return "/main?" + v.Encode()
}

// selection is one page of the task list.
type selection struct {
	Page                         []*Entry
	Total, Active, Finished, Bad int
	Offset, Num                  int
}

func (s *Server) selectTasks(q listQuery) selection {
	all := s.index.Tasks()
	sel := selection{Offset: q.Offset, Num: q.Num}
	var matched []*Entry
	for _, e := range all {
		if !q.match(e) {
			continue
		}
		matched = append(matched, e)
		switch {
		case e.Task == nil:
			sel.Bad++
		case e.Active():
			sel.Active++
		default:
			sel.Finished++
		}
	}
	// Active tasks first, each group newest first (the index's order):
	// people come here for what runs now.
	slices.SortStableFunc(matched, func(a, b *Entry) int {
		aa, ba := a.Active(), b.Active()
		switch {
		case aa == ba:
			return 0
		case aa:
			return -1
		default:
			return 1
		}
	})
	sel.Total = len(matched)
	if q.Offset < len(matched) {
		sel.Page = matched[q.Offset:min(q.Offset+q.Num, len(matched))]
	}
	return sel
}

type listRow struct {
	ID, Err, Job, State, Since string
	Instance                   int
	Addresses, Ports           []string
}

func (s *Server) handleMain(w http.ResponseWriter, r *http.Request) {
	q := parseListQuery(r)
	sel := s.selectTasks(q)
	rows := make([]listRow, 0, len(sel.Page))
	for _, e := range sel.Page {
		row := listRow{ID: e.ID}
		if e.Task == nil {
			row.Err = e.Err.Error()
		} else {
			t := e.Task
			row.Job, row.Instance, row.State, row.Since = jobKey(t), t.Instance, t.State(), fmtTime(stateSince(t))
			row.Addresses = addressList(t)
			for _, name := range sortedPorts(t.Ports) {
				row.Ports = append(row.Ports, name+"="+strconv.Itoa(t.Ports[name]))
			}
		}
		rows = append(rows, row)
	}
	data := struct {
		page
		Filter                                   filter
		States                                   []string
		Rows                                     []listRow
		Num, Total, Active, Finished, Unreadable int
		From, To                                 int
		Prev, Next                               string
	}{
		page:   page{Title: "tasks", Hostname: s.opt.Hostname},
		Filter: q.filter, States: stateChoices, Rows: rows, Num: q.Num,
		Total: sel.Total, Active: sel.Active, Finished: sel.Finished, Unreadable: sel.Bad,
		From: min(q.Offset+1, sel.Total), To: min(q.Offset+len(rows), sel.Total),
	}
	if q.Offset > 0 {
		data.Prev = q.url(max(q.Offset-q.Num, 0))
	}
	if q.Offset+q.Num < sel.Total {
		data.Next = q.url(q.Offset + q.Num)
	}
	s.render(w, "main", data)
}

func sortedPorts(ports map[string]int) []string {
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := ports[a] - ports[b]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}
