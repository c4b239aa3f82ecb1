package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// BinDirEnv names a directory of prebuilt binaries (`make test` sets it to
// bin/, which `make build` has just filled), so that every test package
// does not build its own copies.
const BinDirEnv = "DEWAR_BIN_DIR"

func buildBinary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s but %s is missing: run `make build`", BinDirEnv, dir, p)
		}
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "dewar-bin-")
		if err != nil {
			t.Fatalf("temp dir for binaries: %v", err)
		}
		buildDir = d
		// Binaries are shared by all tests of this test binary; the dir is
		// removed by the OS temp cleaner, not per test.
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = RepoRoot(t)
	if name == "dewar-executor" {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build` builds it
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}
