// Package mesose2e holds the end-to-end tests against a real Apache Mesos 1.12
// master and agent (internal/mesostest sets the one-node cluster up): the
// demo's job, launched by the scheduler stub through the real master, runs
// under the real dewar-executor on two CNI bridge networks of the real
// agent's network/cni isolator; and the agent is SIGKILLed and restarted
// under a running task (e2e/reliability repeats that restart and counts).
//
// Run them with `make test-mesos` (`make test` runs them too). Without
// /opt/mesos they skip, saying how to install it, unless
// DEWAR_REQUIRE_INTEGRATION=1 turns the skip into a failure.
package mesose2e
