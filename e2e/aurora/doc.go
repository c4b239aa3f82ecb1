// Package aurorae2e holds the end-to-end tests of Aurora tasks (issue 4): each
// fixture in testdata/aurora is encoded as an Aurora scheduler would send it
// (an AssignedTask in Thrift, the MesosJob JSON inside), launched through
// the fake agent under the real dewar-executor binary, and judged by its
// status updates, its process logs and what its processes recorded.
package aurorae2e
