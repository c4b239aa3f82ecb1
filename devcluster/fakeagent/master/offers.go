package master

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// freeLocked is what the agent has left: its total minus live tasks, their
// executors and outstanding offers.
func (m *Master) freeLocked() mesos.Resources {
	free := unallocated(m.info.Resources)
	for _, t := range m.tasks {
		if !t.done {
			free = free.Minus(t.resources...)
		}
	}
	for _, e := range m.executors {
		free = free.Minus(e.resources...)
	}
	for _, o := range m.offers {
		free = free.Minus(o.resources...)
	}
	return free
}

// allocate offers every free resource to the first subscribed framework (by
// id) that holds no offer and has no refuse filter running. The node is
// single, so one offer carries all of it. (Ours: Mesos' hierarchical
// allocator shares resources among frameworks by DRF.)
func (m *Master) allocate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	free := m.freeLocked()
	if !worthOffering(free) {
		return
	}
	now := time.Now()
	for _, fw := range sortedFrameworks(m.frameworks) {
		if fw.sub == nil || fw.suppressed || now.Before(fw.refuseTill) || m.holdsOfferLocked(fw.id) {
			continue
		}
		info := m.info
		o := &offer{id: newID(), framework: fw.id, resources: free}
		m.offers[o.id] = o
		ev := &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{{
			ID:          mesos.OfferID{Value: o.id},
			FrameworkID: mesos.FrameworkID{Value: fw.id},
			AgentID:     mesos.AgentID{Value: info.GetID().GetValue()},
			Hostname:    info.Hostname,
			Resources:   free.Clone(),
			Attributes:  info.Attributes,
		}}}}
		m.log.Debug("offer", zap.String("framework", fw.id), zap.String("offer", o.id), zap.Stringer("resources", free))
		m.sendLocked(fw, ev)
		return
	}
}

func (m *Master) holdsOfferLocked(fwID string) bool {
	for _, o := range m.offers {
		if o.framework == fwID {
			return true
		}
	}
	return false
}

// worthOffering: Mesos does not offer crumbs; an offer needs some cpus or
// memory to run anything: --min_allocatable_resources, default
// "cpus:0.01|mem:32" (src/master/flags.cpp, from MIN_CPUS and MIN_MEM in
// src/master/constants.hpp).
func worthOffering(free mesos.Resources) bool {
	cpus, _ := resources.CPUs(free...)
	mem, _ := resources.Memory(free...)
	return cpus >= 0.01 || mem >= 32
}

// refuseLocked starts fw's refuse filter: the seconds the call asked for, or
// the default. Mesos keeps the filter per agent and resources
// (HierarchicalAllocatorProcess::recoverResources); on one node, per
// framework is the same.
func (m *Master) refuseLocked(fw *framework, f *mesos.Filters, def time.Duration) {
	d := def
	if f != nil && f.RefuseSeconds != nil {
		d = time.Duration(*f.RefuseSeconds * float64(time.Second))
	}
	if d > 0 {
		fw.refuseTill = time.Now().Add(d)
	}
}
