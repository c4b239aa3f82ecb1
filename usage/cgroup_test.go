package usage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/usage"
)

// fakeCgroups writes a cgroup mount with the given cgroup.procs files
// (directory below the mount → PIDs) and returns the mount.
func fakeCgroups(t *testing.T, procs map[string][]int) string {
	t.Helper()
	mount := t.TempDir()
	for dir, pids := range procs {
		d := filepath.Join(mount, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		var b []byte
		for _, p := range pids {
			b = fmt.Appendf(b, "%d\n", p)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return mount
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScope: the sampler looks in the executor's container cgroup, found
// as Mesos places containers (the unified hierarchy first, then freezer,
// the linux launcher's), and at every process only in the root cgroups.
func TestScope(t *testing.T) {
	for _, tt := range []struct {
		name, selfCgroup string
		dirs             []string // with a cgroup.procs below the mount
		unified          bool     // the mount is a cgroup2 root
		want             string   // below the mount; "" for none
	}{
		{"root cgroups", "6:freezer:/\n4:memory:/\n0::/\n", []string{"freezer"}, false, ""},
		{"v1 freezer", "6:freezer:/mesos/c1\n4:memory:/mesos/c1\n0::/\n", []string{"freezer/mesos/c1", "memory/mesos/c1"}, false, "freezer/mesos/c1"},
		{"v1 co-mounted cpu,cpuacct", "2:cpu,cpuacct:/mesos/c2\n", []string{"cpu,cpuacct/mesos/c2"}, false, "cpu,cpuacct/mesos/c2"},
		{"v2 unified", "0::/mesos/c3\n", []string{"mesos/c3"}, true, "mesos/c3"},
		{"v2 path but no unified mount", "0::/mesos/c3\n", []string{"mesos/c3"}, false, ""},
		{"not mounted", "6:freezer:/mesos/c4\n", nil, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			procs := map[string][]int{}
			for _, d := range tt.dirs {
				procs[d] = nil
			}
			mount := fakeCgroups(t, procs)
			if tt.unified {
				writeFile(t, filepath.Join(mount, "cgroup.controllers"), "cpu memory pids\n")
			}
			self := writeFile(t, filepath.Join(t.TempDir(), "cgroup"), tt.selfCgroup)
			s, err := usage.NewSamplerWithCgroups("/proc", self, mount)
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tt.want != "" {
				want = filepath.Join(mount, tt.want)
			}
			if got := s.Scope(); got != want {
				t.Errorf("scope %q, want %q", got, want)
			}
		})
	}
}

// TestSessionsLookOnlyInTheContainer: the members of a session are found in
// the container's cgroup and the cgroups below it, and a session whose
// processes are elsewhere is not seen at all: the pass does not read the
// whole of /proc.
func TestSessionsLookOnlyInTheContainer(t *testing.T) {
	inside, _ := startTree(t)
	outside, _ := startTree(t)
	all := newSampler(t)
	var child int
	testenv.WaitUntil(t, 10*time.Second, "the shell's child", func() bool {
		trees, err := all.Sessions(context.Background(), map[int]bool{inside.Process.Pid: true})
		if err != nil || trees[inside.Process.Pid].Processes != 2 {
			return false
		}
		for _, pid := range usage.PIDsInSession(inside.Process.Pid) {
			if pid != inside.Process.Pid {
				child = pid
			}
		}
		return child != 0
	})
	mount := fakeCgroups(t, map[string][]int{
		"freezer/mesos/c1":      {inside.Process.Pid},
		"freezer/mesos/c1/nest": {child},
	})
	self := writeFile(t, filepath.Join(t.TempDir(), "cgroup"), "6:freezer:/mesos/c1\n")
	s, err := usage.NewSamplerWithCgroups("/proc", self, mount)
	if err != nil {
		t.Fatal(err)
	}
	trees, err := s.Sessions(context.Background(), map[int]bool{inside.Process.Pid: true, outside.Process.Pid: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := trees[inside.Process.Pid]; got.Processes != 2 || got.RSSBytes <= 0 {
		t.Errorf("the container's session: %+v, want its 2 processes (one in a nested cgroup)", got)
	}
	if got, ok := trees[outside.Process.Pid]; ok {
		t.Errorf("a session outside the container's cgroup was read: %+v", got)
	}
}
