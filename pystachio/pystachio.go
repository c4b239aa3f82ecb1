// Package pystachio renders the {{...}} templates of Aurora task configs the
// way Thermos does at run time.
//
// The Aurora client binds everything but the run-time facts before it sends
// the job, so what is left in a command line are references such as
// {{thermos.ports[http]}}, {{thermos.task_id}}, {{mesos.instance}} and dewar's
// {{mesos.ip}} and {{mesos.ips[NETWORK]}}. A Scope maps each full reference to
// its value. Syntax follows pystachio's MustacheParser and Ref:
//   - a tag is "{{" + one or more characters other than braces + "}}";
//   - "{{&name}}" is an escape that renders as the literal "{{name}}";
//   - a reference is dotted names and [index] parts, e.g. a.b[c];
//
// Unlike pystachio, whitespace just inside the braces ("{{ mesos.ip }}") is
// accepted; pystachio rejects it as an invalid reference, so accepting it
// changes the meaning of no config Thermos would run.
package pystachio

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Scope maps a reference in canonical form ("thermos.ports[http]", no
// spaces, no leading dot) to its value.
type Scope map[string]string

// SyntaxError is a {{...}} tag whose content is not a valid reference.
type SyntaxError struct {
	Tag    string // the tag as written, braces included
	Reason string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid template reference %s: %s", e.Tag, e.Reason)
}

// UnboundError is a reference the scope has no value for.
type UnboundError struct {
	Ref     string   // canonical reference, e.g. "thermos.ports[htp]"
	Similar []string // known references that look alike, best first
	Ports   []string // for thermos.ports[...]: the ports the task has
}

func (e *UnboundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown template variable {{%s}}", e.Ref)
	if name, ok := strings.CutPrefix(e.Ref, "thermos.ports["); ok {
		name = strings.TrimSuffix(name, "]")
		if len(e.Ports) == 0 {
			fmt.Fprintf(&b, ": no port named %q was allocated to the task (it has no ports; request it in the job's resources/announce)", name)
		} else {
			fmt.Fprintf(&b, ": no port named %q was allocated to the task (allocated: %s)", name, strings.Join(e.Ports, ", "))
		}
	}
	if len(e.Similar) > 0 {
		fmt.Fprintf(&b, "; did you mean {{%s}}?", strings.Join(e.Similar, "}} or {{"))
	}
	return b.String()
}

type segKind int

const (
	literal segKind = iota
	reference
	escaped
)

type segment struct {
	kind segKind
	text string // literal text, raw reference content, or escaped body
}

// split cuts s into literals, references and escapes exactly where
// pystachio's regular expression {{(&)?([^{}]+?)\1?}} matches.
func split(s string) []segment {
	var out []segment
	i := 0
	for {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			break
		}
		pos := i + j
		k := pos + 2
		e := k + strings.IndexAny(s[k:], "{}")
		if e < k || e == k || !strings.HasPrefix(s[e:], "}}") {
			// No tag starts here; the expression would retry one later.
			out = appendLit(out, s[i:pos+1])
			i = pos + 1
			continue
		}
		out = appendLit(out, s[i:pos])
		content := s[k:e]
		if len(content) > 1 && content[0] == '&' {
			body := content[1:]
			if len(body) > 1 && strings.HasSuffix(body, "&") {
				body = body[:len(body)-1]
			}
			out = append(out, segment{kind: escaped, text: body})
		} else {
			out = append(out, segment{kind: reference, text: content})
		}
		i = e + 2
	}
	return appendLit(out, s[i:])
}

func appendLit(out []segment, s string) []segment {
	if s == "" {
		return out
	}
	if n := len(out); n > 0 && out[n-1].kind == literal {
		out[n-1].text += s
		return out
	}
	return append(out, segment{kind: literal, text: s})
}

