package scheduler

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// WriteStatus prints, per instance, its latest task, state (and whether the
// instance was killed on purpose) and each network with its addresses as
// the agent and the executor reported them.
func WriteStatus(w io.Writer, store *Store) error {
	recs, err := store.Tasks()
	if err != nil {
		return err
	}
	meta, err := store.Meta()
	if err != nil {
		return err
	}
	if len(recs) == 0 && len(meta.Killed) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	latest := Latest(recs)
	instances := slices.Collect(maps.Keys(latest))
	for _, i := range meta.Killed {
		if _, ok := latest[i]; !ok {
			instances = append(instances, i)
		}
	}
	slices.Sort(instances)
	var b strings.Builder
	for _, i := range instances {
		r, ok := latest[i]
		if !ok {
			fmt.Fprintf(&b, "instance %d  (no task)  killed: not launched\n", i)
			continue
		}
		fmt.Fprintf(&b, "instance %d  %s  %s", i, r.TaskID, r.State)
		if slices.Contains(meta.Killed, i) {
			b.WriteString("  killed: not relaunched")
		}
		if r.Message != "" {
			fmt.Fprintf(&b, "  (%s)", r.Message)
		}
		b.WriteByte('\n')
		if len(r.Ports) > 0 {
			var ps []string
			for _, name := range slices.Sorted(maps.Keys(r.Ports)) {
				ps = append(ps, fmt.Sprintf("%s=%d", name, r.Ports[name]))
			}
			fmt.Fprintf(&b, "  ports        %s\n", strings.Join(ps, " "))
		}
		a, e := index(r.Views.Agent), index(r.Views.Executor)
		for _, name := range unionKeys(a, e) {
			label := name
			if label == "" {
				label = "(host)"
			}
			fmt.Fprintf(&b, "  %-12s agent: %-32s executor: %s\n", label, orNone(a[name], r.Views.Agent), orNone(e[name], r.Views.Executor))
		}
		if d := r.Views.Disagreement(); d != "" {
			fmt.Fprintf(&b, "  DISAGREE: %s\n", d)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func orNone(addrs string, view []Network) string {
	switch {
	case view == nil:
		return "(not reported)"
	case addrs == "":
		return "-"
	}
	return addrs
}

// WriteEndpoints prints one line per address of each running instance's
// port: "<instance> <network> <address> <port>", the agent's view, for
// scripts (the demo curls each line).
func WriteEndpoints(w io.Writer, store *Store, port string) error {
	recs, err := store.Tasks()
	if err != nil {
		return err
	}
	latest := Latest(recs)
	var b strings.Builder
	for _, i := range slices.Sorted(maps.Keys(latest)) {
		r := latest[i]
		p, ok := r.Ports[port]
		if !ok || r.State != "TASK_RUNNING" {
			continue
		}
		for _, n := range r.Views.Agent {
			for _, a := range n.Addresses {
				name := n.Name
				if name == "" {
					name = "-"
				}
				fmt.Fprintf(&b, "%d %s %s %d\n", i, name, a, p)
			}
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}
