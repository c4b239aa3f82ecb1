package observer

import (
	"context"
	"sync"
	"time"

	sampler "github.com/dewarhq/dewar/usage" // the executor's resource sampler; observer has its own usage()
)

// Disk use of a task's run directory, as `du` counts it (allocated
// blocks, symlinks not followed), computed on demand and kept for
// diskTTL, for a task whose executor records no sample (package usage). A walk stops after
// diskMaxEntries entries so that one huge sandbox cannot stall a page.
const (
	diskTTL        = time.Minute
	diskMaxEntries = 200_000
)

type diskUse struct {
	Bytes    int64
	Complete bool // false: the walk stopped at diskMaxEntries
	at       time.Time
}

type diskCache struct {
	mu sync.Mutex
	m  map[string]diskUse
}

func (c *diskCache) get(dir string) diskUse {
	c.mu.Lock()
	d, ok := c.m[dir]
	c.mu.Unlock()
	if ok && time.Since(d.at) < diskTTL {
		return d
	}
	d = measureDisk(dir)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]diskUse{}
	}
	c.m[dir] = d
	c.mu.Unlock()
	return d
}

// of is a task's disk use: the executor's last sample, else measured here.
func (c *diskCache) of(e *Entry) diskUse {
	if e.Task != nil && e.Task.Disk != nil {
		d := e.Task.Disk
		return diskUse{Bytes: d.Bytes, Complete: !d.Truncated, at: d.Time}
	}
	return c.get(e.RunDir)
}

// forget drops the entries of run directories no longer indexed.
func (c *diskCache) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir := range c.m {
		if !keep[dir] {
			delete(c.m, dir)
		}
	}
}

// measureDisk counts dir as du does (usage.DiskUse, the executor's own
// sampler, package usage), at most diskMaxEntries entries.
func measureDisk(dir string) diskUse {
	at := time.Now()
	u := sampler.DiskUse(context.Background(), dir, diskMaxEntries)
	return diskUse{Bytes: u.Bytes, Complete: !u.Truncated, at: at}
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return formatInt(n) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return formatFloat(float64(n)/float64(div)) + " " + string("KMGTPE"[exp]) + "iB"
}
