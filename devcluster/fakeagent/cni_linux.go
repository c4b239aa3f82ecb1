package fakeagent

import (
	"context"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/isolator"
)

// CNI adapts the real CNI isolator to the agent's Isolator interface.
func CNI(i *isolator.Isolator) Isolator { return cniIsolator{i} }

type cniIsolator struct{ i *isolator.Isolator }

var _ Isolator = cniIsolator{}

func (c cniIsolator) Prepare(ctx context.Context, containerID string, networks []mesos.NetworkInfo) (*NetContainer, error) {
	ctr, err := c.i.Prepare(ctx, containerID, networks)
	if err != nil {
		return nil, err
	}
	nc := &NetContainer{NetNSPath: ctr.NetNSPath, Wrap: ctr.Wrap}
	for _, ni := range ctr.NetworkInfos {
		if ni != nil {
			nc.NetworkInfos = append(nc.NetworkInfos, *ni)
		}
	}
	return nc, nil
}

func (c cniIsolator) Cleanup(ctx context.Context, containerID string) error {
	return c.i.Cleanup(ctx, containerID)
}

func (c cniIsolator) Prepared() ([]string, error) { return c.i.Prepared() }
