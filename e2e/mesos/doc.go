// Package mesose2e holds the end-to-end tests against a real Apache Mesos 1.12
// master and agent (in /opt/mesos or $DEWAR_MESOS_HOME, testenv.MesosHome):
// the demo's job, launched by the scheduler stub through the real master,
// runs under the real dewar-executor on two CNI bridge networks of the real
// agent's network/cni isolator; and the agent is SIGKILLed and restarted
// under a running task.
//
// Everything runs inside a node network namespace of the test's own:
// ZooKeeper, mesos-master, mesos-agent (started with `nsenter --net`, so
// that it shares the machine's mount namespace and the test can see and
// remove what it mounts), the scheduler stub, and the host side of every
// container's veth. The machine's own network stack is never touched.
//
// Run them with `make test-mesos`. Without /opt/mesos they skip, saying
// how to install it, unless DEWAR_REQUIRE_MESOS=1 (which `make test-mesos`
// sets) turns the skip into a failure.
//
// Cleanup runs also on failure and is thorough: executors and tasks are
// killed by PID (found by their MESOS_DIRECTORY under the test's agent
// work dir, and by the test's own freezer cgroup root, never by name), the
// agent and master are stopped, everything mounted under the test's
// directories is unmounted (lazily, deepest first), the test's cgroups are
// removed, and last the node namespace goes.
package mesose2e
