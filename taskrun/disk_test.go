package taskrun

import (
	"testing"
	"time"

	"github.com/dewarhq/dewar/executor"
)

// TestSharedDiskOnlyForOneTree: the checkpoint's sample and the disk limit
// share a walk when the sandbox the limit measures ($MESOS_SANDBOX/sandbox)
// lies in the run directory ($MESOS_DIRECTORY); when the executor sees its
// sandbox at a container's mount point the two are separate walks, each at
// its own interval, as before they were shared.
func TestSharedDiskOnlyForOneTree(t *testing.T) {
	for _, tc := range []struct {
		name, directory, sandbox string
		shared                   bool
	}{
		{"one path", "/var/lib/mesos/runs/c1", "/var/lib/mesos/runs/c1", true},
		{"no MESOS_DIRECTORY", "", "/var/lib/mesos/runs/c1", true},
		{"container mount", "/var/lib/mesos/runs/c1", "/mnt/mesos/sandbox", false},
		{"a sibling with the run dir's name as prefix", "/var/lib/mesos/runs/c1", "/var/lib/mesos/runs/c10", false},
	} {
		tk := &task{
			opt: Options{DiskCheckInterval: time.Minute, CheckpointSampleInterval: 30 * time.Second},
			env: executor.LaunchEnv{Config: executor.Config{Directory: tc.directory, Sandbox: tc.sandbox}},
		}
		if got := tk.sharedDisk() != nil; got != tc.shared {
			t.Errorf("%s: shared walk %v, want %v", tc.name, got, tc.shared)
		}
	}
}
