package taskstate_test

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/internal/taskstate"
)

// Every state mesos-go knows, by its name, against Mesos' list.
func TestTerminal(t *testing.T) {
	terminal := map[mesos.TaskState]bool{
		mesos.TASK_FINISHED: true, mesos.TASK_FAILED: true, mesos.TASK_KILLED: true, mesos.TASK_LOST: true,
		mesos.TASK_ERROR: true, mesos.TASK_DROPPED: true, mesos.TASK_GONE: true, mesos.TASK_GONE_BY_OPERATOR: true,
	}
	for v, name := range mesos.TaskState_name {
		s := mesos.TaskState(v)
		if got := taskstate.Terminal(name); got != terminal[s] {
			t.Errorf("Terminal(%s) = %v, want %v", name, got, terminal[s])
		}
	}
}
