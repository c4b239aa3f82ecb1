// Package cnie2e holds the end-to-end tests of MESOS-6281 on real CNI
// networks: the real dewar-agent, inside a node namespace of the test's
// own, attaches containers with the reference plugins and launches the real
// dewar-executor into them; the executor discovers its own addresses,
// reports them and hands them to the task.
package cnie2e
