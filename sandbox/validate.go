package sandbox

import (
	"errors"
	"fmt"
	"strings"
)

// validate checks a task as Thermos' config validator and TaskPlanner do,
// and returns each process's direct predecessors.
func validate(t Task) (map[string][]string, error) {
	if len(t.Processes) == 0 {
		return nil, errors.New("task has no processes: give it at least one")
	}
	if t.MaxFailures < 0 || t.MaxConcurrency < 0 || t.FinalizationWait < 0 {
		return nil, fmt.Errorf("task max_failures (%d), max_concurrency (%d) and finalization_wait (%s) must not be negative",
			t.MaxFailures, t.MaxConcurrency, t.FinalizationWait)
	}
	byName := make(map[string]*Process, len(t.Processes))
	for i := range t.Processes {
		p := &t.Processes[i]
		if err := checkName(p.Name); err != nil {
			return nil, fmt.Errorf("process %d: %w", i, err)
		}
		if _, dup := byName[p.Name]; dup {
			return nil, fmt.Errorf("process name %q is used twice: names must be unique", p.Name)
		}
		byName[p.Name] = p
		if strings.TrimSpace(p.Cmdline) == "" {
			return nil, fmt.Errorf("process %q: cmdline is empty", p.Name)
		}
		if p.MaxFailures < 0 || p.MinDuration < 0 {
			return nil, fmt.Errorf("process %q: max_failures (%d) and min_duration (%s) must not be negative",
				p.Name, p.MaxFailures, p.MinDuration)
		}
	}
	deps := make(map[string][]string)
	for i, chain := range t.Order {
		for _, name := range chain {
			if byName[name] == nil {
				return nil, fmt.Errorf("order constraint %d %q names unknown process %q", i, chain, name)
			}
		}
		for k := 1; k < len(chain); k++ {
			prev, next := byName[chain[k-1]], byName[chain[k]]
			if err := checkEdge(prev, next); err != nil {
				return nil, fmt.Errorf("order constraint %d %q: %w", i, chain, err)
			}
			deps[next.Name] = append(deps[next.Name], prev.Name)
		}
	}
	if cycle := findCycle(t.Processes, deps); cycle != nil {
		return nil, fmt.Errorf("order constraints form a cycle %s: no process in it could ever start",
			strings.Join(cycle, " -> "))
	}
	return deps, nil
}

func checkName(name string) error {
	// The name becomes a directory under .logs.
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid process name %q: it must be non-empty and usable as a directory name", name)
	}
	return nil
}

// checkEdge applies TaskPlanner's rules to "next runs after prev".
func checkEdge(prev, next *Process) error {
	switch {
	case next.Final && !prev.Final:
		return fmt.Errorf("final process %q may not depend on regular process %q: final processes always run after the regular ones; order them only among themselves",
			next.Name, prev.Name)
	case !next.Final && prev.Final:
		return fmt.Errorf("regular process %q may not depend on final process %q", next.Name, prev.Name)
	case prev.Daemon:
		return fmt.Errorf("process %q may not depend on daemon process %q: a daemon never finishes", next.Name, prev.Name)
	case prev.Ephemeral && !next.Ephemeral:
		return fmt.Errorf("non-ephemeral process %q may not depend on ephemeral process %q", next.Name, prev.Name)
	}
	return nil
}

// findCycle returns one cycle of the dependency graph, or nil.
func findCycle(procs []Process, deps map[string][]string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make(map[string]int, len(procs))
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		mark[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			switch mark[d] {
			case onPath:
				start := 0
				for i, p := range path {
					if p == d {
						start = i
					}
				}
				// path runs against the order (each entry depends on the
				// next); reverse it so the cycle reads in execution order.
				c := append([]string(nil), path[start:]...)
				for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
					c[i], c[j] = c[j], c[i]
				}
				return append(c, c[0])
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, p := range procs {
		if mark[p.Name] == unseen {
			if c := visit(p.Name); c != nil {
				return c
			}
		}
	}
	return nil
}
