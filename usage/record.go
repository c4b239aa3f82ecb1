package usage

import (
	"context"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/checkpoint"
)

// DefaultInterval is the executor's default sampling interval
// (--checkpoint-sample-interval). Thermos' observer runs a monitor thread
// per task that samples its processes every 20 s and its sandbox's disk
// every 60 s (src/main/python/apache/thermos/monitoring/resource.py,
// TaskResourceMonitor.PROCESS_COLLECTION_INTERVAL; disk.py,
// DiskCollectorSettings.DISK_COLLECTION_INTERVAL); here each executor
// samples its own task, both at one interval in between.
const DefaultInterval = 30 * time.Second

// startSlack is how far a process's start may be from the run's recorded
// start and still be the run (not a reused pid): the recorded start is
// taken after fork, the kernel's in clock ticks.
const startSlack = 5 * time.Second

// Options configure Record.
type Options struct {
	// Interval between samples; <= 0: DefaultInterval.
	Interval time.Duration
	// Dir is the directory whose disk use is sampled ("" for none).
	Dir string
	// MaxEntries bounds the disk walk; <= 0: DefaultMaxEntries.
	MaxEntries int
	// Disk, when set, walks Dir instead: a walk shared with the disk
	// limit (SharedDisk), whose samples serve here while younger than
	// half the interval.
	Disk    *SharedDisk
	Sampler *Sampler
	Logger  *zap.Logger
}

// Record samples the running runs of w's task and opt.Dir every interval,
// off the task's lifecycle, and records the samples in the checkpoint.
// Only a sample that differs from the recorded one changes the document,
// and the writer coalesces writes, so an idle task writes nothing and a
// busy one at most once per interval. A last disk sample is taken when ctx
// ends (the logs the task wrote last), bounded by a short timeout. Run it
// with w.Go, which stops it before the checkpoint's last write.
func Record(ctx context.Context, w *checkpoint.Writer, opt Options) {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Disk == nil && opt.Dir != "" {
		opt.Disk = NewSharedDisk(opt.Dir, opt.MaxEntries, "")
	}
	tick := time.NewTicker(opt.Interval)
	defer tick.Stop()
	for {
		SampleOnce(ctx, w, opt)
		select {
		case <-tick.C:
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			sampleDisk(final, w, opt.Disk, 0)
			cancel()
			return
		}
	}
}

type runKey struct {
	process string
	run     int
	start   time.Time
}

// SampleOnce takes one sample and records it in w.
func SampleOnce(ctx context.Context, w *checkpoint.Writer, opt Options) {
	// By pid; a stale record may share a pid with a live run.
	runs := map[int][]runKey{}
	w.View(func(t *checkpoint.Task) {
		for _, p := range t.Processes {
			if r := p.Last(); r != nil && r.State == checkpoint.RunRunning && r.PID > 0 && r.Start != nil {
				runs[r.PID] = append(runs[r.PID], runKey{p.Name, r.Run, *r.Start})
			}
		}
	})
	if len(runs) > 0 && opt.Sampler != nil {
		sids := make(map[int]bool, len(runs))
		for pid := range runs {
			sids[pid] = true
		}
		trees, err := opt.Sampler.Sessions(ctx, sids)
		if err != nil {
			opt.Logger.Debug("cannot sample the task's processes", zap.Error(err))
		}
		now := time.Now()
		w.UpdateIf(func(t *checkpoint.Task) bool {
			changed := false
			for pid, tr := range trees {
				for _, k := range runs[pid] {
					// The pid may have been reused since the run ended: the
					// session leader must have started when the run did.
					if tr.LeaderStart.IsZero() || math.Abs(float64(tr.LeaderStart.Sub(k.start))) > float64(startSlack) {
						continue
					}
					u := checkpoint.Usage{CPUSeconds: math.Round(tr.CPUSeconds*100) / 100, RSSBytes: tr.RSSBytes, Processes: tr.Processes, Time: now}
					changed = t.SetUsage(k.process, k.run, u) || changed
				}
			}
			return changed
		})
	}
	disk := opt.Disk
	if disk == nil && opt.Dir != "" {
		disk = NewSharedDisk(opt.Dir, opt.MaxEntries, "")
	}
	sampleDisk(ctx, w, disk, opt.Interval/2)
}

// sampleDisk records a disk sample at most maxAge old (0: a new walk).
func sampleDisk(ctx context.Context, w *checkpoint.Writer, disk *SharedDisk, maxAge time.Duration) {
	if disk == nil {
		return
	}
	d, ok := disk.Sample(ctx, maxAge, false)
	if !ok {
		return // ctx ended before any walk finished: nothing measured to record
	}
	w.UpdateIf(func(t *checkpoint.Task) bool {
		return t.SetDisk(checkpoint.Disk{Bytes: d.Bytes, Entries: d.Entries, Truncated: d.Truncated, Time: d.Time})
	})
}
