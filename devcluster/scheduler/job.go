// Package scheduler is dewar's scheduler stub: an Aurora-shaped Mesos v1
// framework that launches the instances of one MesosJob with dewar's
// executor, the way Aurora's scheduler does with --custom_executor_config,
// plus the operator switches for CNI networks and a record of the addresses
// every task reports.
package scheduler

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/dewarhq/dewar/aurora"
)

var (
	// ErrCNIDisabled: the job asks for networks but the operator has not
	// switched CNI on.
	ErrCNIDisabled = errors.New("CNI networking is disabled")
	// ErrNetworkNotAllowed: the job asks for a network the operator has not
	// allowed.
	ErrNetworkNotAllowed = errors.New("network not allowed")
)

// Policy is what the operator allows jobs to ask for.
type Policy struct {
	// EnableCNI is the feature toggle: off, a job with networks is refused.
	EnableCNI bool
	// AllowedNetworks lists the CNI networks jobs may join; empty allows
	// none.
	AllowedNetworks []string
}

// Check refuses a job that asks for networks the operator has not enabled,
// with a message that says what to do.
func (p Policy) Check(job *aurora.MesosJob) error {
	if len(job.Networks) == 0 {
		return nil
	}
	if !p.EnableCNI {
		return fmt.Errorf("job %s asks for networks %s: %w; start the scheduler with --enable-cni (and --allowed-networks) to let jobs join CNI networks",
			jobKey(job), strings.Join(networkNames(job), ","), ErrCNIDisabled)
	}
	allowed := map[string]bool{}
	for _, n := range p.AllowedNetworks {
		allowed[n] = true
	}
	seen := map[string]bool{}
	for _, n := range job.Networks {
		if n.Name == "" {
			return fmt.Errorf("job %s: a network without a name; give every entry of networks a name", jobKey(job))
		}
		if seen[n.Name] {
			return fmt.Errorf("job %s joins network %q twice; list each network once", jobKey(job), n.Name)
		}
		seen[n.Name] = true
		if !allowed[n.Name] {
			list := "none"
			if len(p.AllowedNetworks) > 0 {
				list = strings.Join(p.AllowedNetworks, ", ")
			}
			return fmt.Errorf("job %s asks for network %q: %w; allowed networks: %s (the operator sets them with --allowed-networks)",
				jobKey(job), n.Name, ErrNetworkNotAllowed, list)
		}
	}
	return nil
}

func networkNames(job *aurora.MesosJob) []string {
	var names []string
	for _, n := range job.Networks {
		names = append(names, n.Name)
	}
	return names
}

func jobKey(job *aurora.MesosJob) string {
	return job.Role + "/" + job.Environment + "/" + job.Name
}

var portRef = regexp.MustCompile(`\{\{\s*thermos\.ports\[\s*([^\]\s]+)\s*\]\s*\}\}`)

// PortNames lists the named ports a task of job needs, as Aurora's client
// collects them: every {{thermos.ports[NAME]}} in process command lines (and
// the shell health check), plus the announcer's primary port and the names
// its portmap points at. Numbers in the portmap are static ports, not
// requests.
func PortNames(job *aurora.MesosJob) []string {
	set := map[string]bool{}
	add := func(s string) {
		for _, m := range portRef.FindAllStringSubmatch(s, -1) {
			set[m[1]] = true
		}
	}
	for _, p := range job.Task.Processes {
		add(p.Cmdline)
	}
	if sh := job.HealthCheckConfig.HealthChecker.Shell; sh != nil {
		add(sh.ShellCommand)
	}
	if a := job.Announce; a != nil {
		if a.PrimaryPort != "" {
			set[a.PrimaryPort] = true
		}
		for _, target := range a.Portmap {
			if _, err := strconv.Atoi(target); err == nil || strings.Contains(target, "{{") {
				continue
			}
			set[target] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
