package taskrun

import (
	"context"
	"path/filepath"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/disklimit"
)

// watchDisk enforces the task's disk reservation on its sandbox, as
// Thermos' ResourceManager (resource_manager.py); nil when enforcement is
// off (Options.DiskCheckInterval 0) or nothing is reserved.
func (t *task) watchDisk(ctx context.Context, p *taskSpec) <-chan disklimit.Exceeded {
	if t.opt.DiskCheckInterval <= 0 {
		return nil
	}
	reserved := diskReservation(p, t.info)
	if reserved <= 0 {
		return nil
	}
	return disklimit.Watch(ctx, disklimit.Config{
		// Thermos measures the task's sandbox (TaskResourceMonitor's
		// disk collector is given task_monitor.get_sandbox()).
		Dir:      filepath.Join(t.env.Config.Sandbox, "sandbox"),
		Reserved: reserved,
		Interval: t.opt.DiskCheckInterval,
		Log:      t.log,
	})
}

// diskReservation is the task's disk in bytes: the Aurora job's
// task.resources.disk, which Thermos reads
// (ResourceManagerProvider.from_assigned_task), else the TaskInfo's "disk"
// resource (Mesos counts it in MB).
func diskReservation(p *taskSpec, info mesos.TaskInfo) int64 {
	if p.job != nil && p.job.Task.Resources != nil && p.job.Task.Resources.Disk > 0 {
		return p.job.Task.Resources.Disk
	}
	var mb float64
	for _, r := range info.GetResources() {
		if r.GetName() == "disk" && r.GetType() == mesos.SCALAR {
			mb += r.GetScalar().GetValue()
		}
	}
	return int64(mb * (1 << 20))
}
