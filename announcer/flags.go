package announcer

import (
	"flag"
	"fmt"
	"strings"
)

// Flags are dewar-executor's announcer flags, named as Thermos names them.
// Register them on the executor's FlagSet and call Config after parsing.
type Flags struct {
	Ensemble        string
	ServersetPath   string
	AllowCustomPath bool
	Hostname        string
	AuthConfig      string
	PrimaryNetwork  string
}

// Register adds --announcer-* to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Ensemble, "announcer-ensemble", "", "ZooKeeper ensemble host:port[,host:port][/chroot] to announce into; empty: no announcing")
	fs.StringVar(&f.ServersetPath, "announcer-serverset-path", DefaultRoot, "root of the serverset paths: <root>/<role>/<environment>/<job>")
	fs.BoolVar(&f.AllowCustomPath, "announcer-allow-custom-serverset-path", false, "allow a job's announce.zk_path to choose its own serverset path")
	fs.StringVar(&f.Hostname, "announcer-hostname", "", "host name to use instead of the agent's, in templates and host-networking announcements")
	fs.StringVar(&f.AuthConfig, "announcer-zookeeper-auth-config", "", "file with Aurora's ZooKeeper auth JSON ({\"auth\":[...],\"acl\":[...]}); empty: open ACL")
	fs.StringVar(&f.PrimaryNetwork, "announcer-primary-network", "", "CNI network whose address goes under the classic job path; default: the task's first network")
}

// Config turns the flags into a Config; enabled is false when no ensemble
// was given (the executor then does not announce, as Thermos). The auth
// config file is read and checked here, so a bad one fails at start.
func (f Flags) Config() (cfg Config, enabled bool, err error) {
	if strings.TrimSpace(f.Ensemble) == "" {
		return Config{}, false, nil
	}
	if cfg.Ensemble, cfg.Chroot, err = ParseEnsemble(f.Ensemble); err != nil {
		return Config{}, false, fmt.Errorf("--announcer-ensemble: %w", err)
	}
	cfg.Root = f.ServersetPath
	cfg.AllowCustomPath = f.AllowCustomPath
	cfg.PrimaryNetwork = f.PrimaryNetwork
	if f.AuthConfig != "" {
		if cfg.Auth, err = LoadAuthConfig(f.AuthConfig); err != nil {
			return Config{}, false, fmt.Errorf("--announcer-zookeeper-auth-config: %w", err)
		}
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, false, err
	}
	return cfg, true, nil
}
