// Package disklimit fails a task whose sandbox outgrows its disk
// reservation, as Thermos' ResourceManager does
// (aurora/executor/common/resource_manager.py, ResourceManager.status):
// the sandbox is measured with du in the background at an interval
// (thermos/monitoring/disk.py, DuDiskCollector; DISK_COLLECTION_INTERVAL,
// 60 s) and a sample above the reservation fails the task with
// "Disk limit exceeded.  Reserved X bytes vs used Y bytes."
package disklimit

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dewarhq/dewar/usage"
)

// DefaultInterval is Thermos' DiskCollectorSettings.DISK_COLLECTION_INTERVAL.
const DefaultInterval = 60 * time.Second

// Exceeded is a sample above the reservation.
type Exceeded struct {
	Reserved int64 // bytes
	Used     int64 // bytes
}

// Message is Thermos' status message, word for word (two spaces included:
// resource_manager.py, ResourceManager.status).
func (e Exceeded) Message() string {
	return fmt.Sprintf("Disk limit exceeded.  Reserved %d bytes vs used %d bytes.", e.Reserved, e.Used)
}

// Config says what to watch.
type Config struct {
	Dir      string        // the task's sandbox
	Reserved int64         // bytes; <= 0: nothing to enforce
	Interval time.Duration // between samples; <= 0: DefaultInterval
	// Measure measures Dir; nil: Usage. A task's executor passes its
	// usage.SharedDisk's, so that one walk serves this and the checkpoint.
	Measure func(ctx context.Context, dir string) int64
	Log     *zap.Logger // nil: no logging
}

// Watch samples cfg.Dir now and then every cfg.Interval, each sample in
// this goroutine of its own, so that a slow walk delays only the next
// sample. The channel gets at most one Exceeded and is closed when Watch
// stops: after that value, or when ctx is done. With nothing reserved it
// is closed at once.
func Watch(ctx context.Context, cfg Config) <-chan Exceeded {
	out := make(chan Exceeded, 1)
	if cfg.Reserved <= 0 {
		close(out)
		return out
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Measure == nil {
		cfg.Measure = func(_ context.Context, dir string) int64 { return Usage(dir) }
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	go func() {
		defer close(out)
		tick := time.NewTicker(cfg.Interval)
		defer tick.Stop()
		for {
			used := cfg.Measure(ctx, cfg.Dir)
			cfg.Log.Debug("sandbox disk use", zap.String("dir", cfg.Dir), zap.Int64("used_bytes", used),
				zap.Int64("reserved_bytes", cfg.Reserved))
			// resource_manager.py: "if sample > self._max_disk".
			if used > cfg.Reserved {
				out <- Exceeded{Reserved: cfg.Reserved, Used: used}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// Usage is the bytes under dir as Thermos counts them (usage.FileBytes:
// twitter.common's dirutil.du, apparent sizes of the files, symlinked
// directories not followed).
func Usage(dir string) int64 { return usage.FileBytes(dir) }
