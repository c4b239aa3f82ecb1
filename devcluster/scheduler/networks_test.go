package scheduler

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func netInfo(name string, addrs ...string) mesos.NetworkInfo {
	ni := mesos.NetworkInfo{Name: ptr(name)}
	for _, a := range addrs {
		proto := mesos.IPv4
		if strings.Contains(a, ":") {
			proto = mesos.IPv6
		}
		ni.IPAddresses = append(ni.IPAddresses, mesos.NetworkInfo_IPAddress{Protocol: proto.Enum(), IPAddress: ptr(a)})
	}
	return ni
}

// statusWith is a forwarded update as an agent shapes it: the executor's
// NetworkInfos, then the agent's appended (ContainerStatus::MergeFrom).
func statusWith(t *testing.T, agent, exec []mesos.NetworkInfo) mesos.TaskStatus {
	t.Helper()
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum()}
	if agent != nil || exec != nil {
		st.ContainerStatus = &mesos.ContainerStatus{NetworkInfos: append(append([]mesos.NetworkInfo{}, exec...), agent...)}
	}
	return st
}

// withLabel puts the executor's view into the optional label instead.
func withLabel(t *testing.T, agent, exec []mesos.NetworkInfo) mesos.TaskStatus {
	t.Helper()
	st := statusWith(t, agent, nil)
	b, err := json.Marshal(exec)
	if err != nil {
		t.Fatal(err)
	}
	st.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: "other", Value: ptr("x")}, {Key: ExecutorNetworksLabel, Value: ptr(string(b))}}}
	return st
}

func TestViewsOf(t *testing.T) {
	blue := netInfo("blue", "198.18.0.2")
	green := netInfo("green", "2001:db8::2", "198.19.0.2")
	tests := []struct {
		name      string
		st        mesos.TaskStatus
		want      Views
		disagrees string
	}{
		{"both agree", statusWith(t, []mesos.NetworkInfo{blue, green}, []mesos.NetworkInfo{blue, green}), Views{
			Agent:    []Network{{"blue", []string{"198.18.0.2"}}, {"green", []string{"198.19.0.2", "2001:db8::2"}}},
			Executor: []Network{{"blue", []string{"198.18.0.2"}}, {"green", []string{"198.19.0.2", "2001:db8::2"}}},
		}, ""},
		{"executor misses an address", statusWith(t, []mesos.NetworkInfo{blue, green}, []mesos.NetworkInfo{blue, netInfo("green", "2001:db8::2")}), Views{
			Agent:    []Network{{"blue", []string{"198.18.0.2"}}, {"green", []string{"198.19.0.2", "2001:db8::2"}}},
			Executor: []Network{{"blue", []string{"198.18.0.2"}}, {"green", []string{"2001:db8::2"}}},
		}, "green: agent [198.19.0.2 2001:db8::2] executor [2001:db8::2]"},
		{"executor's view in the label", withLabel(t, []mesos.NetworkInfo{blue}, []mesos.NetworkInfo{netInfo("blue", "198.18.0.9")}), Views{
			Agent:    []Network{{"blue", []string{"198.18.0.2"}}},
			Executor: []Network{{"blue", []string{"198.18.0.9"}}},
		}, "blue: agent [198.18.0.2] executor [198.18.0.9]"},
		{"executor reported one network of two", statusWith(t, []mesos.NetworkInfo{blue, green}, []mesos.NetworkInfo{netInfo("blue", "198.18.0.2")}), Views{
			Agent:    []Network{{"blue", []string{"198.18.0.2"}}, {"green", []string{"198.19.0.2", "2001:db8::2"}}},
			Executor: []Network{{"blue", []string{"198.18.0.2"}}},
		}, "green: agent [198.19.0.2 2001:db8::2] executor []"},
		{"a real agent's IPv6 prefix length is not a disagreement", statusWith(t,
			[]mesos.NetworkInfo{netInfo("green", "2001:db8::2/64", "198.19.0.2")}, []mesos.NetworkInfo{netInfo("green", "2001:db8::2", "198.19.0.2")}), Views{
			Agent:    []Network{{"green", []string{"198.19.0.2", "2001:db8::2"}}},
			Executor: []Network{{"green", []string{"198.19.0.2", "2001:db8::2"}}},
		}, ""},
		{"only the agent's view", statusWith(t, []mesos.NetworkInfo{blue}, nil), Views{
			Agent: []Network{{"blue", []string{"198.18.0.2"}}},
		}, ""},
		{"no addresses at all", statusWith(t, nil, nil), Views{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ViewsOf(tt.st)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ViewsOf() = %+v, want %+v", got, tt.want)
			}
			if d := got.Disagreement(); d != tt.disagrees {
				t.Fatalf("Disagreement() = %q, want %q", d, tt.disagrees)
			}
		})
	}
}

func TestViewsOfBadLabel(t *testing.T) {
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, Labels: &mesos.Labels{Labels: []mesos.Label{{Key: ExecutorNetworksLabel, Value: ptr("{")}}}}
	if _, err := ViewsOf(st); err == nil || !strings.Contains(err.Error(), ExecutorNetworksLabel) {
		t.Fatalf("ViewsOf(bad label) = %v, want an error naming the label", err)
	}
}
