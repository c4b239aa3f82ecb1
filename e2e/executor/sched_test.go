package executore2e

import (
	"os/user"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/dewarhq/dewar/internal/frameworktest"
)

// framework is a Mesos framework on the agent's scheduler API
// (/api/v1/scheduler) that acknowledges its updates: the only way to send
// KILL to a task through the real dewar-agent binary.
type framework struct {
	*frameworktest.Framework
	t testing.TB
}

func subscribeFramework(t testing.TB, agentURL string) *framework {
	t.Helper()
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	info := mesos.FrameworkInfo{User: name, Name: "e2e-executor"}
	return &framework{Framework: frameworktest.Subscribe(t, agentURL+"/api/v1/scheduler", info, frameworktest.Options{AutoAck: true}), t: t}
}

// launchCommand accepts an offer with one command task (run by the agent
// under its --executor) and returns the agent id it went to.
func (f *framework) launchCommand(taskID, cmd string) string {
	f.t.Helper()
	return f.launchTask(mesos.TaskInfo{Name: taskID, TaskID: mesos.TaskID{Value: taskID}, Command: &mesos.CommandInfo{Value: &cmd}})
}

// launchTask accepts an offer with task (given a small share of the
// offer's resources and its agent id) and returns the agent id it went to.
func (f *framework) launchTask(task mesos.TaskInfo) string {
	f.t.Helper()
	o := f.Offer()
	task.AgentID = o.AgentID
	task.Resources = []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource}
	f.Call(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(o.ID)))
	return o.AgentID.Value
}
