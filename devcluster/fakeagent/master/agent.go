// Package master is the master half of the fake agent: the subset of the
// Mesos v1 scheduler HTTP API (/api/v1/scheduler) that dewar's scheduler
// stub, and any small framework, needs on a single node.
//
// It keeps frameworks, offers and the latest status of every task, and talks
// to the node through Agent. The agent calls Update for every status update
// it has checkpointed; the master forwards it to the framework and keeps it
// until the framework acknowledges it, re-sending it on re-subscription, as
// the Mesos master does.
package master

import (
	"context"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Agent is the node the master offers and launches on. *fakeagent.Agent
// implements it.
type Agent interface {
	// Info names the agent and lists its total resources (cpus, mem, ports).
	Info() mesos.AgentInfo
	// Launch starts task under exec (nil for a command task). It returns once
	// the launch is under way; the outcome arrives as status updates.
	Launch(ctx context.Context, fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, task mesos.TaskInfo) error
	// Kill asks the task's executor to kill it.
	Kill(ctx context.Context, frameworkID, taskID string, policy *mesos.KillPolicy) error
	// ShutdownFramework kills every executor of the framework.
	ShutdownFramework(ctx context.Context, frameworkID string) error
}
