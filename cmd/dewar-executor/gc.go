package main

import "runtime/debug"

// defaultGCPercent is the executor's GOGC unless its environment sets one
// (an ExecutorInfo's command environment can).
//
// The executor allocates a little all the time (health checks, usage
// samples, status updates, ZooKeeper pings) while its live heap stays about
// 3 MB, most of it go-zookeeper's two 1.5 MiB connection buffers, of which
// only the first pages are ever touched. At Go's default GOGC=100 the heap
// goal is twice that live heap, so between collections about 3 MiB of
// garbage gets touched and stays resident: VmRSS climbs from 13.8 MiB after
// 30 s to 16.8 MiB after 3.5 min (BenchmarkExecutorFootprint; README,
// "Executor overhead to reserve in Aurora"). At 25 it stays near 14 MiB;
// the extra collections (one every 15 s or so, each over a heap of a few
// MB) do not show in the executor's CPU time.
const defaultGCPercent = 25

// tuneGC sets the executor's GC percent unless GOGC is in the environment
// (lookup is os.LookupEnv); it says whether it did.
func tuneGC(lookup func(string) (string, bool)) bool {
	if _, ok := lookup("GOGC"); ok {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	return true
}
