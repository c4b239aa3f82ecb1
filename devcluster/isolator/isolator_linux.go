package isolator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// undoTimeout bounds the clean-up after a failed Prepare, which runs even
// when the caller's ctx is already done.
const undoTimeout = 30 * time.Second

// Prepare creates the container's network namespace ("dewar-c-..."), brings
// up its loopback and runs CNI ADD for each named NetworkInfo in order, with
// CNI_IFNAME=ethN and args["org.apache.mesos"]["network_info"] set. Unnamed
// NetworkInfos are skipped; with no named one the container uses the host
// network and nothing is created.
//
// An unknown network name fails before anything is created. When an ADD
// fails, everything done so far is undone (DEL of every network, namespace
// removed) and the error says which network failed.
//
// The plugins run as children of the calling OS thread, so they act in the
// network namespace the caller is in: that is where bridges and host-side
// veths appear.
func (i *Isolator) Prepare(ctx context.Context, containerID string, networks []mesos.NetworkInfo) (*Container, error) {
	if err := validContainerID(containerID); err != nil {
		return nil, err
	}
	atts, err := i.plan(networks)
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return &Container{ID: containerID}, nil
	}
	if err := i.acquire(containerID); err != nil {
		return nil, err
	}
	defer i.release(containerID)

	if st, err := readState(i.cfg.StateDir, containerID); err != nil {
		return nil, err
	} else if st != nil {
		return nil, fmt.Errorf("container %s is already prepared (network namespace %s); call Cleanup first", containerID, st.NetNSName)
	}

	st, err := newState(containerID, atts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := createNetNS(st.NetNSName)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", containerID, err)
	}
	st.NetNSPath = path
	log := i.log.With(zap.String("container_id", containerID), zap.String("netns", path))
	if err := writeState(i.cfg.StateDir, st); err != nil {
		return nil, errors.Join(err, removeNetNS(path))
	}

	undo := func(cause error) error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if err := i.teardown(uctx, st, log); err != nil {
			return errors.Join(cause, fmt.Errorf("undoing the partial set-up failed too (Cleanup(%q) retries): %w", containerID, err))
		}
		return cause
	}

	if err := setLoopbackUp(path); err != nil {
		return nil, undo(fmt.Errorf("container %s: %w", containerID, err))
	}

	c := &Container{ID: containerID, NetNSName: st.NetNSName, NetNSPath: path}
	if c.NetworkInfos, err = i.join(ctx, st, atts, log); err != nil {
		return nil, undo(err)
	}
	return c, nil
}

// join runs ADD for each network in order, checkpointing after each, and
// returns the agent's NetworkInfos.
func (i *Isolator) join(ctx context.Context, st *containerState, atts []attachment, log *zap.Logger) ([]*mesos.NetworkInfo, error) {
	var out []*mesos.NetworkInfo
	for k, a := range atts {
		list, err := libcni.NetworkConfFromBytes(st.Networks[k].Config)
		if err != nil {
			return nil, fmt.Errorf("container %s network %q: %w", st.ContainerID, a.net.name, err)
		}
		res, err := i.cni.AddNetworkList(ctx, list, i.runtimeConf(st, k))
		if err != nil {
			return nil, fmt.Errorf("container %s: CNI ADD of network %q (%s) as %s failed; the container's networking was undone: %w",
				st.ContainerID, a.net.name, a.net.file, a.ifName, err)
		}
		ips, err := ipAddresses(res)
		if err != nil {
			return nil, fmt.Errorf("container %s network %q: %w", st.ContainerID, a.net.name, err)
		}
		st.Networks[k].Added, st.Networks[k].IPs = true, toIPAddrs(ips)
		if err := writeState(i.cfg.StateDir, st); err != nil {
			return nil, err
		}
		out = append(out, agentNetworkInfo(a.info, ips))
		log.Info("joined CNI network", zap.String("network", a.net.name), zap.String("interface", a.ifName),
			zap.Strings("ips", ipStrings(ips)))
	}
	return out, nil
}

