// Package e2etest plays a whole dewar node for end-to-end tests: a network
// namespace of the test's own (internal/netnstest) holding the real
// dewar-agent with CNI networks of the reference plugins, which launches
// the real dewar-executor into container namespaces.
//
//	node := e2etest.NewNode(t)
//	net1 := node.BridgeNetwork(t, "198.18.60.0/24")            // a CNI config, random names
//	agent := node.StartAgent(t)                                // dewar-agent, in the node
//	run := agent.Launch(t, task)                               // a TaskInfo; its updates stream in
//	up := run.WaitFor(t, 30*time.Second, "running", e2etest.InState(mesos.TASK_RUNNING))
//	ns := agent.ContainerNetNS(t, run.ExecutorPID(t))          // the container's namespace name
//
// The test process stays in the machine's own namespaces: it reaches the
// agent through its unix socket in the work dir, and container namespaces
// through their pins under /run/netns (the agent is started with
// `nsenter --net`, not `ip netns exec`, so it shares the test's mount
// namespace and its pins are visible here).
//
// Everything is released in t.Cleanup, also on failure: running executors
// are killed by PID (the agent then tears their containers down with CNI
// DEL), the agent is stopped, leftover processes of its work dir are
// killed, leftover container namespaces deleted — each leftover is also an
// error, because the product must not leave it — and last the node
// namespace (with its bridges and veths) goes; the final check fails the
// test if any namespace it created is still listed.
//
// Tests of host-networking tasks and of the agent's own life (restarts,
// recovery) need no node: StartLocalAgent runs dewar-agent on loopback in
// the test's own namespaces. AwaitMembers, AwaitHTTP and AddressesOf are
// the checks every end-to-end test of an announced CNI task makes.
package e2etest
