package announcer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-zookeeper/zk"
)

// AuthConfig is the file given by --announcer-zookeeper-auth-config, in the
// schema of Aurora's announcer_zkauth_schema.py:
//
//	{"auth": [{"scheme": "digest", "credential": "user:password"}],
//	 "acl":  [{"scheme": "digest", "credential": "user:password",
//	           "permissions": {"read": true, "write": true, "create": true,
//	                           "delete": true, "admin": true}},
//	          {"scheme": "world", "credential": "anyone",
//	           "permissions": {"read": true}}]}
//
// Auth entries are presented to ZooKeeper when the session starts (and again
// on every reconnect). ACL entries protect every znode the announcer creates,
// members and the parents it has to create. A digest ACL credential is
// "user:password" in the file and is hashed the way ZooKeeper's
// DigestAuthenticationProvider expects ("user:base64(sha1(user:password))").
// An empty acl list means the open ACL, as Thermos.
type AuthConfig struct {
	Auth []Auth   `json:"auth"`
	ACL  []Access `json:"acl"`
}

// Auth is one identity to authenticate as.
type Auth struct {
	Scheme     string `json:"scheme"`
	Credential string `json:"credential"`
}

// Access is one ACL entry.
type Access struct {
	Scheme      string      `json:"scheme"`
	Credential  string      `json:"credential"`
	Permissions Permissions `json:"permissions"`
}

// Permissions of an ACL entry; all default to false.
type Permissions struct {
	Read   bool `json:"read"`
	Write  bool `json:"write"`
	Create bool `json:"create"`
	Delete bool `json:"delete"`
	Admin  bool `json:"admin"`
}

// LoadAuthConfig reads and checks an auth config file.
func LoadAuthConfig(path string) (*AuthConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ZooKeeper auth config: %w", err)
	}
	cfg, err := ParseAuthConfig(b)
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper auth config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseAuthConfig parses the JSON of an auth config.
func ParseAuthConfig(b []byte) (*AuthConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cfg AuthConfig
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("not Aurora's zkauth JSON ({\"auth\":[...],\"acl\":[...]}): %w", err)
	}
	var errs []error
	for i, a := range cfg.Auth {
		if a.Scheme == "" || a.Credential == "" {
			errs = append(errs, fmt.Errorf("auth[%d]: scheme and credential are required", i))
		}
	}
	for i, a := range cfg.ACL {
		if a.Scheme == "" || a.Credential == "" {
			errs = append(errs, fmt.Errorf("acl[%d]: scheme and credential are required", i))
		}
		if a.Scheme == "digest" && !strings.Contains(a.Credential, ":") {
			errs = append(errs, fmt.Errorf("acl[%d]: digest credential must be \"user:password\"", i))
		}
		if a.Permissions.mask() == 0 {
			errs = append(errs, fmt.Errorf("acl[%d]: grants no permission; set at least one of read, write, create, delete, admin", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (p Permissions) mask() int32 {
	var m int32
	for _, f := range []struct {
		on   bool
		perm int32
	}{{p.Read, zk.PermRead}, {p.Write, zk.PermWrite}, {p.Create, zk.PermCreate}, {p.Delete, zk.PermDelete}, {p.Admin, zk.PermAdmin}} {
		if f.on {
			m |= f.perm
		}
	}
	return m
}

// zkACL is the ACL for every znode the announcer creates.
func (c *AuthConfig) zkACL() []zk.ACL {
	if c == nil || len(c.ACL) == 0 {
		return zk.WorldACL(zk.PermAll)
	}
	acl := make([]zk.ACL, 0, len(c.ACL))
	for _, a := range c.ACL {
		if a.Scheme == "digest" {
			user, password, _ := strings.Cut(a.Credential, ":")
			acl = append(acl, zk.DigestACL(a.Permissions.mask(), user, password)...)
			continue
		}
		acl = append(acl, zk.ACL{Perms: a.Permissions.mask(), Scheme: a.Scheme, ID: a.Credential})
	}
	return acl
}