// validRef says whether s is one or more components of a reference, as
// pystachio's Ref reads them: ".name" (a letter or '_', then letters,
// digits and '_') and "[index]" (letters, digits, '_', '-', '.', '/');
// the regular expression in pystachio_test.go (refGrammar) says the same.
// Matched by hand: compiling that expression, Unicode classes and all,
// cost every executor 146 KB of heap at start and kept it for its life.
func validRef(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		var n int
		switch s[0] {
		case '.':
			n = nameLen(s[1:])
			if n == 0 {
				return false
			}
			n++
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 2 || strings.IndexFunc(s[1:end], notIndexRune) >= 0 {
				return false
			}
			n = end + 1
		default:
			return false
		}
		s = s[n:]
	}
	return true
}

// nameLen is the length in bytes of the name at the start of s: a letter
// or '_', then letters, digits and '_'; 0 if s starts with none.
func nameLen(s string) int {
	for i, r := range s {
		if r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsNumber(r)) {
			continue
		}
		return i
	}
	return len(s)
}

func notIndexRune(r rune) bool {
	return !(unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune("_-./", r))
}

// startsName: a reference without a leading '.' or '[' starts with an
// ASCII letter or '_'.
func startsName(s string) bool {
	c := s[0]
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// canonical returns the canonical address of the reference inside a tag.
func canonical(raw string) (string, error) {
	addr := strings.TrimSpace(raw)
	tag := "{{" + raw + "}}"
	if addr == "" {
		return "", &SyntaxError{Tag: tag, Reason: "empty reference"}
	}
	full := addr
	if addr[0] != '.' && addr[0] != '[' {
		if !startsName(addr) {
			return "", &SyntaxError{Tag: tag, Reason: "a reference starts with a letter or '_'"}
		}
		full = "." + addr
	}
	if !validRef(full) {
		return "", &SyntaxError{Tag: tag, Reason: "want dotted names and [index] parts, e.g. thermos.ports[http]"}
	}
	return strings.TrimPrefix(full, "."), nil
}

// Render replaces every reference in s with its value from scope. An
// invalid reference is a *SyntaxError, one the scope lacks an
// *UnboundError; nothing is rendered then.
func Render(s string, scope Scope) (string, error) {
	var b strings.Builder
	for _, seg := range split(s) {
		switch seg.kind {
		case literal:
			b.WriteString(seg.text)
		case escaped:
			b.WriteString("{{" + seg.text + "}}")
		case reference:
			ref, err := canonical(seg.text)
			if err != nil {
				return "", err
			}
			v, ok := scope[ref]
			if !ok {
				return "", scope.unbound(ref)
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// RenderAll renders each template; the error names the index of the first
// one that fails.
func RenderAll(scope Scope, templates ...string) ([]string, error) {
	out := make([]string, len(templates))
	for i, t := range templates {
		r, err := Render(t, scope)
		if err != nil {
			return nil, fmt.Errorf("template %d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

// Refs lists the references in s in canonical form, each once, in order of
// first use. Escapes ({{&x}}) are not references.
func Refs(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, seg := range split(s) {
		if seg.kind != reference {
			continue
		}
		ref, err := canonical(seg.text)
		if err != nil {
			return nil, err
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out, nil
}

// Unbound lists the references in s that scope has no value for, so a
// task can be refused before anything runs. Invalid references are listed
// as written (braces included), since no scope can bind them.
func Unbound(s string, scope Scope) []string {
	var out []string
	seen := map[string]bool{}
	for _, seg := range split(s) {
		if seg.kind != reference {
			continue
		}
		ref, err := canonical(seg.text)
		if err != nil {
			ref = "{{" + seg.text + "}}"
		} else if _, ok := scope[ref]; ok {
			continue
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

func (s Scope) unbound(ref string) *UnboundError {
	e := &UnboundError{Ref: ref}
	type cand struct {
		name string
		d    int
	}
	var cands []cand
	limit := max(2, len(ref)/4)
	for k := range s {
		if name, ok := strings.CutPrefix(k, "thermos.ports["); ok {
			e.Ports = append(e.Ports, strings.TrimSuffix(name, "]"))
		}
		if d := distance(ref, k); d <= limit {
			cands = append(cands, cand{k, d})
		}
	}
	sort.Strings(e.Ports)
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	for i := 0; i < len(cands) && i < 3; i++ {
		e.Similar = append(e.Similar, cands[i].name)
	}
	return e
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
