package fakeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// killNetNS SIGKILLs every process in the network namespace pinned at path:
// the rest of "destroying the container" for a CNI container, which Mesos
// does with the container's cgroup. killSession alone misses processes that
// started a session of their own, and dewar-executor starts every task
// process with setsid (sandbox/spawn_linux.go): when the executor dies
// abnormally, they would outlive it and keep its namespace alive.
//
// It repeats until a pass finds nobody, so a child forked while a pass ran
// is caught by the next one. The kernel frees the namespace once the last
// process is gone and the isolator has unpinned it.
func killNetNS(path string) {
	var ns syscall.Stat_t
	if path == "" || syscall.Stat(path, &ns) != nil {
		return
	}
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		killed := 0
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			var st syscall.Stat_t
			if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) != nil || st.Dev != ns.Dev || st.Ino != ns.Ino {
				continue
			}
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		if killed == 0 {
			return
		}
	}
}

// killByEnv SIGKILLs every process whose environment holds exactly the
// variable kv ("NAME=value"), repeating until a pass finds nobody: what is
// left of a host-networking container whose executor died. A process that
// cleared its environment escapes it; only a cgroup would catch that one.
func killByEnv(kv string) {
	if kv == "" || kv[len(kv)-1] == '=' {
		return
	}
	want := []byte(kv)
	for pass := 0; pass < 10; pass++ {
		envs, err := filepath.Glob("/proc/[0-9]*/environ")
		if err != nil {
			return
		}
		killed := 0
		for _, f := range envs {
			pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if err != nil || pid == os.Getpid() {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, v := range bytes.Split(b, []byte{0}) {
				if bytes.Equal(v, want) {
					if syscall.Kill(pid, syscall.SIGKILL) == nil {
						killed++
					}
					break
				}
			}
		}
		if killed == 0 {
			return
		}
	}
}
