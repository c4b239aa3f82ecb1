// Package executore2e holds the end-to-end tests and benchmarks of the
// executor spine (issue 2): the real dewar-agent binary launches the real
// dewar-executor binary, and they talk over the real Mesos v1 executor HTTP
// API. Nothing here is faked: processes are started, stopped and killed by
// PID, and the only shared state is a temp work dir per test.
package executore2e
