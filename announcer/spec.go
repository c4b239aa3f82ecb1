package announcer

import (
	"fmt"
	"maps"
	"os"
	"strings"
)

// members computes the znode data the task should have, by serverset path:
// the job path carries the primary network's first address, <job>@<net> the
// first address of each network. A network without addresses has no member
// (yet); under host networking there is one member with the host name.
//
// Port mappings (NetworkInfo.port_mappings, host_port → container_port)
// mean that the container's address is reachable only inside its network,
// and the outside reaches the task at the agent's host port. So:
//   - <job>@<net> announces the container address with the container-side
//     ports: what a peer on that network connects to;
//   - the job path, when the primary network maps ports, announces the
//     host name with the host ports, as Thermos did (apache/aurora
//     executor/common/announcer.py, make_endpoints): its readers may be
//     anywhere, and only the mapping is reachable from anywhere.
//
// For example, with allocated port http=31001 and a mapping 31001→8080 on
// network "blue" (container 198.18.0.2): <job>@blue has 198.18.0.2:8080,
// <job> has agent.example:31001.
func (s Spec) members(cfg Config) (map[string][]byte, error) {
	base, err := s.basePath(cfg)
	if err != nil {
		return nil, err
	}
	if s.Shard < 0 {
		return nil, fmt.Errorf("shard (instance id) %d is negative", s.Shard)
	}
	ports, err := ResolveEndpoints(s.PrimaryPort, s.Portmap, s.Ports)
	if err != nil {
		return nil, err
	}
	meta := maps.Clone(s.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	for _, n := range s.Networks {
		if err := checkName("network", n.Name); err != nil {
			return nil, err
		}
		addrs := make([]string, len(n.Addrs))
		for i, a := range n.Addrs {
			addrs[i] = a.String()
		}
		meta[MetaAddressesPrefix+n.Name] = strings.Join(addrs, ",")
	}

	out := map[string][]byte{}
	add := func(p, host, network string, mapped map[int]int) error {
		var inet, inet6 string
		for _, n := range s.Networks {
			if n.Name != network {
				continue
			}
			for _, a := range n.Addrs {
				switch {
				case a.Is4() && inet == "":
					inet = a.String()
				case a.Is6() && !a.Is4In6() && inet6 == "":
					inet6 = a.String()
				}
			}
		}
		ep := func(port int) Endpoint {
			if c, ok := mapped[port]; ok {
				port = c
			}
			return Endpoint{Host: host, Port: port, Inet: inet, Inet6: inet6}
		}
		m := Member{
			ServiceEndpoint:     ep(ports.Primary),
			AdditionalEndpoints: make(map[string]Endpoint, len(ports.Additional)),
			Status:              StatusAlive,
			Shard:               &s.Shard,
			Metadata:            maps.Clone(meta),
		}
		for name, port := range ports.Additional {
			m.AdditionalEndpoints[name] = ep(port)
		}
		if network != "" {
			m.Metadata[MetaNetwork] = network
		}
		if len(m.Metadata) == 0 {
			m.Metadata = nil
		}
		b, err := m.Marshal()
		out[p] = b
		return err
	}

	if len(s.Networks) == 0 {
		host := s.Hostname
		if host == "" {
			if host, err = os.Hostname(); err != nil {
				return nil, fmt.Errorf("no networks and no hostname to announce: %w", err)
			}
		}
		return out, add(base, host, "", nil)
	}
	primary := cfg.PrimaryNetwork
	if primary == "" {
		primary = s.Networks[0].Name
	}
	found := false
	for _, n := range s.Networks {
		if n.Name == primary {
			found = true
		}
		if len(n.Addrs) == 0 {
			continue
		}
		if n.Name == primary {
			var err error
			if len(n.PortMappings) > 0 {
				err = s.addMapped(base, n.Name, add)
			} else {
				err = add(base, n.Addrs[0].String(), n.Name, nil)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := add(base+"@"+n.Name, n.Addrs[0].String(), n.Name, n.PortMappings); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("primary network %q (--announcer-primary-network) is not among the task's networks %v", primary, networkNames(s.Networks))
	}
	return out, nil
}

// addMapped adds the classic member of a primary network that maps ports:
// the host name and the host ports (see members).
func (s Spec) addMapped(base, network string, add func(p, host, network string, mapped map[int]int) error) error {
	host := s.Hostname
	if host == "" {
		var err error
		if host, err = os.Hostname(); err != nil {
			return fmt.Errorf("primary network %q maps ports, but there is no hostname to announce them on: %w", network, err)
		}
	}
	return add(base, host, network, nil)
}

func networkNames(nets []Network) []string {
	names := make([]string, len(nets))
	for i, n := range nets {
		names[i] = n.Name
	}
	return names
}
