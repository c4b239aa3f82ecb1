package taskrun

import (
	"errors"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/netdiscover"
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
		netErr    *netdiscover.NetworkError
	)
	switch {
	case errors.Is(err, errInvalid),
		errors.As(err, &decodeErr), errors.As(err, &jobErr),
		errors.As(err, &syntaxErr), errors.As(err, &unbound),
		errors.Is(err, announcer.ErrCustomPathNotAllowed),
		errors.Is(err, announcer.ErrPrimaryPortNotAllocated):
		return mesos.REASON_TASK_INVALID
	case errors.As(err, &netErr), errors.Is(err, netdiscover.ErrInterfaceMissing),
		errors.Is(err, netdiscover.ErrNoAddress), errors.Is(err, announcer.ErrUnreachable):
		return mesos.REASON_CONTAINER_LAUNCH_FAILED
	default:
		return mesos.REASON_CONTAINER_LAUNCH_FAILED
	}
}
