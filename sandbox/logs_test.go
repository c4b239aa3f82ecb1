package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogs: every run has its own stdout and stderr under
// .logs/<process>/<run>/, as the destination says.
func TestLogs(t *testing.T) {
	t.Parallel()
	// Fails its first run, succeeds its second: two runs, two directories.
	cmd := `n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; echo "out $n"; echo "err $n" >&2; [ $n -ge 1 ]`
	tests := []struct {
		dest  string
		files bool
	}{
		{LogFile, true},
		{LogBoth, true},
		{LogConsole, false},
		{LogNone, false},
	}
	for _, tc := range tests {
		t.Run(tc.dest, func(t *testing.T) {
			t.Parallel()
			tr := startTask(t, Task{Name: "logs", MaxFailures: 1,
				Processes: []Process{{Name: "twice", Cmdline: cmd, MaxFailures: 2}}},
				func(o *Options) { o.Log.Destination = tc.dest })
			if res := tr.wait(30 * time.Second); res.State != StateSuccess {
				t.Fatalf("result %+v", res)
			}
			for run := range 2 {
				for _, stream := range []string{"stdout", "stderr"} {
					b, err := os.ReadFile(tr.logFile("twice", run, stream))
					if !tc.files {
						if err == nil {
							t.Errorf("%s: log file %s exists", tc.dest, tr.logFile("twice", run, stream))
						}
						continue
					}
					want := map[string]string{"stdout": "out ", "stderr": "err "}[stream] + strconv.Itoa(run) + "\n"
					if err != nil || string(b) != want {
						t.Errorf("%s run %d: %q, %v; want %q", stream, run, b, err, want)
					}
				}
			}
		})
	}
}

// TestLogRotation: in rotate mode a stream is cut at the size limit and
// only the configured number of backups is kept.
func TestLogRotation(t *testing.T) {
	t.Parallel()
	// LogBoth is left out only to keep 10 KiB off the test's console.
	for _, dest := range []string{LogFile} {
		t.Run(dest, func(t *testing.T) {
			t.Parallel()
			// 10 KiB in 4 KiB files: stdout.2 (oldest, full), stdout.1
			// (full), stdout (the last 2 KiB); one more rotation was dropped.
			tr := startTask(t, Task{Name: "rot", MaxFailures: 1, Processes: []Process{
				newProc("big", `for c in a b c d e; do head -c 2048 /dev/zero | tr '\0' $c; done`)}},
				func(o *Options) {
					o.Log = LogConfig{Destination: dest, Mode: LogRotate, RotateSizeBytes: 4096, RotateBackups: 2}
				})
			if res := tr.wait(30 * time.Second); res.State != StateSuccess {
				t.Fatalf("result %+v", res)
			}
			base := tr.logFile("big", 0, "stdout")
			want := map[string]string{
				base:        strings.Repeat("e", 2048),
				base + ".1": strings.Repeat("c", 2048) + strings.Repeat("d", 2048),
				base + ".2": strings.Repeat("a", 2048) + strings.Repeat("b", 2048),
			}
			for path, content := range want {
				b, err := os.ReadFile(path)
				if err != nil || string(b) != content {
					t.Errorf("%s: %d bytes, %v; want %d bytes", filepath.Base(path), len(b), err, len(content))
				}
			}
			if _, err := os.Stat(base + ".3"); err == nil {
				t.Errorf("%s.3 exists: only 2 backups may be kept", base)
			}
		})
	}
}

// TestRotatingWriterSplitsWrites: one write larger than the limit spans
// files, none larger than the limit.
func TestRotatingWriterSplitsWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stdout")
	create := func(p string) (*os.File, error) { return os.Create(p) }
	w, err := newRotatingWriter(path, 10, 3, create)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("0123456789abcdefghijKLM")); n != 23 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for suffix, want := range map[string]string{"": "KLM", ".1": "abcdefghij", ".2": "0123456789"} {
		if b, err := os.ReadFile(path + suffix); err != nil || string(b) != want {
			t.Errorf("stdout%s = %q, %v; want %q", suffix, b, err, want)
		}
	}
}

// TestPerProcessLogger: a process' own logger (Thermos' Process.logger)
// overrides the Runner's, and a bad one is refused before anything runs.
func TestPerProcessLogger(t *testing.T) {
	t.Parallel()
	quiet := newProc("quiet", `echo hidden`)
	quiet.Log = &LogConfig{Destination: LogNone}
	loud := newProc("loud", `echo shown`)
	tr := startTask(t, Task{Name: "loggers", MaxFailures: 1, Processes: []Process{quiet, loud}})
	if res := tr.wait(30 * time.Second); res.State != StateSuccess {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(tr.logFile("quiet", 0, "stdout")); err == nil {
		t.Errorf("process with destination none has a log file")
	}
	if b, err := os.ReadFile(tr.logFile("loud", 0, "stdout")); err != nil || string(b) != "shown\n" {
		t.Errorf("loud stdout = %q, %v", b, err)
	}

	bad := newProc("bad", `echo never`)
	bad.Log = &LogConfig{Destination: "syslog"}
	_, err := Start(t.Context(), Task{Name: "bad-logger", MaxFailures: 1, Processes: []Process{bad}},
		Options{Sandbox: t.TempDir(), Env: os.Environ()})
	if err == nil || !strings.Contains(err.Error(), `process "bad" logger`) {
		t.Fatalf("Start with a bad process logger = %v, want an error naming the process", err)
	}
}
