package observer

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// Views: what the templates and the JSON show, built from a checkpoint.

// AddrView is one address of a network, ready for a link.
type AddrView struct {
	CIDR string `json:"cidr"`
	IP   string `json:"ip"`
	// Host is the address as a URL host: IPv6 in brackets (RFC 3986).
	Host  string     `json:"host"`
	IPv6  bool       `json:"ipv6"`
	Links []PortLink `json:"links,omitempty"`
}

// PortLink is a port of the task on one address.
type PortLink struct {
	Name string `json:"name"`
	Port int    `json:"port"`
	URL  string `json:"url"`
}

// NetView is one network with its addresses.
type NetView struct {
	Name      string            `json:"name"`
	Interface string            `json:"interface,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Host      bool              `json:"host,omitempty"`
	Addresses []AddrView        `json:"addresses"`
}

// networks builds the address views of t: every address, each with a link
// per port.
func networks(t *checkpoint.Task) []NetView {
	ports := sortedPorts(t.Ports)
	out := make([]NetView, 0, len(t.Networks))
	for _, n := range t.Networks {
		nv := NetView{Name: n.Name, Interface: n.Interface, Labels: n.Labels, Host: n.Host}
		for _, a := range n.Addresses {
			av := addrView(a)
			av.Links = portLinksOf(t, ports, av.Host)
			nv.Addresses = append(nv.Addresses, av)
		}
		out = append(out, nv)
	}
	return out
}

// portLinks links every port of t on host (an address as a URL host).
func portLinks(t *checkpoint.Task, host string) []PortLink {
	return portLinksOf(t, sortedPorts(t.Ports), host)
}

func portLinksOf(t *checkpoint.Task, names []string, host string) []PortLink {
	var out []PortLink
	for _, name := range names {
		p := t.Ports[name]
		out = append(out, PortLink{Name: name, Port: p, URL: "http://" + host + ":" + strconv.Itoa(p) + "/"})
	}
	return out
}

// addrView parses "198.18.0.2/24" or a bare address; anything else is
// shown as it is, never as a link target that could mislead.
func addrView(s string) AddrView {
	av := AddrView{CIDR: s, IP: s, Host: s}
	a, err := netip.ParseAddr(s)
	if p, perr := netip.ParsePrefix(s); perr == nil {
		a, err = p.Addr(), nil
	}
	if err != nil {
		return av
	}
	av.IP = a.String()
	av.IPv6 = a.Is6() && !a.Is4In6()
	av.Host = av.IP
	if av.IPv6 {
		av.Host = "[" + av.IP + "]"
	}
	return av
}

// addressList is every address of the task, for the task list.
func addressList(t *checkpoint.Task) []string {
	var out []string
	for _, n := range t.Networks {
		for _, a := range n.Addresses {
			out = append(out, addrView(a).IP)
		}
	}
	return out
}

// processBuckets sorts processes into Thermos' groups by their latest
// run (task_observer.py, _task_processes).
func processBuckets(t *checkpoint.Task) map[string][]string {
	b := map[string][]string{"waiting": {}, "running": {}, "success": {}, "failed": {}, "killed": {}}
	for _, p := range t.Processes {
		r := p.Last()
		switch {
		case r == nil:
			b["waiting"] = append(b["waiting"], p.Name)
		case r.State == checkpoint.RunRunning:
			b["running"] = append(b["running"], p.Name)
		case r.State == checkpoint.RunSuccess:
			b["success"] = append(b["success"], p.Name)
		case r.State == checkpoint.RunFailed:
			b["failed"] = append(b["failed"], p.Name)
		default:
			b["killed"] = append(b["killed"], p.Name)
		}
	}
	return b
}

// runnerState is the Thermos state (ACTIVE, SUCCESS, ...), else the Mesos
// one.
func runnerState(t *checkpoint.Task) string {
	if n := len(t.RunnerStates); n > 0 {
		return t.RunnerStates[n-1].State
	}
	return t.State()
}

// stateSince is when the task entered its current Mesos state.
func stateSince(t *checkpoint.Task) time.Time {
	if n := len(t.States); n > 0 {
		cur := t.States[n-1].State
		i := n - 1
		for i > 0 && t.States[i-1].State == cur {
			i--
		}
		return t.States[i].Time
	}
	return time.Time{}
}

// jobKey is role/environment/job, "" for a task without one.
func jobKey(t *checkpoint.Task) string {
	if t.Role == "" && t.Job == "" {
		return ""
	}
	return strings.Join([]string{t.Role, t.Environment, t.Job}, "/")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

func fmtDuration(r checkpoint.Run, now time.Time) string {
	if r.Start == nil {
		return ""
	}
	end := now
	if r.Stop != nil {
		end = *r.Stop
	}
	return end.Sub(*r.Start).Round(time.Second).String()
}

func fmtExit(r checkpoint.Run) string {
	if r.ExitCode == nil {
		return ""
	}
	return fmt.Sprint(*r.ExitCode)
}

func formatInt(n int64) string { return fmt.Sprint(n) }

func formatFloat(f float64) string { return fmt.Sprintf("%.1f", f) }
