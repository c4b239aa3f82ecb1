package taskrun

import (
	"errors"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/pystachio"
)

// failureReason is the Mesos reason of a task that failed before or while
// starting, decided by what went wrong, not by where: a task the job owner
// must fix is REASON_TASK_INVALID; a container the operator must look at
// (a network without an address, an unreachable ZooKeeper ensemble, a
// process that cannot be started) is REASON_CONTAINER_LAUNCH_FAILED.
func failureReason(err error) mesos.TaskStatus_Reason {
	var (
		decodeErr *aurora.DecodeError
		jobErr    *aurora.JobError
		syntaxErr *pystachio.SyntaxError
		unbound   *pystachio.UnboundError
	)
	switch {
	case errors.Is(err, errInvalid),
		errors.As(err, &decodeErr), errors.As(err, &jobErr),
		errors.As(err, &syntaxErr), errors.As(err, &unbound),
		errors.Is(err, announcer.ErrCustomPathNotAllowed),
		errors.Is(err, announcer.ErrPrimaryPortNotAllocated):
		return mesos.REASON_TASK_INVALID
	default:
		// Everything else is the container's: a network without an
		// address (netdiscover.NetworkError, ErrInterfaceMissing,
		// ErrNoAddress), an unreachable ensemble (announcer.ErrUnreachable),
		// a process that cannot be started, an image that cannot run.
		return mesos.REASON_CONTAINER_LAUNCH_FAILED
	}
}
