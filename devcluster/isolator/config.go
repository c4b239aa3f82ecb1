package isolator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

// mesosArgsKey is the key under a network config's "args" that Mesos reserves
// for itself: the agent refuses a config that sets it (cni.cpp, attach()).
const mesosArgsKey = "org.apache.mesos"

// network is one CNI network loaded from the config dir.
type network struct {
	name    string
	file    string
	version string
	// list is the network as a conflist: a Mesos-style single network config
	// becomes a list of one plugin, so ADD and DEL take one path.
	list *libcni.NetworkConfigList
	// plugins holds each plugin config as decoded JSON, so args can be
	// injected per container without touching the loaded config.
	plugins []map[string]any
}

// configExtensions are the files read from the config dir. Mesos reads every
// file; we follow libcni's convention so editor backups and READMEs beside
// the configs are not mistaken for networks.
var configExtensions = []string{".conf", ".json", ".conflist"}

// loadNetworks reads every network config in dir and checks that the plugins
// it names exist in pluginDirs. Any unreadable or invalid file, a duplicate
// network name or a missing plugin is an error naming the file: the agent
// refuses to start rather than fail tasks later.
func loadNetworks(dir string, pluginDirs []string) (map[string]*network, error) {
	nets := map[string]*network{}
	if dir == "" {
		return nets, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read CNI config dir (--network-cni-config-dir) %s: %w", dir, err)
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].Name() < entries[b].Name() })
	for _, e := range entries {
		if e.IsDir() || !slices.Contains(configExtensions, filepath.Ext(e.Name())) {
			continue
		}
		file := filepath.Join(dir, e.Name())
		n, err := loadNetwork(file)
		if err != nil {
			return nil, fmt.Errorf("CNI network config %s: %w", file, err)
		}
		if prev, ok := nets[n.name]; ok {
			return nil, fmt.Errorf("CNI network config %s: network %q is already defined in %s; give each network one config file", file, n.name, prev.file)
		}
		if err := checkPlugins(n, pluginDirs); err != nil {
			return nil, fmt.Errorf("CNI network config %s: %w", file, err)
		}
		nets[n.name] = n
	}
	return nets, nil
}

func loadNetwork(file string) (*network, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	name, _ := raw["name"].(string)
	if name == "" {
		return nil, errors.New(`no "name": every network config needs a network name`)
	}
	version, _ := raw["cniVersion"].(string)
	if version == "" {
		// The CNI spec reads a missing version as 0.1.0.
		version = "0.1.0"
	}

	var plugins []map[string]any
	if filepath.Ext(file) == ".conflist" {
		list, ok := raw["plugins"].([]any)
		if !ok || len(list) == 0 {
			return nil, errors.New(`a .conflist needs a non-empty "plugins" list`)
		}
		for i, p := range list {
			m, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("plugin %d is not a JSON object", i)
			}
			plugins = append(plugins, m)
		}
	} else {
		plugins = []map[string]any{raw}
	}
	for i, p := range plugins {
		if t, _ := p["type"].(string); t == "" {
			return nil, fmt.Errorf(`plugin %d has no "type"`, i)
		}
		if args, ok := p["args"]; ok {
			m, ok := args.(map[string]any)
			if !ok {
				return nil, fmt.Errorf(`"args" of plugin %d is not a JSON object`, i)
			}
			if _, ok := m[mesosArgsKey]; ok {
				return nil, fmt.Errorf(`"args" of plugin %d sets %q, which is reserved for the agent; remove it`, i, mesosArgsKey)
			}
		}
	}
	n := &network{name: name, file: file, version: version, plugins: plugins}
	if n.list, err = n.listWith(nil); err != nil {
		return nil, err
	}
	return n, nil
}

// listWith builds the network's conflist with args["org.apache.mesos"] set
// to mesosArgs in every plugin (nil leaves args untouched).
func (n *network) listWith(mesosArgs any) (*libcni.NetworkConfigList, error) {
	plugins := make([]any, 0, len(n.plugins))
	for _, p := range n.plugins {
		q := make(map[string]any, len(p)+1)
		for k, v := range p {
			q[k] = v
		}
		if mesosArgs != nil {
			args := map[string]any{}
			if old, ok := p["args"].(map[string]any); ok {
				for k, v := range old {
					args[k] = v
				}
			}
			args[mesosArgsKey] = mesosArgs
			q["args"] = args
		}
		plugins = append(plugins, q)
	}
	b, err := json.Marshal(map[string]any{"name": n.name, "cniVersion": n.version, "plugins": plugins})
	if err != nil {
		return nil, fmt.Errorf("encode network %q: %w", n.name, err)
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", n.name, err)
	}
	return list, nil
}

// checkPlugins fails when a plugin (or IPAM plugin) the network uses is not
// in pluginDirs, as Mesos checks at load time.
func checkPlugins(n *network, pluginDirs []string) error {
	for _, p := range n.list.Plugins {
		types := []string{p.Network.Type}
		if p.Network.IPAM.Type != "" {
			types = append(types, p.Network.IPAM.Type)
		}
		for _, t := range types {
			if _, err := invoke.FindInPath(t, pluginDirs); err != nil {
				return fmt.Errorf("network %q uses CNI plugin %q, not found in --network-cni-plugins-dir %s: %w",
					n.name, t, strings.Join(pluginDirs, ":"), err)
			}
		}
	}
	return nil
}
