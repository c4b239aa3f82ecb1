package partitionaware_test

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/internal/partitionaware"
)

func TestState(t *testing.T) {
	capability := func(ts ...mesos.FrameworkInfo_Capability_Type) mesos.FrameworkInfo {
		var info mesos.FrameworkInfo
		for _, c := range ts {
			info.Capabilities = append(info.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
		}
		return info
	}
	tests := []struct {
		name string
		info mesos.FrameworkInfo
		want mesos.TaskState
	}{
		{"no capabilities", capability(), mesos.TASK_LOST},
		{"other capabilities", capability(mesos.FrameworkInfo_Capability_GPU_RESOURCES, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE), mesos.TASK_LOST},
		{"partition aware", capability(mesos.FrameworkInfo_Capability_MULTI_ROLE, mesos.FrameworkInfo_Capability_PARTITION_AWARE), mesos.TASK_DROPPED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := partitionaware.State(tt.info, mesos.TASK_DROPPED); got != tt.want {
				t.Fatalf("State(%v, TASK_DROPPED) = %v, want %v", tt.info.Capabilities, got, tt.want)
			}
		})
	}
}
