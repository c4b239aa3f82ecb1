package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Fixture reads testdata/<rel> of the repository (e.g. "aurora/web_service.json")
// and returns it; with edit, edit changes the decoded JSON document first and
// the document comes back re-encoded.
func Fixture(t testing.TB, rel string, edit func(doc map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("testdata/%s: %v", rel, err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
