//go:build !linux

package netdiscover

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// ErrUnsupported: network namespaces and netlink are Linux-only.
var ErrUnsupported = fmt.Errorf("netdiscover needs Linux (netlink), not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Watcher is a stub off Linux.
type Watcher struct{}

func (w *Watcher) Updates() <-chan []NetworkAddrs { return nil }
func (w *Watcher) Close() error                   { return nil }

func Discover(ctx context.Context, nets []Network, opt Options) ([]NetworkAddrs, error) {
	return nil, ErrUnsupported
}

func Watch(ctx context.Context, nets []Network, opt Options) (*Watcher, error) {
	return nil, ErrUnsupported
}

func Host(ctx context.Context, hostname string, opt Options) (HostAddrs, error) {
	return HostAddrs{}, ErrUnsupported
}
