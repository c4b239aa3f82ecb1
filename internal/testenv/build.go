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
	built    = map[string]string{} // package path → binary
	buildDir string
)

// BinDirEnv names a directory of prebuilt binaries (`make test` sets it to
// bin/, which `make build` has just filled with the commands and the test
// programs), so that every test package does not build its own copies.
const BinDirEnv = "DEWAR_BIN_DIR"

// TestProgramPrefix starts the binary name of every test program: the
// program internal/testprog/NAME is built as dewar-test-NAME, here and by
// `make build`.
const TestProgramPrefix = "dewar-test-"

// Binary returns the path of the dewar command ./cmd/NAME, from
// $DEWAR_BIN_DIR or built once per test binary. Tests use the real
// binaries.
func Binary(t testing.TB, name string) string {
	t.Helper()
	return binary(t, "./cmd/"+name, name)
}

// Program returns the path of the test program ./internal/testprog/NAME
// (a web service, a CNI plugin that records its calls, ...), built as
// dewar-test-NAME the same way as Binary: from $DEWAR_BIN_DIR or once per
// test binary.
func Program(t testing.TB, name string) string {
	t.Helper()
	return binary(t, "./internal/testprog/"+name, TestProgramPrefix+name)
}

func binary(t testing.TB, pkg, name string) string {
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
	if p, ok := built[pkg]; ok {
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
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot(t)
	if name == "dewar-executor" {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build` builds it
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}
