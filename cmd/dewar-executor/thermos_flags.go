package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// thermosOnly are the flags of the twitter.common app and log modules
// that thermos_executor_main.py runs under, which have no effect in dewar
// (its own flags all take effect, see main.go). They are accepted, so that an operator can swap the executor
// without touching -thermos_executor_flags, and each one given is logged
// once, with why it does nothing.
var thermosOnly = []struct {
	name  string
	bool  bool // store_true: takes no value
	usage string
	why   string
}{
	// twitter/common/log/options.py
	{"log_to_stdout", false, "twitter.common.log: obsolete level of logging to stdout", "dewar logs to stderr with zap; use --log-level"},
	{"log_to_stderr", false, "twitter.common.log: level of logging to stderr", "dewar logs to stderr with zap; use --log-level"},
	{"log_to_disk", false, "twitter.common.log: level of logging to disk", "dewar logs to stderr, which the agent keeps in the sandbox"},
	{"log_dir", false, "twitter.common.log: directory of the log files", "dewar logs to stderr, which the agent keeps in the sandbox"},
	{"log_simple", true, "twitter.common.log: one log file rather than one per level", "dewar writes no log files of its own"},
	{"log_to_scribe", false, "twitter.common.log: level of logging to scribe", "dewar does not log to scribe"},
	{"scribe_category", false, "twitter.common.log: scribe category", "dewar does not log to scribe"},
	{"scribe_buffer", true, "twitter.common.log: buffer scribe messages", "dewar does not log to scribe"},
	{"scribe_host", false, "twitter.common.log: scribe host", "dewar does not log to scribe"},
	{"scribe_port", false, "twitter.common.log: scribe port", "dewar does not log to scribe"},
	// twitter/common/app/application.py
	{"app_daemonize", true, "twitter.common.app: daemonize", "an executor must not daemonize: the agent watches its pid"},
	{"app_daemon_stdout", false, "twitter.common.app: stdout when daemonized", "an executor must not daemonize"},
	{"app_daemon_stderr", false, "twitter.common.app: stderr when daemonized", "an executor must not daemonize"},
	{"app_pidfile", false, "twitter.common.app: pid file when daemonized", "an executor must not daemonize"},
	{"app_debug", true, "twitter.common.app: debug application start", "use --log-level=debug"},
	{"app_profiling", true, "twitter.common.app: run the Python profiler", "dewar is not Python"},
	{"app_profile_output", false, "twitter.common.app: profiler output file", "dewar is not Python"},
	{"app_rc_filename", true, "twitter.common.app: print the rc file name", "dewar reads no rc file"},
	{"app_ignore_rc_file", true, "twitter.common.app: ignore the rc file", "dewar reads no rc file"},
}

// inertFlags are the registered thermosOnly flags.
type inertFlags map[string]string // name → why it has no effect

// thermosOnlyFlags registers thermosOnly on fs. Go's flag package takes
// --name=value and --name value, as optparse does, and a bool flag no value.
func thermosOnlyFlags(fs *flag.FlagSet) inertFlags {
	out := inertFlags{}
	for _, f := range thermosOnly {
		if f.bool {
			fs.Bool(f.name, false, f.usage+" (accepted, no effect in dewar)")
		} else {
			fs.String(f.name, "", f.usage+" (accepted, no effect in dewar)")
		}
		out[f.name] = f.why
	}
	return out
}

// logSet logs each inert flag given on the command line, once.
func (in inertFlags) logSet(fs *flag.FlagSet, log *zap.Logger) {
	fs.Visit(func(f *flag.Flag) {
		if why, ok := in[f.Name]; ok {
			log.Info("flag accepted for Thermos compatibility; it has no effect",
				zap.String("flag", "--"+f.Name), zap.String("value", f.Value.String()), zap.String("why", why))
		}
	})
}

// signalerTimeout reads AURORA_HTTP_SIGNALER_TIMEOUT_SECS, the timeout of
// each lifecycle request (/quitquitquit, /abortabortabort) that Thermos'
// HttpSignaler takes from the executor's environment
// (aurora/common/health_check/http_signaler.py); 0 when unset.
func signalerTimeout(getenv func(string) string) (time.Duration, error) {
	v := getenv("AURORA_HTTP_SIGNALER_TIMEOUT_SECS")
	if v == "" {
		return 0, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 || math.IsInf(secs, 0) || math.IsNaN(secs) {
		return 0, fmt.Errorf("AURORA_HTTP_SIGNALER_TIMEOUT_SECS=%q: want a number of seconds above 0", v)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
