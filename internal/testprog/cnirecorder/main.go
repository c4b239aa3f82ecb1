// Command cnirecorder is a CNI plugin for tests: it hands the call on to
// another plugin, passes its answer back unchanged, and appends what the
// runtime gave it (stdin and the CNI_* environment) and what the delegate
// answered to a file. Tests use it to see
// exactly what the fake agent sends a plugin, while the real plugin still
// does the work.
//
// It reads two fields of its network config, which other plugins ignore:
//
//	"recordFile": "/tmp/x/calls.jsonl"  // one JSON object per call is appended
//	"delegate":   "bridge"              // the plugin to run, found in CNI_PATH
//
// The delegate gets the same stdin with "type" set to the delegate's name.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Call is one recorded invocation, a line of the record file.
type Call struct {
	Env   map[string]string `json:"env"`
	Stdin json.RawMessage   `json:"stdin"`
	// Stdout is the delegate's answer (a result or an error), ExitCode its
	// exit status.
	Stdout   string `json:"stdout"`
	ExitCode int    `json:"exitCode"`
}

func main() {
	code, err := run(os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		// The CNI error format, so the runtime reports our reason.
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"cniVersion": "0.2.0", "code": 999, "msg": "recorder: " + err.Error(),
		})
		os.Exit(1)
	}
	os.Exit(code)
}

func run(stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	in, err := io.ReadAll(stdin)
	if err != nil {
		return 0, fmt.Errorf("read stdin: %w", err)
	}
	var conf map[string]any
	if err := json.Unmarshal(in, &conf); err != nil {
		return 0, fmt.Errorf("network config on stdin is not JSON: %w", err)
	}
	if os.Getenv("CNI_COMMAND") == "VERSION" {
		_, err := fmt.Fprint(stdout, `{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}`)
		return 0, err
	}
	file, _ := conf["recordFile"].(string)
	delegate, _ := conf["delegate"].(string)
	if file == "" || delegate == "" {
		return 0, errors.New(`config needs "recordFile" and "delegate"`)
	}
	plugin, err := findInPath(delegate, os.Getenv("CNI_PATH"))
	if err != nil {
		return 0, err
	}
	conf["type"] = delegate
	out, err := json.Marshal(conf)
	if err != nil {
		return 0, err
	}
	var answer bytes.Buffer
	cmd := exec.Command(plugin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(out), io.MultiWriter(stdout, &answer), stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return 0, fmt.Errorf("run delegate %s: %w", plugin, err)
		}
		code = exit.ExitCode() // the delegate already wrote its error
	}
	return code, record(file, Call{Stdin: in, Stdout: answer.String(), ExitCode: code})
}

func record(file string, call Call) error {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CNI_") {
			env[k] = v
		}
	}
	call.Env = env
	line, err := json.Marshal(call)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open record file: %w", err)
	}
	// One write of one line: O_APPEND keeps concurrent calls' lines whole.
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write record file: %w", err)
	}
	return f.Close()
}

func findInPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("delegate plugin %q not found in CNI_PATH %q", name, path)
}
