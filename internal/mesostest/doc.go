// Package mesostest runs a one-node Apache Mesos 1.12 cluster for
// end-to-end tests (installed in /opt/mesos by ../shared/mesos/install.sh):
// ZooKeeper, mesos-master and mesos-agent with two CNI bridge networks of
// the agent's network/cni isolator, and the scheduler stub launching jobs
// that run under the real dewar-executor. e2e/mesos and e2e/reliability
// share it.
//
//	c := mesostest.New(t)                       // master and agent registered
//	s := c.StartStub(t, c.Job(t, 1, 0))         // dewar-scheduler run
//	running := c.WaitRunning(t, s, 1)           // instance → latest record
//	_ = c.Agent().Cmd.Process.Signal(syscall.SIGKILL)
//	<-c.Agent().Done
//	c.StartAgent(t)                             // same work dir: recovery
//	c.CheckUpdates(t, s, running[0].TaskID, "TASK_RUNNING")
//
// Everything runs inside a node network namespace of the test's own:
// ZooKeeper, mesos-master, mesos-agent (started with `nsenter --net`, so
// that it shares the machine's mount namespace and the test can see and
// remove what it mounts), the scheduler stub, and the host side of every
// container's veth. The machine's own network stack is never touched.
//
// Cleanup runs also on failure and is thorough: executors and tasks are
// killed by PID (found by their MESOS_DIRECTORY under the test's agent
// work dir, and by the test's own freezer cgroup root, never by name), the
// agent and master are stopped, everything mounted under the test's
// directories is unmounted (lazily, deepest first), the test's cgroups are
// removed, and last the node namespace goes. Without Mesos a test skips,
// saying how to install it, unless DEWAR_REQUIRE_INTEGRATION=1 turns the
// skip into a failure.
package mesostest
