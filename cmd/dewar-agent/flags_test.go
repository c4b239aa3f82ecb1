package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestFlagsAsREADME: the README's dewar-agent flag table lists exactly the
// flags the binary has, and the defaults that mirror Mesos are Mesos'
// (DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL, EXECUTOR_REREGISTRATION_TIMEOUT in
// src/slave/constants.hpp).
func TestFlagsAsREADME(t *testing.T) {
	out, _ := exec.Command(testenv.Binary(t, "dewar-agent"), "-h").CombinedOutput()
	var have []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(string(out), -1) {
		have = append(have, m[1])
	}
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)[strings.Index(string(readme), "## The fake agent"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `--([a-z-]+)`").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	documented = append(documented, "subscription-backoff-max") // the old name, in its row
	slices.Sort(have)
	slices.Sort(documented)
	if !slices.Equal(have, documented) {
		t.Errorf("flags %v, README documents %v", have, documented)
	}
	for _, want := range []string{
		`-heartbeat-interval duration\n\s+.*\(default 30m0s\)`,
		`-executor-reregistration-timeout duration\n\s+.*\(default 2s\)`,
		`-http-executor-domain-sockets\n\s+.*\(default true\)`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("-h output does not match %q:\n%s", want, out)
		}
	}
}
