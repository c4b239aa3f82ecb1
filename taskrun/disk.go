package taskrun

import (
	"context"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/disklimit"
	"github.com/dewarhq/dewar/usage"
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
	cfg := disklimit.Config{
		Dir:      t.limitDir(),
		Reserved: reserved,
		Interval: t.opt.DiskCheckInterval,
		Log:      t.log,
	}
	if t.disk != nil {
		cfg.Measure = t.disk.Measure(cfg.Interval)
	}
	return disklimit.Watch(ctx, cfg)
}

// limitDir is what the disk limit measures: the task's sandbox, as
// Thermos (TaskResourceMonitor's disk collector is given
// task_monitor.get_sandbox()).
func (t *task) limitDir() string { return filepath.Join(t.env.Config.Sandbox, "sandbox") }

// sharedDisk is the one walk of the run directory (usage.SharedDisk) that
// serves both the checkpoint's disk samples (usage.Record, the run
// directory as du counts it, every CheckpointSampleInterval) and the disk
// limit (the sandbox as Thermos' du counts it, every DiskCheckInterval):
// each takes a walk no older than half its interval, so with the defaults
// (30 s and 60 s) the sandbox is walked every 30 s, not three times a
// minute; a sandbox above the entry bound is walked past it (the limit's
// unbounded total) only at the limit's checks, once a minute. Thermos' limit, too, reads the last sample its background
// collector finished, up to an interval old (thermos/monitoring/disk.py,
// DuDiskCollector and AbstractDiskCollector.value). nil when only one of
// them runs, or neither: that one walks by itself. nil too when the
// sandbox as the executor sees it ($MESOS_SANDBOX, a container's mount
// point) is not inside the run directory ($MESOS_DIRECTORY): the two are
// different trees, and each is walked by its own reader at its own
// interval.
func (t *task) sharedDisk() *usage.SharedDisk {
	if t.opt.DiskCheckInterval <= 0 || t.opt.CheckpointSampleInterval < 0 || t.runDir() == "" {
		return nil
	}
	run, limit := filepath.Clean(t.runDir()), t.limitDir()
	if rel, err := filepath.Rel(run, limit); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	return usage.NewSharedDisk(run, 0, limit)
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
