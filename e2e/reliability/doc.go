// Package reliability measures how the serversets the announcer keeps ride
// out the ZooKeeper failures that happen every week (issue 13): a leader
// killed, a quorum lost for longer than the session timeout, all servers
// restarted under a rejoin storm, a follower frozen, the real
// dewar-executor SIGKILLed under the strict fake agent. Every scenario
// runs on real parts — a three-node ensemble of Debian's ZooKeeper on
// loopback (internal/zktest) and one announcer, with its own session, per
// simulated task, as in production — and prints a figure and whether the
// issue's threshold held.
//
// `go test` runs a short version (few tasks, one round); `make
// reliability` sets DEWAR_RELIABILITY_FULL=1 for the full one (1,000
// sessions in the storm) and prints the table.
package reliability
