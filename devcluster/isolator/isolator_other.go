//go:build !linux

package isolator

import (
	"context"
	"errors"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

var errNotLinux = errors.New("the CNI isolator needs Linux network namespaces")

// Prepare fails off Linux unless no named network is asked for.
func (i *Isolator) Prepare(ctx context.Context, containerID string, networks []mesos.NetworkInfo) (*Container, error) {
	atts, err := i.plan(networks)
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		return nil, errNotLinux
	}
	return &Container{ID: containerID}, nil
}

// Cleanup has nothing to undo off Linux.
func (i *Isolator) Cleanup(ctx context.Context, containerID string) error { return nil }

// Lookup finds nothing off Linux.
func (i *Isolator) Lookup(containerID string) (*Container, error) { return nil, nil }

// Prepared lists nothing off Linux.
func (i *Isolator) Prepared() ([]string, error) { return nil, nil }
