// Package reliability measures how dewar rides out the failures that
// happen every week (issue 13) and prints one table of figures:
//
//   - ZooKeeper: a leader killed, a follower frozen, a quorum lost for
//     longer than the session timeout, all servers restarted under a
//     rejoin storm (a three-node ensemble of Debian's ZooKeeper on
//     loopback, internal/zktest, and one announcer with its own session
//     per simulated task, as in production);
//   - the executor: the real dewar-executor SIGKILLed under the strict
//     fake agent;
//   - the agent: the strict fake agent (in this process, with its 503
//     recovery phase and re-registration window) restarted under running
//     tasks, and the real mesos-agent SIGKILLed and restarted
//     (internal/mesostest);
//   - the network: an address removed and re-added inside a task's
//     namespace under the real dewar-agent with CNI (internal/e2etest);
//   - the disk: a sandbox on a full tmpfs;
//   - security: other ZooKeeper credentials against a member under a
//     digest ACL, process names with "..", the agent's executor token.
//
// Each scenario prints its figure and whether the threshold held.
// `go test` runs a short version (few tasks, one round, three agent
// restarts, no real Mesos: e2e/mesos restarts it once); `make
// reliability` sets DEWAR_RELIABILITY_FULL=1 for the full one and prints
// the table.
package reliability
