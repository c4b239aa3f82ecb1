package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ExecutorNetworksLabel is the TaskStatus label that carries the executor's
// own view of its addresses (MESOS-6281): a JSON array of Mesos NetworkInfo
// objects, as mesos-go marshals them. A Mesos agent replaces
// container_status with its own view when it forwards an update, so the
// executor's view travels in a label; the fake agent does the same.
const ExecutorNetworksLabel = "dewar.executor.network_infos"

// Network is one network a task joined and its addresses.
type Network struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// Views are the two accounts of a task's addresses.
type Views struct {
	Agent    []Network `json:"agent,omitempty"`    // container_status.network_infos (the CNI results)
	Executor []Network `json:"executor,omitempty"` // what the executor discovered itself
}

// ViewsOf reads both views from a forwarded status update. A view missing
// from the update is nil (not every update carries addresses).
func ViewsOf(st mesos.TaskStatus) (Views, error) {
	var v Views
	if cs := st.GetContainerStatus(); cs != nil && len(cs.NetworkInfos) > 0 {
		v.Agent = fromNetworkInfos(cs.NetworkInfos)
	}
	for _, l := range st.GetLabels().GetLabels() {
		if l.Key != ExecutorNetworksLabel {
			continue
		}
		var nis []mesos.NetworkInfo
		if err := json.Unmarshal([]byte(l.GetValue()), &nis); err != nil {
			return v, fmt.Errorf("label %s of task %s is not a JSON list of NetworkInfo: %w", ExecutorNetworksLabel, st.TaskID.Value, err)
		}
		v.Executor = fromNetworkInfos(nis)
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
			if a.GetIPAddress() != "" {
				n.Addresses = append(n.Addresses, a.GetIPAddress())
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
