package pystachio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var scope = Scope{
	"thermos.ports[http]":   "31001",
	"thermos.ports[health]": "31002",
	"thermos.task_id":       "task-1",
	"thermos.user":          "www",
	"mesos.instance":        "3",
	"mesos.hostname":        "node1",
	"mesos.ip":              "198.18.0.2",
	"mesos.ipv6":            "2001:db8::2",
	"mesos.ips[blue]":       "198.18.0.2",
	"mesos.ips[green-net]":  "198.19.0.2",
}

func TestRender(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"no templates", "no templates"},
		{"serve --port={{thermos.ports[http]}}", "serve --port=31001"},
		{"{{mesos.ip}}:{{thermos.ports[http]}} and {{mesos.ip}}", "198.18.0.2:31001 and 198.18.0.2"},
		{"[{{mesos.ipv6}}]:{{thermos.ports[health]}}", "[2001:db8::2]:31002"},
		{"{{mesos.ips[green-net]}}", "198.19.0.2"},
		{"{{ mesos.instance }}", "3"},
		{"{{.mesos.hostname}}", "node1"},
		{"echo {{&thermos.task_id}}", "echo {{thermos.task_id}}"},
		{"echo {{&thermos.task_id&}}", "echo {{thermos.task_id}}"},
		{"{{&&}}", "{{&}}"},
		{"{{{thermos.user}}}", "{www}"},
		{"{{}}", "{{}}"},
		{"{ {thermos.user}}", "{ {thermos.user}}"},
		{"{{thermos.user", "{{thermos.user"},
		{"{{thermos.user}", "{{thermos.user}"},
		{"awk '{print $1}' {{thermos.user}}}}", "awk '{print $1}' www}}"},
		{"{{a{{thermos.user}}", "{{awww"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Render(tc.in, scope)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Render(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		in       string
		wantRef  string // for *UnboundError
		wantText []string
	}{
		{in: "{{thermos.ports[htp]}}", wantRef: "thermos.ports[htp]", wantText: []string{
			`{{thermos.ports[htp]}}`, `no port named "htp" was allocated`, "allocated: health, http", "did you mean {{thermos.ports[http]}}"}},
		{in: "{{mesos.ips[red]}}", wantRef: "mesos.ips[red]", wantText: []string{"unknown template variable {{mesos.ips[red]}}"}},
		{in: "a {{mesos.hostnam}} b", wantRef: "mesos.hostname", wantText: []string{"did you mean {{mesos.hostname}}"}},
		{in: "{{profile.version}}", wantRef: "profile.version", wantText: []string{"unknown template variable {{profile.version}}"}},
		{in: "{{thermos.ports[http] }} {{nope}}", wantRef: "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Render(tc.in, scope)
			var ue *UnboundError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want *UnboundError", err)
			}
			if tc.wantRef != "mesos.hostname" && ue.Ref != tc.wantRef {
				t.Errorf("Ref = %q, want %q", ue.Ref, tc.wantRef)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestRenderNoPortsAllocated(t *testing.T) {
	_, err := Render("{{thermos.ports[http]}}", Scope{"mesos.instance": "0"})
	if err == nil || !strings.Contains(err.Error(), "it has no ports") {
		t.Errorf("got %v, want it to say the task has no ports", err)
	}
}

func TestRenderSyntaxErrors(t *testing.T) {
	for _, in := range []string{"{{1abc}}", "{{a b}}", "{{a..b}}", "{{a[]}}", "{{a[b c]}}", "{{ }}", "{{&}}", "{{a.}}", "{{-x}}", "{{a[b]c}}"} {
		t.Run(in, func(t *testing.T) {
			_, err := Render(in, scope)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want *SyntaxError", err)
			}
			if !strings.Contains(err.Error(), in) {
				t.Errorf("error %q does not quote the tag %s", err, in)
			}
		})
	}
}

func TestRefsAndUnbound(t *testing.T) {
	s := "{{mesos.ip}} {{ thermos.ports[http] }} {{mesos.ip}} {{&escaped}} {{x.y[z]}} {{bad ref}}"
	if _, err := Refs(s); err == nil {
		t.Error("Refs with an invalid reference: want an error")
	}
	refs, err := Refs("{{mesos.ip}} {{ thermos.ports[http] }} {{mesos.ip}} {{&escaped}} {{x.y[z]}}")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mesos.ip", "thermos.ports[http]", "x.y[z]"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("Refs = %v, want %v", refs, want)
	}
	if got, want := Unbound(s, scope), []string{"x.y[z]", "{{bad ref}}"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Unbound = %v, want %v", got, want)
	}
	if got := Unbound("{{mesos.ip}}", scope); got != nil {
		t.Errorf("Unbound = %v, want none", got)
	}
}

func TestRenderAll(t *testing.T) {
	got, err := RenderAll(scope, "{{mesos.instance}}", "x")
	if err != nil || !reflect.DeepEqual(got, []string{"3", "x"}) {
		t.Errorf("RenderAll = %v, %v", got, err)
	}
	_, err = RenderAll(scope, "ok", "{{nope}}")
	var ue *UnboundError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "template 1") {
		t.Errorf("RenderAll error = %v, want template 1 unbound", err)
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"", "{{mesos.ip}}", "{{&x}}", "{{&x&}}", "{{{a}}}", "{{ thermos.ports[http] }}", "{{a[b/c.d-e]}}",
		"{{}}", "{{&}}", "}}{{", "x{{thermos.ports[htp]}}y", "{{é}}", "{{a[é]}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Render(s, scope)
		unbound := Unbound(s, scope)
		if err == nil && len(unbound) > 0 {
			t.Fatalf("Render succeeded but Unbound lists %v", unbound)
		}
		if err != nil && len(unbound) == 0 {
			t.Fatalf("Render failed (%v) but Unbound lists nothing", err)
		}
		if err == nil && !strings.Contains(s, "{{") && out != s {
			t.Fatalf("a string without tags changed: %q → %q", s, out)
		}
	})
}
