package observer

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	sampler "github.com/dewarhq/dewar/usage" // the executor's resource sampler; observer has its own usage type

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/checkpoint"
)

// Metrics are computed when scraped, from the index: the executors'
// samples in the checkpoints, and /proc or a disk walk only for a task
// without them. Nothing is sampled in the background (an idle observer
// costs nothing).
var (
	descTasks = prometheus.NewDesc("dewar_tasks", "Tasks on this agent by Mesos state (UNREADABLE: the checkpoint cannot be read).",
		[]string{"state"}, nil)
	descTaskInfo = prometheus.NewDesc("dewar_task_info", "One per task, with its job key and state.",
		[]string{"task_id", "role", "environment", "job", "instance", "state"}, nil)
	descAddresses = prometheus.NewDesc("dewar_task_addresses", "Addresses of a task's network, as the executor discovered them.",
		[]string{"task_id", "network", "interface"}, nil)
	descHealthy = prometheus.NewDesc("dewar_task_healthy", "1 when the task's health check passes, 0 when it failed or has not passed yet.",
		[]string{"task_id"}, nil)
	descMember = prometheus.NewDesc("dewar_task_serverset_member", "1 while the task is a member of the serverset at path, 0 once withdrawn.",
		[]string{"task_id", "path", "network"}, nil)
	descRuns = prometheus.NewDesc("dewar_process_runs", "Runs a process of a task has had.",
		[]string{"task_id", "process"}, nil)
	descCPU = prometheus.NewDesc("dewar_process_cpu_seconds_total", "CPU time of a running process run's tree (its session), as the executor last sampled it (else from /proc).",
		[]string{"task_id", "process"}, nil)
	descDisk = prometheus.NewDesc("dewar_task_disk_bytes", "Disk used by the task's run directory (allocated blocks, as du), as the executor last sampled it (else measured at most once a minute).",
		[]string{"task_id"}, nil)
	descRSS = prometheus.NewDesc("dewar_process_resident_memory_bytes", "Resident memory of a running process run's tree (its session), as the executor last sampled it (else from /proc).",
		[]string{"task_id", "process"}, nil)
)

type collector struct {
	index *Index
	disk  *diskCache
	usage *usageCache
	agent *agentStreams
	log   *zap.Logger
}

// Describe describes nothing: an "unchecked" collector, whose metrics
// depend on the tasks found at scrape time. (DescribeByCollect would scan
// the work dir and /proc when the collector is registered.)
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	tasks := c.index.Tasks()
	byState := map[string]int{}
	live := c.usage.lazy(c.log)
	for _, e := range tasks {
		ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(c.disk.of(e).Bytes), e.ID)
		t := e.Task
		if t == nil {
			byState["UNREADABLE"]++
			continue
		}
		byState[t.State()]++
		ch <- prometheus.MustNewConstMetric(descTaskInfo, prometheus.GaugeValue, 1,
			e.ID, t.Role, t.Environment, t.Job, strconv.Itoa(t.Instance), t.State())
		for _, n := range t.Networks {
			ch <- prometheus.MustNewConstMetric(descAddresses, prometheus.GaugeValue, float64(len(n.Addresses)), e.ID, n.Name, n.Interface)
		}
		if h := t.Health; h != nil {
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b2f(h.State == checkpoint.HealthHealthy), e.ID)
		}
		for _, s := range t.Serversets {
			ch <- prometheus.MustNewConstMetric(descMember, prometheus.GaugeValue, b2f(s.Joined), e.ID, s.Path, s.Network)
		}
		active := e.Active()
		for _, p := range t.Processes {
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, float64(len(p.Runs)), e.ID, p.Name)
			r := p.Last()
			if !active || r == nil || r.State != checkpoint.RunRunning || r.PID <= 0 || r.Start == nil {
				continue
			}
			u, ok := runUse(*r, active, live)
			if !ok {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, u.cpu, e.ID, p.Name)
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(u.rss), e.ID, p.Name)
		}
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(n), state)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type usage struct {
	start float64 // session leader's start, seconds since the epoch
	cpu   float64
	rss   int
	// sampled is when the executor measured it; zero: from /proc now.
	sampled time.Time
}

// sessions is the CPU and RSS of every session, by session id.
type sessions map[int]usage

// of is the usage of a running run: its session's, if the session leader
// is the run (the pid may have been reused since: the leader must have
// started when the run did).
func (s sessions) of(r checkpoint.Run) (usage, bool) {
	if r.State != checkpoint.RunRunning || r.PID <= 0 || r.Start == nil {
		return usage{}, false
	}
	u, ok := s[r.PID]
	if !ok || math.Abs(u.start-float64(r.Start.UnixMilli())/1000) > 5 {
		return usage{}, false
	}
	return u, true
}

// runUse is a run's CPU and RSS: the executor's last sample (in the
// checkpoint), else, for a running run of an active task, /proc's (an
// executor that does not sample, or before its first sample). A live
// process's /proc figures would be fresher, but preferring the sample
// spares the observer a /proc scan whenever every task has one.
func runUse(r checkpoint.Run, active bool, live func() sessions) (usage, bool) {
	if u := r.Usage; u != nil {
		return usage{cpu: u.CPUSeconds, rss: int(u.RSSBytes), sampled: u.Time}, true
	}
	if !active || live == nil {
		return usage{}, false
	}
	return live().of(r)
}

// lazy is get deferred to the first call, at most one scan per request.
func (c *usageCache) lazy(log *zap.Logger) func() sessions {
	var s sessions
	return func() sessions {
		if s == nil {
			s = c.get(log)
		}
		return s
	}
}

// usageCache keeps one /proc scan for a few seconds: a page view and a
// scrape close together share it.
type usageCache struct {
	mu sync.Mutex
	at time.Time
	s  sessions
}

const usageTTL = 5 * time.Second

func (c *usageCache) get(log *zap.Logger) sessions {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s == nil || time.Since(c.at) >= usageTTL {
		c.s, c.at = sessionUsage(log), time.Now()
	}
	return c.s
}

// sessionUsage sums CPU and RSS of every process by session (the
// executor's sampler over the whole machine). A process run is `bash -c`
// in a session of its own whose id is the run's pid (package sandbox), so
// this is each run's whole tree (less what left the session). One /proc
// scan.
func sessionUsage(log *zap.Logger) sessions {
	smp, err := sampler.NewMachineSampler("")
	if err != nil {
		log.Debug("no /proc", zap.Error(err))
		return sessions{}
	}
	trees, err := smp.Sessions(context.Background(), nil)
	if err != nil {
		log.Debug("listing /proc", zap.Error(err))
		return sessions{}
	}
	out := make(sessions, len(trees))
	for sid, t := range trees {
		u := usage{cpu: t.CPUSeconds, rss: int(t.RSSBytes)}
		if !t.LeaderStart.IsZero() {
			u.start = float64(t.LeaderStart.UnixMilli()) / 1000
		}
		out[sid] = u
	}
	return out
}

// metricsHandler serves /metrics: the tasks' metrics and the observer's
// own process and Go runtime metrics.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{index: s.index, disk: &s.disk, usage: &s.usage, agent: &s.agent, log: s.log},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.log)})
}