// newState plans a container's state: per network the conflist with the
// Mesos args injected, exactly what ADD and later DEL get.
func newState(containerID string, atts []attachment) (*containerState, error) {
	st := &containerState{ContainerID: containerID, NetNSName: netnsName(containerID)}
	for _, a := range atts {
		list, err := a.net.listWith(mesosArgs(a.info))
		if err != nil {
			return nil, err
		}
		ni, err := a.info.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode NetworkInfo of network %q: %w", a.net.name, err)
		}
		st.Networks = append(st.Networks, attachmentState{
			Network: a.net.name, IfName: a.ifName, Config: list.Bytes, NetworkInfo: ni,
		})
	}
	return st, nil
}

// Cleanup runs CNI DEL for each of the container's networks (in reverse
// order) and removes its namespace. It works from the state in StateDir, so a
// new Isolator (after an agent restart) cleans up what an old one prepared.
// Cleaning up an unknown or already cleaned container is not an error. When a
// DEL fails the state is kept and Cleanup can be called again.
func (i *Isolator) Cleanup(ctx context.Context, containerID string) error {
	if err := validContainerID(containerID); err != nil {
		return err
	}
	if i.cfg.StateDir == "" {
		return nil // no networks, so nothing was ever created
	}
	if err := i.acquire(containerID); err != nil {
		return err
	}
	defer i.release(containerID)
	st, err := readState(i.cfg.StateDir, containerID)
	if err != nil || st == nil {
		return err
	}
	return i.teardown(ctx, st, i.log.With(zap.String("container_id", containerID), zap.String("netns", st.NetNSPath)))
}

// Lookup returns the container as prepared, from StateDir (so also after a
// restart), or nil when there is none.
func (i *Isolator) Lookup(containerID string) (*Container, error) {
	if err := validContainerID(containerID); err != nil {
		return nil, err
	}
	if i.cfg.StateDir == "" {
		return nil, nil
	}
	st, err := readState(i.cfg.StateDir, containerID)
	if err != nil || st == nil {
		return nil, err
	}
	return st.container()
}

// Prepared lists the IDs of containers with state in StateDir: after a
// restart, the agent cleans up those it no longer knows (as Mesos recovers
// orphans).
func (i *Isolator) Prepared() ([]string, error) {
	if i.cfg.StateDir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(i.cfg.StateDir, "containers", "*.json"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(files))
	for _, f := range files {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return ids, nil
}

// teardown deletes every network in st (also those whose ADD failed or never
// ran: DEL is idempotent and releases IPAM leases a failed ADD may hold),
// then the namespace and the state. Only a failed DEL of a network that was
// joined keeps the state, for a later Cleanup to retry.
func (i *Isolator) teardown(ctx context.Context, st *containerState, log *zap.Logger) error {
	var errs []error
	if !netnsExists(st.NetNSPath) {
		// CNI DEL must still release addresses when the namespace is gone;
		// plugins take an empty CNI_NETNS for that.
		st.NetNSPath = ""
	}
	for k := len(st.Networks) - 1; k >= 0; k-- {
		a := st.Networks[k]
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err == nil {
			err = i.cni.DelNetworkList(ctx, list, i.runtimeConf(st, k))
		}
		if err != nil && !a.Added {
			// The ADD failed or never ran: DEL is worth a try (it frees what
			// a half-done ADD reserved) but a config whose ADD cannot work
			// rarely has a DEL that can, and must not pin the container.
			log.Warn("CNI DEL of a network whose ADD did not succeed failed; ignored",
				zap.String("network", a.Network), zap.String("interface", a.IfName), zap.Error(err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL of network %q (%s): %w", a.Network, a.IfName, err))
			continue
		}
		log.Info("left CNI network", zap.String("network", a.Network), zap.String("interface", a.IfName))
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: %w", st.ContainerID, errors.Join(errs...))
	}
	if path := filepath.Join(netnsDir, st.NetNSName); st.NetNSName != "" {
		if err := removeNetNS(path); err != nil {
			return fmt.Errorf("container %s: %w", st.ContainerID, err)
		}
	}
	return removeState(i.cfg.StateDir, st.ContainerID)
}

func (i *Isolator) runtimeConf(st *containerState, k int) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: st.ContainerID,
		NetNS:       st.NetNSPath,
		IfName:      st.Networks[k].IfName,
	}
}

func ipStrings(ips []mesos.NetworkInfo_IPAddress) []string {
	out := make([]string, 0, len(ips))
	for _, a := range ips {
		out = append(out, a.GetIPAddress())
	}
	return out
}
