package observer

import (
	"errors"
	"io/fs"
	"net/netip"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// AgentView is the agent's account of a task's addresses: the CNI results
// it merged into the task's latest status update, read from the agent's
// own checkpoint (mesosmeta), since the executor is never told them
// (MESOS-6281).
type AgentView struct {
	// Networks in the agent's order; nil when the agent has none recorded.
	Networks []NetView `json:"networks"`
	// Agrees is true when every network's addresses equal the executor's.
	Agrees bool `json:"agrees"`
	// Note says why there is no view (the agent keeps no stream for a
	// framework that does not checkpoint) or why it cannot be read.
	Note string `json:"note,omitempty"`
}

// agentView reads the agent's view of e's addresses.
func agentView(e *Entry) AgentView {
	meta, ok := mesosmeta.MetaRunDir(e.RunDir)
	if !ok {
		return AgentView{Note: "the run directory is not laid out as a Mesos agent's"}
	}
	recs, err := mesosmeta.ReadStream(mesosmeta.UpdatesPath(meta, e.ID))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return AgentView{Note: "the agent checkpoints no status updates for this task (its framework does not checkpoint)"}
	case err != nil && len(recs) == 0:
		return AgentView{Note: "the agent's status update stream is unreadable: " + err.Error()}
	}
	_, agent := mesosmeta.SplitViews(mesosmeta.LatestNetworks(recs))
	if len(agent) == 0 {
		return AgentView{Note: "no status update of the agent carries addresses yet"}
	}
	v := AgentView{Networks: agentNetViews(e.Task, agent)}
	if e.Task != nil {
		v.Agrees = sameAddresses(networks(e.Task), v.Networks)
	}
	return v
}

func agentNetViews(t *checkpoint.Task, nis []mesos.NetworkInfo) []NetView {
	out := make([]NetView, 0, len(nis))
	for _, ni := range nis {
		nv := NetView{Name: ni.GetName()}
		for _, l := range ni.GetLabels().GetLabels() {
			if nv.Labels == nil {
				nv.Labels = map[string]string{}
			}
			nv.Labels[l.GetKey()] = l.GetValue()
		}
		for _, a := range ni.IPAddresses {
			av := addrView(a.GetIPAddress())
			if t != nil {
				av.Links = portLinks(t, av.Host)
			}
			nv.Addresses = append(nv.Addresses, av)
		}
		out = append(out, nv)
	}
	return out
}

// sameAddresses compares two views network by network, by address only
// (the executor records prefixes, the agent bare addresses).
func sameAddresses(executor, agent []NetView) bool {
	set := func(vs []NetView) map[string][]string {
		m := map[string][]string{}
		for _, n := range vs {
			for _, a := range n.Addresses {
				ip := a.IP
				if p, err := netip.ParseAddr(ip); err == nil {
					ip = p.String()
				}
				m[n.Name] = append(m[n.Name], ip)
			}
			slices.Sort(m[n.Name])
		}
		return m
	}
	e, a := set(executor), set(agent)
	if len(e) != len(a) {
		return false
	}
	for name, addrs := range a {
		if !slices.Equal(e[name], addrs) {
			return false
		}
	}
	return true
}
