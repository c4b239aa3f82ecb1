package executor

import (
	"context"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/internal/taskstate"
)

// Launcher starts the tasks the agent sends. The protocol loop does not know
// how a task runs; the task lifecycle (package taskrun) does.
type Launcher interface {
	// Launch starts task and returns at once. The task reports every status
	// through report, ending with exactly one terminal state, after which
	// it reports nothing more.
	Launch(ctx context.Context, env LaunchEnv, task mesos.TaskInfo, report Reporter) Task
}

// Task is a launched task as the protocol loop sees it.
type Task interface {
	// Kill starts the graceful kill the scheduler asked for (KILL; policy
	// is the event's kill_policy, nil when it has none) and returns at
	// once. Nothing bounds it but the task's own timeouts: the agent does
	// not (only SHUTDOWN has a grace period). The terminal status
	// (TASK_KILLED, or TASK_FAILED if the kill went wrong) comes through
	// the Reporter, its message saying why (reason). Kill may be called
	// more than once; the first call counts.
	Kill(policy *mesos.KillPolicy, reason string)
	// Done is closed once the task has torn down: its terminal status was
	// reported and what it held (the ZooKeeper session with its members,
	// address watchers, open files) is released. The executor waits for it
	// before it exits, so that nothing is cut off half-way.
	Done() <-chan struct{}
	// Shutdown is a kill that must be over within grace, because the
	// executor has to stop (SHUTDOWN, a lost agent): it also cuts short a
	// kill already under way. It returns at once, like Kill.
	Shutdown(grace time.Duration, reason string)
}

// Reporter receives a task's status changes.
type Reporter func(Status)

// Status is a task's state change as the task lifecycle reports it; the
// protocol loop adds the ids, UUID, source and timestamp.
type Status struct {
	State   mesos.TaskState
	Message string
	Reason  *mesos.TaskStatus_Reason
	Healthy *bool
	// Networks is what the executor discovered itself (MESOS-6281): one
	// NetworkInfo per CNI network with name, labels and ip_addresses. It
	// goes into container_status.network_infos so that a scheduler can
	// compare it with the agent's view.
	Networks []mesos.NetworkInfo
	Labels   []mesos.Label
}

// LaunchEnv is what the agent told the executor at SUBSCRIBED time.
type LaunchEnv struct {
	Config      Config
	Executor    mesos.ExecutorInfo
	Framework   mesos.FrameworkInfo
	Agent       mesos.AgentInfo
	ContainerID *mesos.ContainerID
}

// terminal reports whether a task in state s will never change again.
func terminal(s mesos.TaskState) bool { return taskstate.Terminal(s.String()) }
