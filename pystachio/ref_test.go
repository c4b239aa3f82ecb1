package pystachio

import (
	"regexp"
	"testing"
)

// refGrammar is pystachio's Ref grammar as a regular expression: ".name"
// (a name not starting with a digit) and "[index]" (word characters, '-',
// '.', '/'), one or more. validRef must say exactly what it says.
var refGrammar = regexp.MustCompile(`^(?:\.[\p{L}_][\p{L}\p{N}_]*|\[[\p{L}\p{N}_\-./]+\])+$`)

var refSeeds = []string{
	"", ".", "[", "[]", ".a", "._", ".1", ".a1", ".a.b", ".thermos.ports[http]",
	".mesos.ips[green-net]", ".a[b.c/d-e_f]", ".a[", ".a]", ".a[b", ".a[b]]", ".a[[b]]",
	".é.ñ[ü]", ".a\xff", "[\xff]", ".a b", "a", "[x].y", ".a..b", ".a[b][c]", ".a[ b]",
	".٣", ".a٣", "[٣]", ".a-b", "[a]b",
}

func TestValidRefIsTheGrammar(t *testing.T) {
	for _, s := range refSeeds {
		if got, want := validRef(s), refGrammar.MatchString(s); got != want {
			t.Errorf("validRef(%q) = %v, the grammar says %v", s, got, want)
		}
	}
}

func FuzzValidRef(f *testing.F) {
	for _, s := range refSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validRef(s), refGrammar.MatchString(s); got != want {
			t.Fatalf("validRef(%q) = %v, the grammar says %v", s, got, want)
		}
	})
}
