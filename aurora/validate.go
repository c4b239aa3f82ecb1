package aurora

import (
	"fmt"
	"regexp"
	"strings"
)

// validProcessName is Thermos' rule: at least one character, no '/', and not
// starting with '.' (the name becomes a directory under .logs).
var validProcessName = regexp.MustCompile(`^[^./][^/]*$`)

// validateTask applies the checks Thermos' TaskPlanner makes before it runs
// anything (thermos/common/planner.py), plus duplicate names, which pystachio
// would silently collapse.
func validateTask(t *Task) error {
	if len(t.Processes) == 0 {
		return jobErr("task.processes", "a task needs at least one process")
	}
	if t.MaxFailures < 0 {
		return jobErr("task.max_failures", "must be >= 0, got %d", t.MaxFailures)
	}
	if t.MaxConcurrency < 0 {
		return jobErr("task.max_concurrency", "must be >= 0 (0 is unlimited), got %d", t.MaxConcurrency)
	}
	if t.FinalizationWait < 0 {
		return jobErr("task.finalization_wait", "must be >= 0, got %d", t.FinalizationWait)
	}
	byName := make(map[string]*Process, len(t.Processes))
	for i := range t.Processes {
		pr := &t.Processes[i]
		path := fmt.Sprintf("task.processes[%d].name", i)
		if !validProcessName.MatchString(pr.Name) {
			return jobErr(path, "invalid process name %q: must be non-empty, contain no '/' and not start with '.'", pr.Name)
		}
		if _, dup := byName[pr.Name]; dup {
			return jobErr(path, "duplicate process name %q: process names must be unique within a task", pr.Name)
		}
		byName[pr.Name] = pr
	}
	deps := make(map[string][]string) // process → processes it waits for
	for i, c := range t.Constraints {
		path := fmt.Sprintf("task.constraints[%d].order", i)
		for _, name := range c.Order {
			if byName[name] == nil {
				return jobErr(path, "unknown process %q (the task has %s)", name, processNames(t))
			}
		}
		for k := 1; k < len(c.Order); k++ {
			prev, cur := byName[c.Order[k-1]], byName[c.Order[k]]
			if prev.Final != cur.Final {
				fin, reg := prev, cur
				if cur.Final {
					fin, reg = cur, prev
				}
				return jobErr(path, "final process %q cannot be ordered with regular process %q: final processes run only after every regular process has ended", fin.Name, reg.Name)
			}
			if prev.Daemon {
				return jobErr(path, "process %q may not depend upon daemon process %q", cur.Name, prev.Name)
			}
			if prev.Ephemeral && !cur.Ephemeral {
				return jobErr(path, "non-ephemeral process %q may not depend upon ephemeral process %q", cur.Name, prev.Name)
			}
			deps[cur.Name] = append(deps[cur.Name], prev.Name)
		}
	}
	if cycle := findCycle(t, deps); cycle != nil {
		return jobErr("task.constraints", "cycle in process order: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

func processNames(t *Task) string {
	names := make([]string, len(t.Processes))
	for i, p := range t.Processes {
		names[i] = fmt.Sprintf("%q", p.Name)
	}
	return strings.Join(names, ", ")
}

// findCycle returns one cycle of the dependency graph (first node repeated
// at the end), or nil. Processes are visited in task order so the answer is
// deterministic.
func findCycle(t *Task, deps map[string][]string) []string {
	const (
		unvisited = iota
		onStack
		done
	)
	state := make(map[string]int)
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onStack
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch state[d] {
			case onStack:
				for i, s := range stack {
					if s == d {
						// stack holds waiters before what they wait for;
						// report the order the user wrote: d runs first.
						cyc := append([]string(nil), stack[i:]...)
						cyc = append(cyc, d)
						reverse(cyc)
						return cyc
					}
				}
			case unvisited:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, p := range t.Processes {
		if state[p.Name] == unvisited {
			if c := visit(p.Name); c != nil {
				return c
			}
		}
	}
	return nil
}

func reverse(s []string) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}
