package aurora

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ResolvePorts is Thermos' view of the task's ports (task_info.resolve_ports
// and config/port_resolver.py): the announce portmap, overridden by the
// ports the scheduler assigned, with aliases followed to a number. So with
// portmap {"health": "http"} and http assigned 31001, health is 31001 too,
// for {{thermos.ports[health]}}, health checks and the lifecycle. A portmap
// value that is a number is a static port.
//
// Names that lead to no number are returned in unresolved (Thermos logs and
// drops them); a cycle of aliases is an error naming the port.
func ResolvePorts(announce *Announcer, assigned map[string]int32) (ports map[string]int, unresolved []string, err error) {
	type entry struct {
		port  int
		alias string // set when the value names another port
	}
	table := make(map[string]entry)
	if announce != nil {
		for name, v := range announce.Portmap {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				if n < 0 || n > 65535 {
					return nil, nil, jobErr("announce.portmap."+name, "static port %d is out of range", n)
				}
				table[name] = entry{port: n}
				continue
			}
			table[name] = entry{alias: v}
		}
	}
	for name, p := range assigned {
		table[name] = entry{port: int(p)}
	}
	ports = make(map[string]int, len(table))
	for name := range table {
		seen := map[string]bool{name: true}
		cur := table[name]
		for cur.alias != "" {
			next, ok := table[cur.alias]
			if !ok {
				break
			}
			if seen[cur.alias] {
				return nil, nil, jobErr("announce.portmap."+name, "cycle of port aliases through %q", cur.alias)
			}
			seen[cur.alias] = true
			cur = next
		}
		if cur.alias != "" {
			unresolved = append(unresolved, fmt.Sprintf("%s => %s", name, cur.alias))
			continue
		}
		ports[name] = cur.port
	}
	sort.Strings(unresolved)
	return ports, unresolved, nil
}
