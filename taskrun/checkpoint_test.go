package taskrun

import (
	"testing"

	"github.com/dewarhq/dewar/checkpoint"
)

// TestLaunchWritesCheckpoint: the observer's record of the hello world
// task, read with the observer's reader once the terminal status arrived
// (it is on disk before the status is passed on): who the task is, its
// state history, its process run with pid and exit status, and the host
// network's addresses. (No "health" port: no health check, no Health.)
func TestLaunchWritesCheckpoint(t *testing.T) {
	l := launch(t, auroraTaskInfo(t, fixtureJSON(t, "hello_world.json", nil), map[string]int32{"http": 31000}))
	got := l.until(t)
	c, err := checkpoint.Read(l.sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskID != "task-1" || c.Role != "root" || c.Environment != "devel" || c.Job != "hello_world" || c.Instance != 1 {
		t.Errorf("identity = %q %q/%q/%q/%d", c.TaskID, c.Role, c.Environment, c.Job, c.Instance)
	}
	var ckStates []string
	for _, s := range c.States {
		ckStates = append(ckStates, s.State)
	}
	if len(ckStates) != len(got) || c.State() != got[len(got)-1].State.String() {
		t.Errorf("checkpoint states %v, reported %v", ckStates, states(got))
	}
	p := c.Process("hello")
	if p == nil || len(p.Runs) != 1 {
		t.Fatalf("process hello = %+v", p)
	}
	r := p.Runs[0]
	if r.PID <= 0 || r.State != checkpoint.RunSuccess || r.ExitCode == nil || *r.ExitCode != 0 || r.Start == nil || r.Stop == nil {
		t.Errorf("run 0 = %+v", r)
	}
	if c.Ports["http"] != 31000 {
		t.Errorf("ports = %v", c.Ports)
	}
	if n := len(c.RunnerStates); n == 0 || c.RunnerStates[n-1].State != "SUCCESS" {
		t.Errorf("runner states = %+v", c.RunnerStates)
	}
	if len(c.Networks) != 1 || !c.Networks[0].Host || len(c.Networks[0].Addresses) == 0 {
		t.Errorf("networks = %+v; want the host network with the host's addresses", c.Networks)
	}
	if c.Health != nil {
		t.Errorf("health = %+v without a health check", c.Health)
	}
}
