package isolator

import (
	"fmt"
	"net"

	"github.com/gogo/protobuf/proto"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// mesosJSON renders a NetworkInfo the way Mesos puts it into
// args["org.apache.mesos"]["network_info"]: the protobuf as JSON with the
// proto field names, enums by name, and only the fields that are set
// (stout's JSON::protobuf). For a typical task that is
//
//	{"name":"net1","labels":{"labels":[{"key":"k","value":"v"}]}}
//
// Plugins (and IPAM plugins that read labels, e.g. for a rack) parse this
// shape, so it is built field by field rather than with mesos-go's json tags,
// which would emit empty lists ("ip_addresses":null) Mesos never sends.
func mesosJSON(ni *mesos.NetworkInfo) map[string]any {
	out := map[string]any{}
	if len(ni.IPAddresses) > 0 {
		ips := make([]any, 0, len(ni.IPAddresses))
		for _, a := range ni.IPAddresses {
			m := map[string]any{}
			if a.Protocol != nil {
				m["protocol"] = a.Protocol.String()
			}
			if a.IPAddress != nil {
				m["ip_address"] = *a.IPAddress
			}
			ips = append(ips, m)
		}
		out["ip_addresses"] = ips
	}
	if ni.Name != nil {
		out["name"] = *ni.Name
	}
	if len(ni.Groups) > 0 {
		out["groups"] = append([]string(nil), ni.Groups...)
	}
	if ni.Labels != nil {
		labels := make([]any, 0, len(ni.Labels.Labels))
		for _, l := range ni.Labels.Labels {
			m := map[string]any{"key": l.Key}
			if l.Value != nil {
				m["value"] = *l.Value
			}
			labels = append(labels, m)
		}
		ls := map[string]any{}
		if len(labels) > 0 {
			ls["labels"] = labels
		}
		out["labels"] = ls
	}
	if len(ni.PortMappings) > 0 {
		pms := make([]any, 0, len(ni.PortMappings))
		for _, p := range ni.PortMappings {
			m := map[string]any{"host_port": p.HostPort, "container_port": p.ContainerPort}
			if p.Protocol != nil {
				m["protocol"] = *p.Protocol
			}
			pms = append(pms, m)
		}
		out["port_mappings"] = pms
	}
	return out
}

// mesosArgs is the value of args["org.apache.mesos"] for one network.
func mesosArgs(ni *mesos.NetworkInfo) map[string]any {
	return map[string]any{"network_info": mesosJSON(ni)}
}

// ipAddresses turns a CNI result of any version into NetworkInfo addresses:
// IPv4 first, then IPv6, each in the plugin's order, bare addresses without
// prefix length.
//
// Mesos reads the 0.2.0 result (one ip4, one ip6) and strips the prefix only
// from IPv4; it reports IPv6 as "2001:db8::2/64" (a TODO in cni.cpp,
// status()). We strip both, so the agent's view compares equal to what the
// executor discovers; readers of a real agent's updates must accept both.
func ipAddresses(res types.Result) ([]mesos.NetworkInfo_IPAddress, error) {
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result (version %s) to %s: %w", res.Version(), current.ImplementedSpecVersion, err)
	}
	var v4, v6 []mesos.NetworkInfo_IPAddress
	for _, ipc := range cur.IPs {
		if ipc == nil || ipc.Address.IP == nil {
			continue
		}
		addr, proto := ipc.Address.IP.String(), mesos.IPv6
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			addr, proto = net.IP(ip4).String(), mesos.IPv4
		}
		a := mesos.NetworkInfo_IPAddress{Protocol: proto.Enum(), IPAddress: &addr}
		if proto == mesos.IPv4 {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return append(v4, v6...), nil
}

// agentNetworkInfo is what the agent reports for one attached network: the
// NetworkInfo the framework asked for with ip_addresses replaced by what the
// plugin assigned (cni.cpp, status()).
func agentNetworkInfo(requested *mesos.NetworkInfo, ips []mesos.NetworkInfo_IPAddress) *mesos.NetworkInfo {
	ni := cloneNetworkInfo(requested)
	ni.IPAddresses = ips
	return ni
}

// MergeNetworkInfos builds the container_status.network_infos of a status
// update the agent forwards, as a Mesos agent does (slave.cpp,
// _statusUpdate): the executor's own entries come first, the agent's view
// (the CNI results, [Container.NetworkInfos]) is appended after them — a
// protobuf MergeFrom appends repeated fields — and when both are empty the
// agent adds one entry holding only its own IP (no name, no protocol), as
// for host networking. agentIP may be empty to skip that fill-in.
func MergeNetworkInfos(fromExecutor []mesos.NetworkInfo, agent []*mesos.NetworkInfo, agentIP string) []mesos.NetworkInfo {
	out := make([]mesos.NetworkInfo, 0, len(fromExecutor)+len(agent))
	for i := range fromExecutor {
		out = append(out, *cloneNetworkInfo(&fromExecutor[i]))
	}
	for _, ni := range agent {
		if ni != nil {
			out = append(out, *cloneNetworkInfo(ni))
		}
	}
	if len(out) == 0 && agentIP != "" {
		ip := agentIP
		out = append(out, mesos.NetworkInfo{IPAddresses: []mesos.NetworkInfo_IPAddress{{IPAddress: &ip}}})
	}
	return out
}

// cloneNetworkInfo deep-copies ni, so callers never share label or address
// slices with the isolator's records.
func cloneNetworkInfo(ni *mesos.NetworkInfo) *mesos.NetworkInfo {
	return proto.Clone(ni).(*mesos.NetworkInfo)
}
