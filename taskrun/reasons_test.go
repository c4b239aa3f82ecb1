package taskrun

import (
	"errors"
	"fmt"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/netdiscover"
	"github.com/dewarhq/dewar/pystachio"
)

func TestFailureReason(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("announce: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want mesos.TaskStatus_Reason
	}{
		{"neither data nor command", invalidf("no command"), mesos.REASON_TASK_INVALID},
		{"AssignedTask does not decode", &aurora.DecodeError{Field: "task", Err: errors.New("bad")}, mesos.REASON_TASK_INVALID},
		{"MesosJob field wrong", &aurora.JobError{Field: "task.processes", Err: errors.New("bad")}, mesos.REASON_TASK_INVALID},
		{"template syntax", &pystachio.SyntaxError{Tag: "{{", Reason: "unclosed"}, mesos.REASON_TASK_INVALID},
		{"unknown template variable", &pystachio.UnboundError{}, mesos.REASON_TASK_INVALID},
		{"zk_path without the flag", wrap(announcer.ErrCustomPathNotAllowed), mesos.REASON_TASK_INVALID},
		{"primary port not allocated", wrap(announcer.ErrPrimaryPortNotAllocated), mesos.REASON_TASK_INVALID},
		// Not the job owner's fault: the operator's.
		{"unreachable ZooKeeper", wrap(announcer.ErrUnreachable), mesos.REASON_CONTAINER_LAUNCH_FAILED},
		{"network without an address", &netdiscover.NetworkError{Network: "blue", Interface: "eth0", Err: netdiscover.ErrNoAddress}, mesos.REASON_CONTAINER_LAUNCH_FAILED},
		{"interface missing", fmt.Errorf("discover: %w", netdiscover.ErrInterfaceMissing), mesos.REASON_CONTAINER_LAUNCH_FAILED},
		{"anything else", errors.New("fork/exec: resource temporarily unavailable"), mesos.REASON_CONTAINER_LAUNCH_FAILED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failureReason(tc.err); got != tc.want {
				t.Fatalf("failureReason(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}
