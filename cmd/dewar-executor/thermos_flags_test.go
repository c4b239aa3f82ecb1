package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestThermosOnlyFlags: each flag with no effect parses in optparse's
// forms (--flag=value, --flag value; store_true flags without a value) and
// is logged once, by name.
func TestThermosOnlyFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	inert := thermosOnlyFlags(fs)
	args := []string{"--log_dir=.", "--scribe_port", "1463",
		"--log_simple", "--log_to_stderr", "google:INFO", "--app_daemonize"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("left over arguments %q", fs.Args())
	}
	core, logs := observer.New(zap.InfoLevel)
	inert.logSet(fs, zap.New(core))
	for _, name := range []string{"--log_dir", "--scribe_port", "--log_simple", "--log_to_stderr", "--app_daemonize"} {
		if n := logs.FilterField(zap.String("flag", name)).Len(); n != 1 {
			t.Errorf("%s logged %d times, want once", name, n)
		}
	}
	if n := logs.Len(); n != 5 {
		t.Errorf("%d log entries, want 5", n)
	}
}

func TestSignalerTimeout(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"soon", 0, true},
	} {
		got, err := signalerTimeout(func(string) string { return tc.v })
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("AURORA_HTTP_SIGNALER_TIMEOUT_SECS=%q: %v, %v; want %v, error %t", tc.v, got, err, tc.want, tc.bad)
		}
	}
}
