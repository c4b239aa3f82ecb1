package announcer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// StatusAlive is the status of a member that serves. Finagle also knows
// DEAD, STARTING, STOPPING, STOPPED and WARNING, which ParseMember accepts.
const StatusAlive = "ALIVE"

// MemberPrefix is the name of every member znode before its sequence number.
// Finagle and twitter.common select children by this prefix and read the
// number after it, so nothing else may precede or follow it.
const MemberPrefix = "member_"

// Endpoint is a host and port as serversets write them: host is a host name
// or a bare IP literal (IPv6 without brackets).
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// Inet and Inet6 are the endpoint's IPv4 and IPv6 addresses, which
	// twitter.common's Endpoint reads besides host; on a dual-stack network
	// they carry both families. Finagle ignores them.
	Inet  string `json:"inet,omitempty"`
	Inet6 string `json:"inet6,omitempty"`
}

// Member is the JSON of one serverset member (Finagle/twitter.common
// ServiceInstance). Our members always carry AdditionalEndpoints (possibly
// empty) and Shard; members written by other tools may lack them.
type Member struct {
	ServiceEndpoint     Endpoint            `json:"serviceEndpoint"`
	AdditionalEndpoints map[string]Endpoint `json:"additionalEndpoints"`
	Status              string              `json:"status"`
	Shard               *int                `json:"shard,omitempty"`
	Metadata            map[string]string   `json:"metadata,omitempty"`
}

// Metadata keys the announcer sets. Readers of the serverset format ignore
// metadata; these let a person or a tool see every address of the task.
const (
	// MetaNetwork names the network whose address is in the endpoints.
	// Absent under host networking.
	MetaNetwork = "network"
	// MetaAddressesPrefix + network name holds all addresses of that
	// network, comma separated, in discovery order, e.g.
	// "addresses.net-a": "198.18.0.2,2001:db8::2". Every member of a task
	// carries the keys of all of its networks.
	MetaAddressesPrefix = "addresses."
)

// Marshal is the member's znode data.
func (m Member) Marshal() ([]byte, error) {
	if m.AdditionalEndpoints == nil {
		m.AdditionalEndpoints = map[string]Endpoint{}
	}
	return json.Marshal(m)
}

var knownStatus = map[string]bool{"DEAD": true, "STARTING": true, "ALIVE": true, "STOPPING": true, "STOPPED": true, "WARNING": true}

// ParseMember reads a member's znode data, ours or any Finagle-format
// member. Unknown fields are ignored; a member no client could use (not a
// JSON object, no serviceEndpoint host, a port outside 0-65535, a shard that
// is not an integer, an unknown status) is an error that says what is wrong.
func ParseMember(data []byte) (Member, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Member{}, fmt.Errorf("member is not a JSON object: %w", err)
	}
	if _, ok := raw["serviceEndpoint"]; !ok {
		return Member{}, errors.New("member has no serviceEndpoint")
	}
	var m Member
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return Member{}, fmt.Errorf("malformed member: %w", err)
	}
	var errs []error
	if err := m.ServiceEndpoint.check(); err != nil {
		errs = append(errs, fmt.Errorf("serviceEndpoint: %w", err))
	}
	for name, ep := range m.AdditionalEndpoints {
		if err := ep.check(); err != nil {
			errs = append(errs, fmt.Errorf("additionalEndpoints[%q]: %w", name, err))
		}
	}
	if m.Status != "" && !knownStatus[m.Status] {
		errs = append(errs, fmt.Errorf("unknown status %q", m.Status))
	}
	if m.Shard != nil && *m.Shard < 0 {
		errs = append(errs, fmt.Errorf("negative shard %d", *m.Shard))
	}
	if err := errors.Join(errs...); err != nil {
		return Member{}, fmt.Errorf("malformed member: %w", err)
	}
	if m.AdditionalEndpoints == nil {
		m.AdditionalEndpoints = map[string]Endpoint{}
	}
	return m, nil
}

func (e Endpoint) check() error {
	if e.Host == "" {
		return errors.New("empty host")
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("port %d outside 0-65535", e.Port)
	}
	return nil
}

// MemberSequence returns the sequence number of a member znode name
// ("member_0000000042" -> 42); ok is false for any other name.
func MemberSequence(name string) (seq int64, ok bool) {
	digits, found := strings.CutPrefix(name, MemberPrefix)
	if !found || digits == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
