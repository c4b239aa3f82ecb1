// Package partitionaware holds Mesos' backward-compatibility rule for the
// states of tasks the master or an agent lost track of: the newer, precise
// states (TASK_DROPPED, TASK_GONE, TASK_UNKNOWN, TASK_UNREACHABLE, ...) go
// only to frameworks that opted in with the PARTITION_AWARE capability;
// every other framework gets TASK_LOST. The fake agent and the fake master
// both apply it.
package partitionaware

import mesos "github.com/mesos/mesos-go/api/v1/lib"

// Is reports whether the framework has the PARTITION_AWARE capability, as
// Mesos' protobuf::framework::Capabilities computes partitionAware
// (src/common/protobuf_utils.hpp).
func Is(info mesos.FrameworkInfo) bool {
	for _, c := range info.Capabilities {
		if c.GetType() == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
			return true
		}
	}
	return false
}

// State is aware for a partition-aware framework and TASK_LOST for the
// others, the choice Mesos writes out at each such place as
// `framework->capabilities.partitionAware ? aware : TASK_LOST`
// (src/master/master.cpp, src/slave/slave.cpp).
func State(info mesos.FrameworkInfo, aware mesos.TaskState) mesos.TaskState {
	if Is(info) {
		return aware
	}
	return mesos.TASK_LOST
}
