package scheduler

import (
	"reflect"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"

	"github.com/dewarhq/dewar/aurora"
)

func testOffer(cpus, mem float64, ports ...[2]uint64) mesos.Offer {
	rb := resources.BuildRanges()
	for _, p := range ports {
		rb = rb.Span(p[0], p[1])
	}
	return mesos.Offer{
		ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "agent-1"}, Hostname: "node-1",
		FrameworkID: mesos.FrameworkID{Value: "fw-1"},
		Resources: []mesos.Resource{
			resources.NewCPUs(cpus).Resource, resources.NewMemory(mem).Resource,
			resources.Build().Name(resources.NamePorts).Ranges(rb.Ranges).Resource,
		},
	}
}

func TestBuildTaskIsWhatAuroraSends(t *testing.T) {
	job, jobJSON := loadJob(t, "web_cni.json")
	s := ExecutorSettings{Command: "/opt/dewar/dewar-executor", Args: []string{"--announcer-ensemble=10.0.0.1:2181"}, CPUs: 0.25, MemMB: 128}
	offer := testOffer(4, 4096, [2]uint64{31000, 31000}, [2]uint64{31005, 31010})
	ti, used, err := s.BuildTask(Launch{Job: job, JobJSON: jobJSON, Instance: 1, FrameworkID: "fw-1"}, offer, offer.Resources)
	if err != nil {
		t.Fatal(err)
	}

	if !strings.HasPrefix(ti.TaskID.Value, "root-devel-hello-1-") {
		t.Errorf("task id %q, want root-devel-hello-1-<uuid>", ti.TaskID.Value)
	}
	if ti.AgentID.Value != "agent-1" || ti.Name != "root/devel/hello" {
		t.Errorf("task agent %q name %q", ti.AgentID.Value, ti.Name)
	}

	at, err := aurora.DecodeAssignedTask(ti.Data)
	if err != nil {
		t.Fatalf("TaskInfo.data is not an AssignedTask: %v", err)
	}
	if at.TaskID != ti.TaskID.Value || at.InstanceID != 1 || at.SlaveID != "agent-1" || at.SlaveHost != "node-1" {
		t.Errorf("AssignedTask ids: task %q instance %d slave %q host %q", at.TaskID, at.InstanceID, at.SlaveID, at.SlaveHost)
	}
	if k := at.Task.Key(); k != (aurora.JobKey{Role: "root", Environment: "devel", Name: "hello"}) {
		t.Errorf("job key %+v", k)
	}
	if at.Task.ExecutorConfig == nil || at.Task.ExecutorConfig.Data != string(jobJSON) {
		t.Errorf("executorConfig.data is not the submitted job JSON")
	}
	if !at.Task.IsService {
		t.Error("isService not set for a service job")
	}
	// Lowest free ports, in name order: health, http.
	wantPorts := map[string]int32{"health": 31000, "http": 31005}
	if !reflect.DeepEqual(at.AssignedPorts, wantPorts) {
		t.Errorf("assigned ports %v, want %v", at.AssignedPorts, wantPorts)
	}

	ports, _ := resources.Ports(ti.Resources...)
	if ports.Size() != 2 || ports.Search(31000) < 0 || ports.Search(31005) < 0 {
		t.Errorf("task port resources %v, want 31000 and 31005", ports)
	}
	cpus, _ := resources.CPUs(used...)
	mem, _ := resources.Memory(used...)
	if cpus < 0.349 || cpus > 0.351 || mem != 32+128 {
		t.Errorf("task+executor use cpus %v mem %v, want 0.35 (0.1 + 0.25 overhead) and 160MB", cpus, mem)
	}

	ex := ti.Executor
	if ex == nil {
		t.Fatal("no ExecutorInfo")
	}
	if ex.ExecutorID.Value != "thermos-"+ti.TaskID.Value || ex.GetName() != "aurora.task" || ex.GetSource() != "root.devel.hello.1" {
		t.Errorf("executor id %q name %q source %q", ex.ExecutorID.Value, ex.GetName(), ex.GetSource())
	}
	if ex.GetFrameworkID().GetValue() != "fw-1" {
		t.Errorf("executor framework %q", ex.GetFrameworkID().GetValue())
	}
	cmd := ex.GetCommand()
	wantArgs := []string{"/opt/dewar/dewar-executor", "--announcer-ensemble=10.0.0.1:2181"}
	if cmd.GetValue() != "/opt/dewar/dewar-executor" || cmd.GetShell() || !reflect.DeepEqual(cmd.Arguments, wantArgs) {
		t.Errorf("command value %q shell %v args %v; want the executor path, shell=false, args %v", cmd.GetValue(), cmd.GetShell(), cmd.Arguments, wantArgs)
	}

	c := ex.GetContainer()
	if c.GetType() != mesos.ContainerInfo_MESOS {
		t.Fatalf("container type %v, want MESOS", c.GetType())
	}
	type net struct {
		name   string
		labels map[string]string
	}
	var got []net
	for _, ni := range c.NetworkInfos {
		n := net{name: ni.GetName(), labels: map[string]string{}}
		for _, l := range ni.GetLabels().GetLabels() {
			n.labels[l.Key] = l.GetValue()
		}
		got = append(got, n)
	}
	want := []net{{"blue", map[string]string{"team": "web", "tier": "frontend"}}, {"green", map[string]string{}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("network_infos %+v, want %+v (in the job's order)", got, want)
	}
}

func TestBuildTaskHostNetworkingHasNoContainer(t *testing.T) {
	job, jobJSON := loadJob(t, "web_host.json")
	offer := testOffer(1, 1024, [2]uint64{31000, 31100})
	ti, _, err := ExecutorSettings{Command: "/x", CPUs: 0.25, MemMB: 128}.BuildTask(Launch{Job: job, JobJSON: jobJSON}, offer, offer.Resources)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Executor.Container != nil {
		t.Errorf("container %v for a job without networks, want none (host networking)", ti.Executor.Container)
	}
}

func TestBuildTaskRefusesSmallOffers(t *testing.T) {
	job, jobJSON := loadJob(t, "web_cni.json")
	s := ExecutorSettings{Command: "/x", CPUs: 0.25, MemMB: 128}
	tests := []struct {
		name  string
		offer mesos.Offer
		want  string
	}{
		{"cpus", testOffer(0.3, 4096, [2]uint64{31000, 31010}), "cpus"},
		{"mem", testOffer(4, 100, [2]uint64{31000, 31010}), "mem"},
		{"ports", testOffer(4, 4096, [2]uint64{31000, 31000}), "ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.BuildTask(Launch{Job: job, JobJSON: jobJSON}, tt.offer, tt.offer.Resources)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("BuildTask() = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// Mesos sets role "*" on offered resources; two instances from one offer
// must still get their own ports and share the cpus.
func TestBuildTaskTwoInstancesFromOneRoledOffer(t *testing.T) {
	job, jobJSON := loadJob(t, "web_cni.json")
	s := ExecutorSettings{Command: "/x", CPUs: 0.25, MemMB: 128}
	offer := testOffer(0.8, 4096, [2]uint64{31000, 31010})
	for i := range offer.Resources {
		offer.Resources[i].Role = ptr("*")
	}
	avail := mesos.Resources(offer.Resources).Clone()
	seen := map[int32]bool{}
	for inst := 0; inst < 2; inst++ {
		ti, used, err := s.BuildTask(Launch{Job: job, JobJSON: jobJSON, Instance: inst}, offer, avail)
		if err != nil {
			t.Fatalf("instance %d: %v", inst, err)
		}
		if !resources.ContainsAll(avail, used) {
			t.Fatalf("instance %d uses %v, not within what is left of the offer %v", inst, used, avail)
		}
		avail = avail.Minus(used...)
		at, err := aurora.DecodeAssignedTask(ti.Data)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range at.AssignedPorts {
			if seen[p] {
				t.Fatalf("instance %d got port %d (%s) that another instance has", inst, p, name)
			}
			seen[p] = true
		}
	}
	if _, _, err := s.BuildTask(Launch{Job: job, JobJSON: jobJSON, Instance: 2}, offer, avail); err == nil {
		t.Fatal("a third instance fit into 0.8 cpus, want the offer exhausted (2 x 0.35)")
	}
}
