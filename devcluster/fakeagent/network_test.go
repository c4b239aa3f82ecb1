package fakeagent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/mesosmeta"
)

// recordingIsolator stands in for the CNI isolator in-process: the real one
// must run with the whole agent inside a test network namespace, which
// cmd/dewar-agent's TestRunCNI does with the real binary.
type recordingIsolator struct {
	mu        sync.Mutex
	prepared  []string
	requested [][]string // network names, per Prepare
	cleaned   []string
	fail      error
}

func (r *recordingIsolator) Prepare(_ context.Context, id string, nets []mesos.NetworkInfo) (*fakeagent.NetContainer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	r.prepared = append(r.prepared, id)
	var names []string
	for _, n := range nets {
		names = append(names, n.GetName())
	}
	r.requested = append(r.requested, names)
	v4 := mesos.IPv4
	var out []mesos.NetworkInfo
	for k, n := range nets {
		n.IPAddresses = []mesos.NetworkInfo_IPAddress{{Protocol: &v4, IPAddress: ptr("198.18.9." + string(rune('1'+k)))}}
		out = append(out, n)
	}
	return &fakeagent.NetContainer{NetNSPath: "/run/netns/dewar-c-fake", NetworkInfos: out, Wrap: func(argv []string) []string { return argv }}, nil
}

func (r *recordingIsolator) Cleanup(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleaned = append(r.cleaned, id)
	return nil
}

func (r *recordingIsolator) calls() (prepared, cleaned []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.prepared...), append([]string(nil), r.cleaned...)
}

func networked(exID string) *mesos.ExecutorInfo {
	shell := true
	mesosType := mesos.ContainerInfo_MESOS
	return &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: exID},
		Command:    &mesos.CommandInfo{Value: ptr(`env > env.tmp && mv env.tmp env.txt && exec sleep 600`), Shell: &shell},
		Container:  &mesos.ContainerInfo{Type: &mesosType, NetworkInfos: []mesos.NetworkInfo{{Name: ptr("net-a")}, {Name: ptr("net-b")}}},
	}
}

// TestNetworkViewMerged: the agent's CNI view is appended to the
// executor's own container_status.network_infos of every update (as Mesos'
// ContainerStatus::MergeFrom), also after a restart; the executor gets
// MESOS_DOMAIN_SOCKET; the container is cleaned up when it exits.
func TestNetworkViewMerged(t *testing.T) {
	dir := t.TempDir()
	iso := &recordingIsolator{}
	withIso := func(c *fakeagent.Config) { c.Isolator = iso }
	a := startAgent(t, dir, withIso)
	got := record(a)
	fw := framework("fw-n", true, false)
	if err := a.Launch(context.Background(), fw, networked("ex-n"), mesos.TaskInfo{Name: "n", TaskID: mesos.TaskID{Value: "task-n"}}); err != nil {
		t.Fatal(err)
	}
	fe := awaitFake(t, a, "fw-n", "ex-n")
	if fe.env["MESOS_DOMAIN_SOCKET"] != a.SocketPath() {
		t.Errorf("MESOS_DOMAIN_SOCKET=%q, want %q", fe.env["MESOS_DOMAIN_SOCKET"], a.SocketPath())
	}
	// Only Mesos' default executor sets it, for its tasks; never the agent.
	if ip, ok := fe.env["MESOS_CONTAINER_IP"]; ok {
		t.Errorf("MESOS_CONTAINER_IP=%q set by the agent", ip)
	}
	c := unixClient(a.SocketPath(), fe)
	s := c.subscribe(t, "application/x-protobuf", nil, nil)
	s.expect(t, executor.Event_SUBSCRIBED)
	s.expect(t, executor.Event_LAUNCH)

	v4 := mesos.IPv4
	own := mesos.NetworkInfo{Name: ptr("net-a"), IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: &v4, IPAddress: ptr("198.18.9.1")}}}
	send := func(c *client, state mesos.TaskState) {
		st := status("task-n", state)
		st.ContainerStatus = &mesos.ContainerStatus{NetworkInfos: []mesos.NetworkInfo{own}}
		c.postAccepted(t, c.updateCall(st), "application/x-protobuf")
	}
	agentView := []string{"net-a=198.18.9.1", "net-b=198.18.9.2"}
	bothViews := append([]string{"net-a=198.18.9.1"}, agentView...)
	check := func(st mesos.TaskStatus, want []string) {
		t.Helper()
		if got := fakeagent.Addresses(st); !equal(got, want) {
			t.Errorf("%v: container_status addresses %v, want %v", st.GetState(), got, want)
		}
		cs := st.GetContainerStatus()
		if cs.GetContainerID().GetValue() == "" || int(cs.GetExecutorPID()) != fe.pid {
			t.Errorf("container_status %v lacks container id or executor pid %d", cs, fe.pid)
		}
	}
	send(c, mesos.TASK_STARTING)
	check(got.waitState(t, "task-n", mesos.TASK_STARTING), bothViews)

	a.Close()
	b := startAgent(t, dir, withIso)
	got = record(b)
	s2 := c.subscribe(t, "application/x-protobuf", nil, nil)
	s2.expect(t, executor.Event_SUBSCRIBED)
	send(c, mesos.TASK_RUNNING)
	check(got.waitState(t, "task-n", mesos.TASK_RUNNING), bothViews)

	if err := syscall.Kill(fe.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The agent's own update carries only its view.
	check(got.waitState(t, "task-n", mesos.TASK_FAILED), agentView)
	select {
	case <-b.ExecutorDone("fw-n", "ex-n"):
	case <-time.After(waitFor):
		t.Fatal("executor run not ended")
	}
	prepared, cleaned := iso.calls()
	if len(prepared) != 1 || !equal(cleaned, prepared) {
		t.Errorf("prepared %v, cleaned up %v: want each container cleaned up once", prepared, cleaned)
	}

	// The stream as Mesos checkpoints it, beside the run's sandbox: every
	// update, merged with the agent's view, across the restart.
	meta, ok := mesosmeta.MetaRunDir(fe.env["MESOS_DIRECTORY"])
	if !ok {
		t.Fatalf("MESOS_DIRECTORY %s is not a Mesos run dir", fe.env["MESOS_DIRECTORY"])
	}
	recs, err := mesosmeta.ReadStream(mesosmeta.UpdatesPath(meta, "task-n"))
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range recs {
		states = append(states, r.Status.GetState().String())
		if r.FrameworkID != "fw-n" {
			t.Errorf("record of %v names framework %q", r.Status.GetState(), r.FrameworkID)
		}
	}
	if fmt.Sprint(states) != "[TASK_STARTING TASK_RUNNING TASK_FAILED]" {
		t.Errorf("Mesos stream has %v, want STARTING, RUNNING, FAILED", states)
	}
	if _, agent := mesosmeta.SplitViews(mesosmeta.LatestNetworks(recs)); len(agent) != 2 {
		t.Errorf("the latest update in the Mesos stream has the agent's view %v, want both networks", agent)
	}
}

