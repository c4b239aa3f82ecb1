package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvalidTasks: Start refuses bad tasks and options with a message
// naming the problem, and nothing runs.
func TestInvalidTasks(t *testing.T) {
	t.Parallel()
	touch := func(name string) Process { return newProc(name, "touch ../ran-"+name) }
	final := func(p Process) Process { p.Final = true; return p }
	daemon := func(p Process) Process { p.Daemon = true; return p }
	ephemeral := func(p Process) Process { p.Ephemeral = true; return p }
	tests := []struct {
		name string
		task Task
		log  LogConfig
		want string
	}{
		{"no processes", Task{}, LogConfig{}, "task has no processes"},
		{"duplicate name", Task{Processes: []Process{touch("a"), touch("a")}}, LogConfig{}, `process name "a" is used twice`},
		{"bad name", Task{Processes: []Process{touch("../x")}}, LogConfig{}, `invalid process name "../x"`},
		{"empty cmdline", Task{Processes: []Process{{Name: "a", Cmdline: " "}}}, LogConfig{}, `process "a": cmdline is empty`},
		{"negative max_failures", Task{Processes: []Process{{Name: "a", Cmdline: "true", MaxFailures: -1}}}, LogConfig{}, "must not be negative"},
		{"unknown name in order", Task{Processes: []Process{touch("a")}, Order: [][]string{{"a", "b"}}}, LogConfig{}, `unknown process "b"`},
		{"cycle", Task{Processes: []Process{touch("a"), touch("b"), touch("c")}, Order: [][]string{{"a", "b", "c"}, {"c", "a"}}},
			LogConfig{}, "cycle b -> c -> a -> b"},
		{"self loop", Task{Processes: []Process{touch("a")}, Order: [][]string{{"a", "a"}}}, LogConfig{}, "cycle a -> a"},
		{"final after regular", Task{Processes: []Process{touch("a"), final(touch("f"))}, Order: [][]string{{"a", "f"}}},
			LogConfig{}, `final process "f" may not depend on regular process "a"`},
		{"regular after final", Task{Processes: []Process{touch("a"), final(touch("f"))}, Order: [][]string{{"f", "a"}}},
			LogConfig{}, `regular process "a" may not depend on final process "f"`},
		{"after daemon", Task{Processes: []Process{daemon(touch("d")), touch("a")}, Order: [][]string{{"d", "a"}}},
			LogConfig{}, `may not depend on daemon process "d"`},
		{"after ephemeral", Task{Processes: []Process{ephemeral(touch("e")), touch("a")}, Order: [][]string{{"e", "a"}}},
			LogConfig{}, `non-ephemeral process "a" may not depend on ephemeral process "e"`},
		{"bad log destination", Task{Processes: []Process{touch("a")}}, LogConfig{Destination: "syslog"}, `log destination "syslog" is invalid`},
		{"rotate without size", Task{Processes: []Process{touch("a")}}, LogConfig{Mode: LogRotate, RotateBackups: 1}, "rotating logs need a size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			sb := filepath.Join(root, "sandbox")
			_, err := Start(context.Background(), tc.task, Options{Sandbox: sb, Log: tc.log,
				Env: []string{"PATH=" + os.Getenv("PATH")}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start error %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(sb); err == nil {
				t.Error("a refused Start created the sandbox")
			}
		})
	}
	if _, err := Start(context.Background(), Task{Processes: []Process{newProc("a", "true")}}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "no sandbox directory") {
		t.Errorf("Start without a sandbox: %v", err)
	}
}
