package taskrun

import (
	"reflect"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestPortMappingsAreTCPByNetwork(t *testing.T) {
	udp, tcp := "udp", "TCP"
	got := portMappings([]mesos.NetworkInfo{
		{Name: ptr("blue"), PortMappings: []mesos.NetworkInfo_PortMapping{
			{HostPort: 31001, ContainerPort: 8080},
			{HostPort: 31002, ContainerPort: 9090, Protocol: &tcp},
			{HostPort: 31003, ContainerPort: 53, Protocol: &udp},
		}},
		{Name: ptr("red")},
	})
	want := map[string]map[int]int{"blue": {31001: 8080, 31002: 9090}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("portMappings = %v, want %v", got, want)
	}
}
