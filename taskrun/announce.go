package taskrun

import (
	"context"
	"errors"
	"fmt"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/checkpoint"
)

// zkAnnouncement is the task's serverset membership in ZooKeeper.
type zkAnnouncement struct {
	a    *announcer.Announcer
	spec announcer.Spec
	log  *zap.Logger
	// mappings are each network's TCP port_mappings (host → container),
	// from the NetworkInfos the agent attached.
	mappings map[string]map[int]int
	ckpt     *checkpoint.Writer // records the members for the observer
}

// connectAnnouncer opens the ZooKeeper session before any process starts,
// so that an unreachable ensemble or a bad announce config fails the task
// early and clearly. close ends the session.
func (t *task) connectAnnouncer(ctx context.Context, p *taskSpec, facts *Facts) (m membership, close func(), err error) {
	job, at := p.job, p.assigned
	key := at.Task.Key()
	spec := announcer.Spec{
		Role:        orDefault(key.Role, job.Role),
		Environment: orDefault(key.Environment, job.Environment),
		Job:         orDefault(key.Name, job.Name),
		Shard:       p.instance,
		CustomPath:  job.Announce.ZkPath,
		PrimaryPort: job.Announce.PrimaryPort,
		Portmap:     job.Announce.Portmap,
		Ports:       p.ports,
		Hostname:    facts.Hostname,
		Metadata:    map[string]string{"task_id": facts.TaskID},
	}
	// Check the ports now: a bad portmap is a config error the user must
	// see before the task runs; an unallocated primary port is announced
	// as port 0, as Thermos does, with a warning.
	ports, err := announcer.ResolveEndpoints(spec.PrimaryPort, spec.Portmap, spec.Ports)
	if err != nil {
		return nil, nil, fmt.Errorf("announce: %w (ports of this task: %s)", err, p.portNames())
	}
	if ports.PrimaryMissing != nil {
		t.log.Warn("announcing port 0 as the serviceEndpoint", zap.Error(ports.PrimaryMissing))
	}
	return t.deps.dial(ctx, *t.opt.Announcer, &zkAnnouncement{spec: spec, log: t.log, ckpt: t.ckpt,
		mappings: portMappings(t.env.Executor.GetContainer().GetNetworkInfos())})
}

// portMappings collects the TCP port mappings of each named network
// (a mapping without a protocol is TCP, as in Mesos' port-mapper plugin:
// src/slave/containerizer/mesos/isolators/network/cni/plugins/port_mapper/
// port_mapper.cpp, PortMapper::getIptablesRule).
func portMappings(nis []mesos.NetworkInfo) map[string]map[int]int {
	out := map[string]map[int]int{}
	for _, ni := range nis {
		for _, pm := range ni.GetPortMappings() {
			if p := pm.GetProtocol(); p != "" && !strings.EqualFold(p, "tcp") {
				continue
			}
			if out[ni.GetName()] == nil {
				out[ni.GetName()] = map[int]int{}
			}
			out[ni.GetName()][int(pm.GetHostPort())] = int(pm.GetContainerPort())
		}
	}
	return out
}

func (a *zkAnnouncement) networks(f *Facts) []announcer.Network {
	var out []announcer.Network
	for _, n := range f.Networks {
		an := announcer.Network{Name: n.Name, PortMappings: a.mappings[n.Name]}
		for _, p := range n.Addrs {
			an.Addrs = append(an.Addrs, p.Addr())
		}
		out = append(out, an)
	}
	return out
}

func (a *zkAnnouncement) join(ctx context.Context, f *Facts) error {
	a.spec.Networks = a.networks(f)
	if len(f.Networks) == 0 {
		if ip, ok := f.PrimaryIP(); ok {
			a.spec.Metadata["host_ip"] = ip.String()
		}
	}
	if err := a.a.Join(ctx, a.spec); err != nil {
		return err // the task fails; nothing was joined to record
	}
	recordServersets(a.ckpt, a.a.Members())
	return nil
}

func (a *zkAnnouncement) update(ctx context.Context, f *Facts) error {
	err := a.a.UpdateNetworks(ctx, a.networks(f))
	recordServersets(a.ckpt, a.a.Members())
	return err
}

func (a *zkAnnouncement) leave(ctx context.Context) error {
	err := a.a.Leave(ctx)
	recordServersets(a.ckpt, a.a.Members())
	return err
}

func (a *zkAnnouncement) close() {
	if err := a.a.Close(); err != nil {
		a.log.Warn("closing the ZooKeeper session", zap.Error(err))
	}
}

// errWithdrawn answers a join or update that came after the withdrawal.
var errWithdrawn = errors.New("the task's announcement was withdrawn")
