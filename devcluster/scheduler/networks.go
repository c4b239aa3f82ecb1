package scheduler

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/dewarhq/dewar/internal/mesosmeta"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ExecutorNetworksLabel optionally carries the executor's own view of its
// addresses in a TaskStatus label: a JSON array of Mesos NetworkInfo
// objects, as mesos-go marshals them. When present it wins over what
// ViewsOf reads from container_status.
const ExecutorNetworksLabel = "dewar.executor.network_infos"

// Network is one network a task joined and its addresses.
type Network struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// Views are the two accounts of a task's addresses.
type Views struct {
	Agent    []Network `json:"agent,omitempty"`    // the agent's NetworkInfos (the CNI results)
	Executor []Network `json:"executor,omitempty"` // what the executor discovered itself
}

// ViewsOf reads both views from a forwarded status update. A view missing
// from the update is nil (not every update carries addresses).
//
// The executor reports its addresses in container_status.network_infos
// (MESOS-6281) and the agent merges its own status into it
// (ContainerStatus::MergeFrom), which appends the agent's NetworkInfos after
// the executor's. So a network named twice was reported by both: the first
// entry is the executor's, the last the agent's; a network named once is the
// agent's alone. Example: [blue 198.18.0.2 (executor), blue 198.18.0.2
// (agent)].
func ViewsOf(st mesos.TaskStatus) (Views, error) {
	var v Views
	exec, agent := mesosmeta.SplitViews(st.GetContainerStatus().GetNetworkInfos())
	v.Agent = fromNetworkInfos(agent)
	v.Executor = fromNetworkInfos(exec)
	for _, l := range st.GetLabels().GetLabels() {
		if l.Key != ExecutorNetworksLabel {
			continue
		}
		var labelled []mesos.NetworkInfo
		if err := json.Unmarshal([]byte(l.GetValue()), &labelled); err != nil {
			return v, fmt.Errorf("label %s of task %s is not a JSON list of NetworkInfo: %w", ExecutorNetworksLabel, st.TaskID.Value, err)
		}
		v.Executor = fromNetworkInfos(labelled)
		if v.Executor == nil {
			v.Executor = []Network{}
		}
	}
	return v, nil
}

func fromNetworkInfos(nis []mesos.NetworkInfo) []Network {
	var out []Network
	for _, ni := range nis {
		n := Network{Name: ni.GetName()}
		for _, a := range ni.IPAddresses {
			if ip := normalizeIP(a.GetIPAddress()); ip != "" {
				n.Addresses = append(n.Addresses, ip)
			}
		}
		sort.Strings(n.Addresses)
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Disagreement describes how the two views differ, or "" when they agree
// or one of them is unknown.
func (v Views) Disagreement() string {
	if v.Agent == nil || v.Executor == nil {
		return ""
	}
	a, e := index(v.Agent), index(v.Executor)
	var diffs []string
	for _, name := range unionKeys(a, e) {
		if a[name] != e[name] {
			diffs = append(diffs, fmt.Sprintf("%s: agent [%s] executor [%s]", name, a[name], e[name]))
		}
	}
	return strings.Join(diffs, "; ")
}

func index(ns []Network) map[string]string {
	m := map[string]string{}
	for _, n := range ns {
		m[n.Name] = strings.Join(n.Addresses, " ")
	}
	return m
}

func unionKeys(a, b map[string]string) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalizeIP makes the two views comparable: a real Mesos agent reports
// IPv6 CNI addresses with their prefix length ("2001:db8::2/64", an open
// TODO in its CNI isolator) and IPv4 without; the executor reports bare
// addresses. Anything unparsable is kept as it is.
func normalizeIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String()
	}
	return s
}
