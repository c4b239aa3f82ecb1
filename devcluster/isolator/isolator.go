// Package isolator is the fake agent's stand-in for the Mesos network/cni
// isolator: for each container a fresh network namespace, joined to the CNI
// networks its NetworkInfos name, with the real CNI plugins, exactly as a
// Mesos agent would call them (cni.cpp in Mesos):
//
//   - the N-th named NetworkInfo gets interface "ethN" (unnamed ones are
//     skipped and take no index), which is what netdiscover relies on;
//   - every plugin sees args["org.apache.mesos"]["network_info"] holding the
//     NetworkInfo as Mesos renders it (name, labels, ...);
//   - the addresses in the plugins' results become the NetworkInfo's
//     ip_addresses, the agent's view that it merges into status updates.
//
// State is checkpointed in Config.StateDir before any plugin runs, so Cleanup
// works after an agent restart, from a new Isolator.
//
// Plugins act in the network namespace of the thread that calls Prepare and
// Cleanup: bridges and host-side veths appear there. To play a whole node
// inside a namespace, run the agent with `nsenter --net=/run/netns/<node>`
// rather than `ip netns exec`: the latter gives the process a slave mount
// namespace, so the container namespaces it pins in /var/run/netns would be
// invisible to the host (`ip netns list` shows dead entries) and gone for the
// next agent process after a restart.
package isolator

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Config says where the isolator finds networks and plugins and keeps state.
type Config struct {
	// ConfigDir holds the network configs (--network-cni-config-dir):
	// Mesos-style single network configs (*.conf, *.json, usually
	// "cniVersion": "0.2.0") and *.conflist files. Empty means no networks:
	// every container uses the host network.
	ConfigDir string
	// PluginDirs are searched for plugin binaries
	// (--network-cni-plugins-dir, colon-separated on the flag).
	PluginDirs []string
	// StateDir keeps per-container state (and libcni's result cache), so
	// Cleanup works after an agent restart. Required when ConfigDir is set.
	StateDir string
	Log      *zap.Logger
}

// Isolator attaches containers to CNI networks. It is safe for concurrent
// use; operations on one container ID are serialized by rejecting overlaps.
type Isolator struct {
	cfg  Config
	log  *zap.Logger
	nets map[string]*network
	cni  *libcni.CNIConfig

	// mu guards the following fields.
	mu sync.Mutex
	// busy holds container IDs with a Prepare or Cleanup under way.
	busy map[string]bool
}

// New loads the network configs. An unreadable or invalid config, two
// configs of one network name, or a plugin missing from PluginDirs is an
// error naming the file.
func New(cfg Config) (*Isolator, error) {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	nets, err := loadNetworks(cfg.ConfigDir, cfg.PluginDirs)
	if err != nil {
		return nil, err
	}
	if len(nets) > 0 && cfg.StateDir == "" {
		return nil, errors.New("isolator: StateDir is required with CNI networks: it holds what Cleanup needs after a restart")
	}
	i := &Isolator{
		cfg:  cfg,
		log:  log.With(zap.String("component", "cni-isolator")),
		nets: nets,
		busy: map[string]bool{},
	}
	if cfg.StateDir != "" {
		// libcni's default cache, /var/lib/cni, would outlive the tests and
		// be shared with other runtimes on the machine.
		exec := &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: &logWriter{log: i.log}},
			PluginDecoder: version.PluginDecoder{},
		}
		i.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, stateCacheDir(cfg.StateDir), exec)
	}
	i.log.Info("CNI networks loaded", zap.Strings("networks", i.Networks()), zap.String("config_dir", cfg.ConfigDir))
	return i, nil
}

// Networks returns the names of the loaded networks, sorted.
func (i *Isolator) Networks() []string {
	names := make([]string, 0, len(i.nets))
	for n := range i.nets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Container is a prepared container's network side.
type Container struct {
	ID string
	// NetNSName is the name under /var/run/netns ("dewar-c-..."), as `ip
	// netns` lists it; NetNSPath its full path. Both are empty for a
	// container on the host network (no named NetworkInfo).
	NetNSName, NetNSPath string
	// NetworkInfos are the named NetworkInfos as requested, in order, each
	// with IPAddresses replaced by what the plugins assigned: the agent's
	// view for container_status.network_infos.
	NetworkInfos []*mesos.NetworkInfo
}

// Wrap returns argv that runs argv inside the container's network namespace.
// It needs nsenter (util-linux) on PATH. A host-network container runs argv
// unchanged.
func (c *Container) Wrap(argv []string) []string {
	if c.NetNSPath == "" {
		return slices.Clone(argv)
	}
	return append([]string{"nsenter", "--net=" + c.NetNSPath, "--"}, argv...)
}

// containerIDPattern is what CNI accepts as CNI_CONTAINERID (libcni's
// ValidateContainerID); the ID also names the state file.
var containerIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

func validContainerID(id string) error {
	if !containerIDPattern.MatchString(id) {
		return fmt.Errorf("invalid container ID %q: use letters, digits, '_', '.', '-', starting with a letter or digit", id)
	}
	return nil
}

// UnknownNetworkError is Prepare's error for a NetworkInfo naming a network
// that has no config; the agent fails the task with its message.
type UnknownNetworkError struct {
	Name  string
	Known []string // sorted
}

func (e *UnknownNetworkError) Error() string {
	known := strings.Join(e.Known, ", ")
	if known == "" {
		known = "(none)"
	}
	return fmt.Sprintf("unknown CNI network %q; known networks: %s", e.Name, known)
}

// attachment is one named network of a container, in interface order.
type attachment struct {
	net    *network
	ifName string
	info   *mesos.NetworkInfo
}

// plan checks a container's NetworkInfos against the loaded networks before
// anything is created: unknown names and a network named twice are errors.
func (i *Isolator) plan(networks []mesos.NetworkInfo) ([]attachment, error) {
	var out []attachment
	seen := map[string]bool{}
	for k := range networks {
		ni := &networks[k]
		if ni.Name == nil || *ni.Name == "" {
			// Mesos: no name means the host network; it takes no ethN.
			continue
		}
		name := *ni.Name
		n, ok := i.nets[name]
		if !ok {
			return nil, &UnknownNetworkError{Name: name, Known: i.Networks()}
		}
		if seen[name] {
			return nil, fmt.Errorf("CNI network %q is joined twice; a container joins each network once", name)
		}
		seen[name] = true
		out = append(out, attachment{net: n, ifName: fmt.Sprintf("eth%d", len(out)), info: cloneNetworkInfo(ni)})
	}
	return out, nil
}

// acquire marks id busy; release undoes it.
func (i *Isolator) acquire(id string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.busy[id] {
		return fmt.Errorf("container %s: another Prepare or Cleanup is under way", id)
	}
	i.busy[id] = true
	return nil
}

func (i *Isolator) release(id string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.busy, id)
}

// logWriter sends plugin stderr to the log, one entry per write.
type logWriter struct {
	log *zap.Logger
	mu  sync.Mutex
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := strings.TrimSpace(string(p)); s != "" {
		w.log.Warn("CNI plugin stderr", zap.String("stderr", s))
	}
	return len(p), nil
}
