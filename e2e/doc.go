// Package e2e holds the end-to-end test of the demo path: the real
// dewar-agent (with the CNI isolator and the reference plugins),
// dewar-executor, dewar-scheduler and ZooKeeper, all inside a network
// namespace of the test's own.
package e2e
