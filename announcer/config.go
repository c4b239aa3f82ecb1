// Package announcer keeps a task's ZooKeeper serverset membership: one member
// under the job path for the primary network and one under <job>@<network>
// for every network the task joined, each carrying every address of the
// task in its metadata (README, "Serversets").
//
// One goroutine owns the ZooKeeper session. Join, UpdateNetworks and Leave
// change what should exist and wait until it does; the goroutine makes it so
// and keeps it so across reconnects and session expiry.
package announcer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultRoot           = "/aurora"
	DefaultConnectTimeout = 30 * time.Second
	DefaultSessionTimeout = 10 * time.Second
)

// Config is how the executor's --announcer-* flags reach the announcer.
type Config struct {
	Ensemble []string // "host:port"; required (--announcer-ensemble)
	// Chroot prefixes every path, as a chroot in a ZooKeeper connect
	// string does ("zk1:2181,zk2:2181/chroot"; kazoo's KazooClient, which
	// Thermos' announcer uses, honours it). See ParseEnsemble.
	Chroot          string
	Root            string // default "/aurora" (--announcer-serverset-path)
	AllowCustomPath bool   // --announcer-allow-custom-serverset-path
	PrimaryNetwork  string // --announcer-primary-network; "" = first network
	Auth            *AuthConfig
	// ConnectTimeout bounds New: an ensemble not reached in time is an
	// error naming it. Default 30s.
	ConnectTimeout time.Duration
	// SessionTimeout is asked of ZooKeeper, which clamps it to its own
	// bounds. Default 10s.
	SessionTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Ensemble) == 0 {
		return c, errors.New("no ZooKeeper ensemble given; set --announcer-ensemble host:port[,host:port]")
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if !strings.HasPrefix(c.Root, "/") {
		return c, fmt.Errorf("serverset root %q must be an absolute ZooKeeper path (--announcer-serverset-path)", c.Root)
	}
	c.Root = path.Clean(c.Root)
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	return c, nil
}

// Network is one network the task joined, with its addresses in discovery
// order (the first one goes into the endpoints). A network without
// addresses gets no member until UpdateNetworks gives it one.
type Network struct {
	Name  string
	Addrs []netip.Addr
	// PortMappings are the network's NetworkInfo.port_mappings (Mesos'
	// port-mapper CNI plugin), host port → container port, TCP only. See
	// Spec.members for what is announced where.
	PortMappings map[int]int
}

// Spec is one task's announcement.
type Spec struct {
	Role, Environment, Job string
	Shard                  int    // instance id
	CustomPath             string // announce.zk_path ("" = none); needs Config.AllowCustomPath
	PrimaryPort            string // announce.primary_port ("" = "http")
	// Portmap is announce.portmap: alias -> port name, or a static port as a
	// decimal string. nil means Aurora's default {"aurora": PrimaryPort}.
	Portmap  map[string]string
	Ports    map[string]int // ports allocated to the task
	Networks []Network      // in network_infos order; empty = host networking
	Hostname string         // announced under host networking ("" = os.Hostname)
	// Metadata is copied into every member; the announcer's own keys
	// (MetaNetwork, MetaAddressesPrefix+network) win over these.
	Metadata map[string]string
}

// ErrCustomPathNotAllowed is returned by Join for a Spec with CustomPath when
// Config.AllowCustomPath is off.
var ErrCustomPathNotAllowed = errors.New("announce.zk_path needs the executor flag --announcer-allow-custom-serverset-path")

// basePath is the job's serverset path.
func (s Spec) basePath(cfg Config) (string, error) {
	if s.CustomPath != "" {
		if !cfg.AllowCustomPath {
			return "", fmt.Errorf("%w (zk_path %q)", ErrCustomPathNotAllowed, s.CustomPath)
		}
		if !strings.HasPrefix(s.CustomPath, "/") || path.Clean(s.CustomPath) == "/" {
			return "", fmt.Errorf("announce.zk_path %q must be an absolute ZooKeeper path below /", s.CustomPath)
		}
		return path.Join("/", cfg.Chroot, path.Clean(s.CustomPath)), nil
	}
	for _, f := range []struct{ what, v string }{{"role", s.Role}, {"environment", s.Environment}, {"job", s.Job}} {
		if err := checkName(f.what, f.v); err != nil {
			return "", err
		}
	}
	return path.Join("/", cfg.Chroot, cfg.Root, s.Role, s.Environment, s.Job), nil
}

// checkName refuses names that would change the shape of the path.
func checkName(what, v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
		return fmt.Errorf("%s %q cannot be part of a ZooKeeper path", what, v)
	}
	return nil
}

// DefaultClientPort is ZooKeeper's client port, for a host given without
// one.
const DefaultClientPort = "2181"

// ParseEnsemble splits a ZooKeeper connect string, "host:port,host:port"
// with an optional chroot after the last host ("zk1:2181,zk2:2181/aurora"),
// as ZooKeeper's ConnectStringParser and kazoo read it.
func ParseEnsemble(s string) (hosts []string, chroot string, err error) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "/"); i >= 0 {
		s, chroot = s[:i], path.Clean(s[i:])
		if chroot == "/" {
			chroot = ""
		}
	}
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			// A host without a port gets ZooKeeper's client port, as
			// in kazoo and go-zookeeper (zk.FormatServers); srvr is
			// asked at the same address.
			bare := strings.Trim(h, "[]")
			if strings.Contains(bare, ":") && !strings.HasPrefix(h, "[") || strings.ContainsAny(bare, "[]") {
				return nil, "", fmt.Errorf("ZooKeeper ensemble host %q: want host:port, or [ipv6]:port", h)
			}
			h = net.JoinHostPort(bare, DefaultClientPort)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, "", fmt.Errorf("ZooKeeper ensemble %q names no host; want host:port[,host:port][/chroot]", s)
	}
	return hosts, chroot, nil
}
