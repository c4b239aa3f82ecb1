package cnie2e_test

import (
	"bufio"
	"errors"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
)

// commandTask is a Mesos command task on the given CNI networks; the agent
// runs it under dewar-executor with the container moved to the executor.
func commandTask(name, script string, nets []mesos.NetworkInfo) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name:      name,
		Command:   &mesos.CommandInfo{Value: &script},
		Container: &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum(), NetworkInfos: nets},
	}
}

func networkInfo(name string, labels map[string]string) mesos.NetworkInfo {
	ni := mesos.NetworkInfo{Name: &name}
	if len(labels) > 0 {
		ni.Labels = &mesos.Labels{}
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			v := labels[k]
			ni.Labels.Labels = append(ni.Labels.Labels, mesos.Label{Key: k, Value: &v})
		}
	}
	return ni
}

// agentView decodes the CNI results /state lists for the executor.
func agentView(t *testing.T, ex fakeagent.ExecutorState) []mesos.NetworkInfo {
	t.Helper()
	var out []mesos.NetworkInfo
	for _, raw := range ex.Networks {
		var ni mesos.NetworkInfo
		if err := ni.UnmarshalJSON(raw); err != nil {
			t.Fatalf("/state network_infos entry %s: %v", raw, err)
		}
		out = append(out, ni)
	}
	return out
}

func addrsOf(ni mesos.NetworkInfo) []string {
	var out []string
	for _, ip := range ni.IPAddresses {
		out = append(out, ip.GetIPAddress())
	}
	return out
}

// labelsOf lists labels as sorted key=value strings.
func labelsOf(ni mesos.NetworkInfo) []string {
	var out []string
	for _, l := range ni.GetLabels().GetLabels() {
		out = append(out, l.GetKey()+"="+l.GetValue())
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// describe renders network_infos as "net=[ip ip] net=[ip]" for messages and
// comparisons (addresses sorted).
func describe(nis []mesos.NetworkInfo) string {
	var parts []string
	for _, ni := range nis {
		parts = append(parts, ni.GetName()+"=["+strings.Join(sorted(addrsOf(ni)), " ")+"]")
	}
	return strings.Join(parts, " ")
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFile polls path until it exists and contains want; it returns the
// content (the caller reports a mismatch).
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(launchTimeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), want) {
			return string(b)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readEnv waits for the task's `env` dump (written atomically) and parses
// it.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	waitFile(t, path, "")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the task's environment dump: %v", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}
