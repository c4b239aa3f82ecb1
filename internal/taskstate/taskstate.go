// Package taskstate holds the one Mesos rule about task states that the
// executor, its checkpoint, the fake agent, the fake master and the
// scheduler stub all apply: which states are terminal. It works on state
// names, so that the observer (which reads checkpoints) needs no mesos-go.
package taskstate

// Terminal reports whether a task in the state named s (TASK_FINISHED,
// ...) will never change again, as Mesos' protobuf::isTerminalState
// (src/common/protobuf_utils.cpp). TASK_UNKNOWN is not terminal there:
// the task may still be running.
func Terminal(s string) bool {
	switch s {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST",
		"TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}
