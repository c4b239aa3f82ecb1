package usage

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultCgroupMount is where the cgroup hierarchies are mounted.
const DefaultCgroupMount = "/sys/fs/cgroup"

// cgroupPreference orders the hierarchies that may hold the executor's
// container: the unified one (cgroup v2), then the v1 controllers Mesos'
// linux launcher and isolators put every container in (freezer first: the
// launcher's, src/slave/containerizer/mesos/linux_launcher.cpp).
var cgroupPreference = []string{"", "freezer", "pids", "memory", "cpuacct", "cpu,cpuacct", "cpu", "name=systemd"}

// containerCgroup finds the cgroup directory of the executor's container
// from its /proc/self/cgroup: the first hierarchy, in cgroupPreference
// order, in which the executor is not in the root cgroup and whose
// directory is mounted under mount. Processes inherit their parent's
// cgroups, so every process the executor starts is in it or below it.
// It returns "" when there is none (the executor runs in the root
// cgroups, as on a bare host): then only a pass over all of /proc finds a
// session's members.
func containerCgroup(selfCgroup []byte, mount string) string {
	paths := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(selfCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path (cgroups(7)).
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[2] == "/" || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		paths[parts[1]] = parts[2]
		for _, c := range strings.Split(parts[1], ",") {
			if _, ok := paths[c]; !ok {
				paths[c] = parts[2]
			}
		}
	}
	for _, h := range cgroupPreference {
		p, ok := paths[h]
		if !ok {
			continue
		}
		sub := strings.TrimPrefix(h, "name=")
		if h == "" {
			if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
				continue // no unified hierarchy mounted there
			}
		}
		dir := filepath.Join(mount, sub, filepath.Clean(p))
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			return dir
		}
	}
	return ""
}

// cgroupPIDs lists the processes of dir and of every cgroup below it.
func cgroupPIDs(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && os.IsNotExist(err) {
				return nil // a child cgroup removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			if path != dir && os.IsNotExist(err) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}
