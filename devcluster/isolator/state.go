package isolator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// containerState is what survives an agent restart, one JSON file per
// container (<StateDir>/containers/<id>.json). It is written before the first
// plugin runs and after each ADD, like the Mesos isolator's checkpoints under
// /var/run/mesos/isolators/network/cni.
type containerState struct {
	ContainerID string            `json:"container_id"`
	NetNSName   string            `json:"netns_name"`
	NetNSPath   string            `json:"netns_path"`
	Networks    []attachmentState `json:"networks"`
}

type attachmentState struct {
	Network string `json:"network"`
	IfName  string `json:"if_name"`
	// Config is the conflist given to ADD, args included; DEL gets the same
	// bytes even if the config dir changed meanwhile.
	Config json.RawMessage `json:"config"`
	// NetworkInfo is the requested NetworkInfo, protobuf-encoded.
	NetworkInfo []byte `json:"network_info"`
	// Added is set once ADD succeeded; IPs holds what it assigned.
	Added bool     `json:"added"`
	IPs   []ipAddr `json:"ips,omitempty"`
}

type ipAddr struct {
	Protocol string `json:"protocol"`
	IP       string `json:"ip"`
}

func stateCacheDir(stateDir string) string { return filepath.Join(stateDir, "cni-cache") }

func stateFile(stateDir, id string) string {
	return filepath.Join(stateDir, "containers", id+".json")
}

// readState returns nil, nil when no state exists for id.
func readState(stateDir, id string) (*containerState, error) {
	b, err := os.ReadFile(stateFile(stateDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read isolator state: %w", err)
	}
	var st containerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("isolator state %s is corrupt (remove it after cleaning up by hand): %w", stateFile(stateDir, id), err)
	}
	return &st, nil
}

// writeState replaces the state file atomically, so a crash leaves the old
// or the new state, never half of one.
func writeState(stateDir string, st *containerState) error {
	path := stateFile(stateDir, st.ContainerID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create isolator state dir: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode isolator state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+st.ContainerID+"-*")
	if err != nil {
		return fmt.Errorf("write isolator state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write isolator state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write isolator state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write isolator state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write isolator state: %w", err)
	}
	return nil
}

func removeState(stateDir, id string) error {
	err := os.Remove(stateFile(stateDir, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove isolator state: %w", err)
	}
	return nil
}

// container rebuilds the Container a state describes.
func (st *containerState) container() (*Container, error) {
	c := &Container{ID: st.ContainerID, NetNSName: st.NetNSName, NetNSPath: st.NetNSPath}
	for _, a := range st.Networks {
		var ni mesos.NetworkInfo
		if err := ni.Unmarshal(a.NetworkInfo); err != nil {
			return nil, fmt.Errorf("decode NetworkInfo of network %q from isolator state: %w", a.Network, err)
		}
		c.NetworkInfos = append(c.NetworkInfos, agentNetworkInfo(&ni, fromIPAddrs(a.IPs)))
	}
	return c, nil
}

func toIPAddrs(ips []mesos.NetworkInfo_IPAddress) []ipAddr {
	out := make([]ipAddr, 0, len(ips))
	for _, a := range ips {
		out = append(out, ipAddr{Protocol: a.GetProtocol().String(), IP: a.GetIPAddress()})
	}
	return out
}

func fromIPAddrs(ips []ipAddr) []mesos.NetworkInfo_IPAddress {
	out := make([]mesos.NetworkInfo_IPAddress, 0, len(ips))
	for _, a := range ips {
		proto := mesos.IPv4
		if a.Protocol == mesos.IPv6.String() {
			proto = mesos.IPv6
		}
		ip := a.IP
		out = append(out, mesos.NetworkInfo_IPAddress{Protocol: proto.Enum(), IPAddress: &ip})
	}
	return out
}
