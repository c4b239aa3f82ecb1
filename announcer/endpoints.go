package announcer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultPrimaryPort is Aurora's announce.primary_port default.
const DefaultPrimaryPort = "http"

// ErrPrimaryPortNotAllocated means announce.primary_port names a port the
// task was not given. It is a warning (ResolvedPorts.PrimaryMissing), not
// a failure: Thermos announces port 0 then.
var ErrPrimaryPortNotAllocated = errors.New("primary port is not allocated to the task")

// ResolvedPorts is what ResolveEndpoints decides: the port of the
// serviceEndpoint and the port of every named additional endpoint.
type ResolvedPorts struct {
	Primary    int
	Additional map[string]int
	// Unresolved lists portmap aliases whose target is neither an allocated
	// port nor a static number; Thermos logs and drops them, and so do we.
	Unresolved []string
	// PrimaryMissing, when not nil, says that primary_port resolves to no
	// port (wrapping ErrPrimaryPortNotAllocated); Primary is then 0.
	PrimaryMissing error
}

// ResolveEndpoints applies Aurora's port rules (task_info.resolve_ports and
// PortResolver):
//   - the names to announce are the allocated ports plus the portmap aliases,
//     an allocated port winning over an alias of the same name;
//   - an alias maps to a port name, to another alias (chains are followed;
//     a cycle is an error) or to a static port given as a decimal string;
//   - primaryPort (default "http") gives the serviceEndpoint's port; when
//     it resolves to none, the serviceEndpoint has port 0, as Thermos
//     (announcer.py, make_endpoints: portmap.get(primary_port, 0)), and
//     PrimaryMissing says why, for a warning.
//
// A nil portmap means Aurora's default {"aurora": "{{primary_port}}"}; pass
// an empty map for none.
func ResolveEndpoints(primaryPort string, portmap map[string]string, allocated map[string]int) (ResolvedPorts, error) {
	if primaryPort == "" {
		primaryPort = DefaultPrimaryPort
	}
	if portmap == nil {
		portmap = map[string]string{"aurora": primaryPort}
	}
	res := ResolvedPorts{Additional: make(map[string]int, len(portmap)+len(allocated))}
	names := make([]string, 0, len(portmap)+len(allocated))
	for n := range allocated {
		names = append(names, n)
	}
	for n := range portmap {
		if _, ok := allocated[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		port, ok, err := resolvePort(n, portmap, allocated)
		if err != nil {
			return ResolvedPorts{}, err
		}
		if !ok {
			res.Unresolved = append(res.Unresolved, n)
			continue
		}
		res.Additional[n] = port
	}
	port, ok, err := resolvePort(primaryPort, portmap, allocated)
	if err != nil {
		return ResolvedPorts{}, err
	}
	if !ok {
		have := make([]string, 0, len(allocated))
		for n := range allocated {
			have = append(have, n)
		}
		slices.Sort(have)
		res.PrimaryMissing = fmt.Errorf("%w: announce.primary_port %q (allocated ports: [%s]); the serviceEndpoint gets port 0, as Thermos announces it: request the port in the job's processes or set announce.primary_port to one of them",
			ErrPrimaryPortNotAllocated, primaryPort, strings.Join(have, " "))
		return res, nil
	}
	res.Primary = port
	return res, nil
}

// resolvePort follows name through the portmap to an allocated or static
// port. ok is false when the chain ends at a name nobody defines.
func resolvePort(name string, portmap map[string]string, allocated map[string]int) (port int, ok bool, err error) {
	seen := map[string]bool{}
	for cur := name; ; {
		if p, found := allocated[cur]; found {
			return p, true, nil
		}
		target, found := portmap[cur]
		if !found {
			return 0, false, nil
		}
		if n, err := strconv.Atoi(target); err == nil {
			if n <= 0 || n > 65535 {
				return 0, false, fmt.Errorf("announce.portmap %q: static port %d is outside 1-65535", cur, n)
			}
			return n, true, nil
		}
		seen[cur] = true
		if seen[target] {
			return 0, false, fmt.Errorf("announce.portmap: %q is part of a cycle (%s -> %s); point an alias at a port name or number", name, cur, target)
		}
		cur = target
	}
}
