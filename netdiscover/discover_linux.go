package netdiscover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// Discover returns the usable addresses of every named network, in
// network_infos order, read over netlink in opt.Namespace (the container's
// namespace: the executor's own, as the agent starts it there).
//
// Mesos gives the executor no event carrying the addresses the CNI plugins
// assigned (MESOS-6281), so they are read from the interfaces: the N-th
// named network is ethN (see InterfaceName). Discover waits, up to
// opt.TentativeWait, until every network's interface exists, has a usable
// address, and has no IPv6 address left in duplicate address detection.
// Past that deadline a network without interface or usable address is an
// error (a *NetworkError per network, joined) that says what was found; a
// network that has addresses but still some tentative ones is returned
// without the tentative ones (Watch reports them once DAD ends).
//
// With no named network (host networking) Discover returns an empty
// result: use Host.
func Discover(ctx context.Context, nets []Network, opt Options) ([]NetworkAddrs, error) {
	want := assign(nets)
	if len(want) == 0 {
		return []NetworkAddrs{}, nil
	}
	log := opt.log()
	start := time.Now()
	wait := opt.tentativeWait()

	h, err := openHandle(opt.Namespace)
	if err != nil {
		return nil, fmt.Errorf("discover addresses: %w", err)
	}
	defer h.Close()

	// The common case: the isolator finished before the executor started,
	// and one read settles it without subscribing to anything.
	states, err := read(h, want)
	if err != nil || allSettled(states) || wait == 0 {
		return finish(log, states, err, time.Since(start))
	}

	// Subscribe before reading again, so that a change between that read
	// and the subscription cannot be missed.
	mon, err := startMonitor(ctx, opt.Namespace, log)
	if err != nil {
		return nil, fmt.Errorf("discover addresses: %w", err)
	}
	defer mon.Close()
	deadline := time.NewTimer(wait - time.Since(start))
	defer deadline.Stop()
	for {
		states, err = read(h, want)
		if err != nil || allSettled(states) {
			return finish(log, states, err, time.Since(start))
		}
		log.Debug("waiting for addresses", pendingFields(states)...)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("discover addresses: %w", ctx.Err())
		case <-deadline.C:
			return finish(log, states, nil, time.Since(start))
		case <-mon.hints:
		}
	}
}

func read(h *netlink.Handle, want []NetworkAddrs) ([]netState, error) {
	s, err := readSnapshot(h)
	if err != nil {
		return nil, err
	}
	return s.evaluate(want), nil
}

func allSettled(states []netState) bool {
	for _, s := range states {
		if !s.settled() {
			return false
		}
	}
	return true
}

// finish turns the last states into Discover's answer.
func finish(log *zap.Logger, states []netState, err error, waited time.Duration) ([]NetworkAddrs, error) {
	if err != nil {
		return nil, fmt.Errorf("discover addresses: %w", err)
	}
	var errs []error
	for _, s := range states {
		switch {
		case s.missing:
			errs = append(errs, &NetworkError{Network: s.Name, Interface: s.Interface, Err: ErrInterfaceMissing, Waited: waited.Round(time.Millisecond), Found: s.found})
		case len(s.Addrs) == 0:
			errs = append(errs, &NetworkError{Network: s.Name, Interface: s.Interface, Err: ErrNoAddress, Waited: waited.Round(time.Millisecond), Found: s.found})
		case len(s.tentative) > 0:
			log.Warn("IPv6 addresses still in duplicate address detection; reporting the network without them",
				zap.String("network", s.Name), zap.String("interface", s.Interface),
				zap.Stringers("tentative", s.tentative), zap.Duration("waited", waited))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("discover addresses: %w", errors.Join(errs...))
	}
	out := results(states)
	for _, n := range out {
		log.Info("discovered network addresses", zap.String("network", n.Name),
			zap.String("interface", n.Interface), zap.Stringers("addrs", n.Addrs))
	}
	return out, nil
}

func pendingFields(states []netState) []zap.Field {
	var missing []string
	var tentative []netip.Prefix
	var empty []string
	for _, s := range states {
		switch {
		case s.missing:
			missing = append(missing, s.Interface)
		case len(s.Addrs) == 0 && len(s.tentative) == 0:
			empty = append(empty, s.Interface)
		}
		tentative = append(tentative, s.tentative...)
	}
	return []zap.Field{zap.Strings("missing_interfaces", missing),
		zap.Strings("interfaces_without_address", empty), zap.Stringers("tentative", tentative)}
}

// Host returns what host networking offers (no network_infos): hostname,
// or the machine's hostname when empty (Thermos announces the agent's
// hostname, which Aurora hands the executor as slaveHost), and the usable
// addresses of every non-loopback interface. It reads once and does not
// wait for tentative addresses: a host's addresses settled long ago.
func Host(ctx context.Context, hostname string, opt Options) (HostAddrs, error) {
	if err := ctx.Err(); err != nil {
		return HostAddrs{}, fmt.Errorf("discover host addresses: %w", err)
	}
	if hostname == "" {
		var err error
		if hostname, err = os.Hostname(); err != nil {
			return HostAddrs{}, fmt.Errorf("discover host addresses: hostname: %w", err)
		}
	}
	h, err := openHandle(opt.Namespace)
	if err != nil {
		return HostAddrs{}, fmt.Errorf("discover host addresses: %w", err)
	}
	defer h.Close()
	s, err := readSnapshot(h)
	if err != nil {
		return HostAddrs{}, fmt.Errorf("discover host addresses: %w", err)
	}
	out := HostAddrs{Hostname: hostname}
	var v6 []netip.Prefix
	for _, l := range s.links {
		if l.loopback {
			continue
		}
		addrs, _, _ := s.usableAddrs(l.index)
		for _, p := range addrs {
			if p.Addr().Is4() {
				out.Addrs = append(out.Addrs, p)
			} else {
				v6 = append(v6, p)
			}
		}
	}
	out.Addrs = append(out.Addrs, v6...)
	opt.log().Info("host networking", zap.String("hostname", hostname), zap.Stringers("addrs", out.Addrs))
	return out, nil
}
