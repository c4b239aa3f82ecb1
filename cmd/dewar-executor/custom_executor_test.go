package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/testenv"
)

// TestREADMECustomExecutorConfig holds the README's -custom_executor_config
// example to what Aurora 0.22's scheduler loads
// (ExecutorSettingsLoader.read and ExecutorModule): a JSON list of entries
// with exactly the fields executor, volume_mounts and task_prefix
// (Jackson, snake_case), task_prefix set, each executor an ExecutorInfo in
// protobuf field names with name, command and resources, names unique and
// never AuroraExecutor (the scheduler registers that one itself; a second is
// a duplicate key in its ImmutableMap). The entry's container carries
// network_infos, the point of the example.
func TestREADMECustomExecutorConfig(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], `"task_prefix"`) {
			block = m[1]
		}
	}
	if block == "" {
		t.Fatal("README has no ```json block with a custom executor config (task_prefix)")
	}
	var entries []struct {
		Executor     json.RawMessage   `json:"executor"`
		VolumeMounts []json.RawMessage `json:"volume_mounts"`
		TaskPrefix   string            `json:"task_prefix"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(block)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		t.Fatalf("the README's custom executor config is not Aurora's schema: %v", err)
	}
	if len(entries) == 0 {
		t.Fatal("the README's custom executor config has no entry")
	}
	names := map[string]bool{aurora.ExecutorName: true}
	for i, e := range entries {
		var info mesos.ExecutorInfo
		dec := json.NewDecoder(bytes.NewReader(e.Executor))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&info); err != nil {
			t.Fatalf("entry %d: executor is not an ExecutorInfo: %v", i, err)
		}
		if e.TaskPrefix == "" {
			t.Errorf("entry %d: no task_prefix (required by the loader)", i)
		}
		name := info.GetName()
		if name == "" || names[name] {
			t.Errorf("entry %d: executor name %q is empty or already registered (AuroraExecutor is the scheduler's own)", i, name)
		}
		names[name] = true
		if info.GetCommand().GetValue() == "" {
			t.Errorf("entry %d: no command value", i)
		}
		got := map[string]bool{}
		for _, r := range info.Resources {
			if r.GetType() != mesos.SCALAR || r.GetScalar() == nil {
				t.Errorf("entry %d: resource %s is not a SCALAR with a value", i, r.Name)
			}
			got[r.Name] = true
		}
		if !got["cpus"] || !got["mem"] {
			t.Errorf("entry %d: resources %v, want cpus and mem", i, info.Resources)
		}
		c := info.GetContainer()
		if c.GetType() != mesos.ContainerInfo_MESOS || len(c.GetNetworkInfos()) == 0 || c.NetworkInfos[0].GetName() == "" {
			t.Errorf("entry %d: container %v, want a MESOS container with named network_infos", i, c)
		}
	}
}

// TestParseNetworkList: --default-networks names the agent's default
// networks in order; an empty or repeated name is an error, not a guess.
func TestParseNetworkList(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"blue", []string{"blue"}, ""},
		{"blue, green", []string{"blue", "green"}, ""},
		{"blue,,green", nil, "empty network name"},
		{"blue,blue", nil, `"blue" named twice`},
	} {
		got, err := parseNetworkList(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one saying %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
