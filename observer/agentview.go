package observer

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sync"

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

// agentStreams keeps what the observer takes from each task's status
// update stream (task.updates): the agent's NetworkInfos of the latest
// update that has any. An entry is reused while the file's inode, size and
// mtime are those it was read at (fileKey, as the index keeps checkpoints):
// the agent only appends to the stream (and truncates it on recovery), so
// a new record changes its size. Without this a task page re-read and
// re-parsed the whole stream on every request.
type agentStreams struct {
	// read reads a stream: mesosmeta.ReadStream (tests count the calls).
	read func(path string) ([]mesosmeta.Record, error)

	mu sync.Mutex
	m  map[string]agentStream // guarded by mu; stream path -> what it said
}

type agentStream struct {
	key    fileKey
	runDir string
	agent  []mesos.NetworkInfo // the agent's entries (SplitViews)
	note   string              // why there are none
}

// view is the agent's view of e's addresses.
func (c *agentStreams) view(e *Entry) AgentView {
	meta, ok := mesosmeta.MetaRunDir(e.RunDir)
	if !ok {
		return AgentView{Note: "the run directory is not laid out as a Mesos agent's"}
	}
	s := c.stream(mesosmeta.UpdatesPath(meta, e.ID), e.RunDir)
	if len(s.agent) == 0 {
		return AgentView{Note: s.note}
	}
	v := AgentView{Networks: agentNetViews(e.Task, s.agent)}
	if e.Task != nil {
		v.Agrees = sameAddresses(networks(e.Task), v.Networks)
	}
	return v
}

// stream returns what the stream at path says, read again only when the
// file changed since it was last read.
func (c *agentStreams) stream(path, runDir string) agentStream {
	fi, err := os.Stat(path)
	if err != nil {
		c.mu.Lock()
		delete(c.m, path)
		c.mu.Unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return agentStream{note: "the agent checkpoints no status updates for this task (its framework does not checkpoint)"}
		}
		return agentStream{note: "the agent's status update stream is unreadable: " + err.Error()}
	}
	key := keyOf(fi)
	c.mu.Lock()
	s, ok := c.m[path]
	c.mu.Unlock()
	if ok && s.key == key {
		return s
	}
	read := c.read
	if read == nil {
		read = mesosmeta.ReadStream
	}
	s = agentStream{key: key, runDir: runDir}
	recs, err := read(path)
	switch {
	case err != nil && len(recs) == 0:
		s.note = "the agent's status update stream is unreadable: " + err.Error()
	default:
		if _, s.agent = mesosmeta.SplitViews(mesosmeta.LatestNetworks(recs)); len(s.agent) == 0 {
			s.note = "no status update of the agent carries addresses yet"
		}
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]agentStream{}
	}
	c.m[path] = s
	c.mu.Unlock()
	return s
}

// forget drops the streams of run directories no longer indexed.
func (c *agentStreams) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, s := range c.m {
		if !keep[s.runDir] {
			delete(c.m, path)
		}
	}
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