// TestDefaultContainerInfo: an executor launched without a ContainerInfo
// gets the agent's --default_container_info, networks included
// (src/slave/slave.cpp, Slave::_run: only when !has_container()); one with
// a container of its own, even without networks, keeps it.
func TestDefaultContainerInfo(t *testing.T) {
	iso := &recordingIsolator{}
	mesosType := mesos.ContainerInfo_MESOS
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) {
		c.Isolator = iso
		c.DefaultContainerInfo = &mesos.ContainerInfo{Type: &mesosType, NetworkInfos: []mesos.NetworkInfo{{Name: ptr("net-d")}}}
	})
	fw := framework("fw-d", true, false)
	bare := networked("ex-bare")
	bare.Container = nil
	own := networked("ex-own")
	own.Container = &mesos.ContainerInfo{Type: &mesosType}
	for _, ex := range []*mesos.ExecutorInfo{bare, own} {
		task := mesos.TaskInfo{Name: "d", TaskID: mesos.TaskID{Value: "task-" + ex.ExecutorID.Value}}
		if err := a.Launch(context.Background(), fw, ex, task); err != nil {
			t.Fatal(err)
		}
		awaitFake(t, a, "fw-d", ex.ExecutorID.Value)
	}
	iso.mu.Lock()
	requested := iso.requested
	iso.mu.Unlock()
	if len(requested) != 1 || !equal(requested[0], []string{"net-d"}) {
		t.Errorf("networks prepared %v, want one container on [net-d] (the executor without a ContainerInfo)", requested)
	}
	for _, id := range []string{"ex-bare", "ex-own"} {
		if e := findExecutor(t, a, "fw-d", id); e.PID == 0 {
			t.Errorf("executor %s not started: %+v", id, e)
		}
	}
}

// TestNetworkPrepareFails: a container whose networks cannot be set up
// fails its task with the isolator's message and starts nothing.
func TestNetworkPrepareFails(t *testing.T) {
	iso := &recordingIsolator{fail: errors.New(`unknown CNI network "net-a"; known networks: (none)`)}
	a := startAgent(t, t.TempDir(), func(c *fakeagent.Config) { c.Isolator = iso })
	got := record(a)
	if err := a.Launch(context.Background(), framework("fw-p", true, false), networked("ex-p"), mesos.TaskInfo{Name: "p", TaskID: mesos.TaskID{Value: "task-p"}}); err != nil {
		t.Fatal(err)
	}
	st := got.waitState(t, "task-p", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || st.GetMessage() != `Failed to launch container: unknown CNI network "net-a"; known networks: (none)` {
		t.Errorf("update %v", st)
	}
	if e := findExecutor(t, a, "fw-p", "ex-p"); e.PID != 0 || e.State != "terminated" {
		t.Errorf("executor %+v was started", e)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// orphanIsolator also lists what it has prepared.
type orphanIsolator struct {
	recordingIsolator
	extra []string
}

func (o *orphanIsolator) Prepared() ([]string, error) {
	prepared, cleaned := o.calls()
	done := map[string]bool{}
	for _, id := range cleaned {
		done[id] = true
	}
	var out []string
	for _, id := range append(prepared, o.extra...) {
		if !done[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// TestOrphanContainersCleanedUp: on start the agent removes the networks of
// containers the isolator still has but no live executor owns, and keeps
// those of running executors.
func TestOrphanContainersCleanedUp(t *testing.T) {
	dir := t.TempDir()
	iso := &orphanIsolator{}
	withIso := func(c *fakeagent.Config) { c.Isolator = iso }
	a := startAgent(t, dir, withIso)
	if err := a.Launch(context.Background(), framework("fw-o", true, false), networked("ex-o"), mesos.TaskInfo{Name: "o", TaskID: mesos.TaskID{Value: "task-o"}}); err != nil {
		t.Fatal(err)
	}
	awaitFake(t, a, "fw-o", "ex-o")
	a.Close()
	iso.extra = []string{"lost-in-a-crash"}
	startAgent(t, dir, withIso)
	prepared, cleaned := iso.calls()
	if !equal(cleaned, []string{"lost-in-a-crash"}) {
		t.Errorf("cleaned up %v, want only the orphan (live: %v)", cleaned, prepared)
	}
}
