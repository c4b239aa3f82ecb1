package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/dewarhq/dewar/announcer"
)

// writeText prints a header line and one line per member:
//
//	member_0000000000 shard=3 status=ALIVE service=198.18.0.2:31001 admin=198.18.0.2:31002 ... addresses.net-a=198.18.0.2,2001:db8::2
//
// endpoints sorted by name, then metadata sorted by key.
func writeText(w io.Writer, path string, entries []announcer.Entry) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d members\n", path, len(entries))
	for _, e := range entries {
		b.WriteString(e.Node)
		if e.Err != nil {
			fmt.Fprintf(&b, " error=%q\n", e.Err.Error())
			continue
		}
		m := e.Member
		shard := "none"
		if m.Shard != nil {
			shard = strconv.Itoa(*m.Shard)
		}
		status := m.Status
		if status == "" {
			status = "none"
		}
		fmt.Fprintf(&b, " shard=%s status=%s service=%s", shard, status, hostPort(m.ServiceEndpoint))
		for _, name := range slices.Sorted(maps.Keys(m.AdditionalEndpoints)) {
			fmt.Fprintf(&b, " %s=%s", name, hostPort(m.AdditionalEndpoints[name]))
		}
		for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
			fmt.Fprintf(&b, " %s=%s", k, m.Metadata[k])
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hostPort(e announcer.Endpoint) string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

type jsonListing struct {
	Path    string       `json:"path"`
	Members []jsonMember `json:"members"`
}

type jsonMember struct {
	Node   string            `json:"node"`
	Member *announcer.Member `json:"member,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// writeJSON prints one JSON object per listing, on one line.
func writeJSON(w io.Writer, path string, entries []announcer.Entry) error {
	out := jsonListing{Path: path, Members: []jsonMember{}}
	for _, e := range entries {
		jm := jsonMember{Node: e.Node}
		if e.Err != nil {
			jm.Error = e.Err.Error()
		} else {
			m := e.Member
			jm.Member = &m
		}
		out.Members = append(out.Members, jm)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
