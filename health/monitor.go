package health

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// SnoozeFile is the file in the sandbox root that suspends health checks
// while it exists (each check then counts as a success, as in Thermos).
const SnoozeFile = ".healthchecksnooze"

// MonitorConfig is HealthCheckConfig with durations, so tests can run fast.
type MonitorConfig struct {
	InitialInterval         time.Duration // grace period; 0 forgives no failure (initial_interval_secs 0 in Thermos)
	Interval                time.Duration // between checks; must be > 0
	MaxConsecutiveFailures  int
	MinConsecutiveSuccesses int    // 0: the first success (as 1, minus its reserved attempt)
	SnoozePath              string // full path of the snooze file; "" disables snoozing
}

// State is what the Monitor has concluded.
type State int

// The states a Monitor reports. Starting is never sent; it is where every
// Monitor begins.
const (
	Starting  State = iota // TASK_STARTING: not yet enough successes
	Healthy                // TASK_RUNNING
	Unhealthy              // TASK_FAILED
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Event is a change of the Monitor's state. Reason is set for Unhealthy: the
// failing check's error, or that attempts ran out. The task's failure
// message is ReasonPrefix + ": " + Reason.
type Event struct {
	State  State
	Reason string
}

// ReasonPrefix starts the message of a task failed by its health check.
const ReasonPrefix = "failed health check"

// Monitor runs a Checker with Thermos' timing rules
// (ThreadedHealthChecker in aurora/executor/common/health_checker.py):
//   - the first check runs at once, then one every Interval;
//   - failures of the first ceil(InitialInterval/Interval) attempts are
//     ignored (Thermos counts attempts, not time, so a slow check costs no
//     attempt);
//   - MinConsecutiveSuccesses successes in a row make the task Healthy;
//   - more than MaxConsecutiveFailures failures in a row after the grace
//     attempts make it Unhealthy, before or after it became Healthy;
//   - a task that has not become Healthy within (grace plus
//     MaxConsecutiveFailures plus MinConsecutiveSuccesses) attempts is
//     Unhealthy, and so is one that can
//     no longer collect enough successes in the attempts left.
//
// Events sends Healthy at most once, then Unhealthy at most once, then is
// closed; the Monitor stops after Unhealthy.
type Monitor struct {
	checker Checker
	cfg     MonitorConfig
	log     *zap.Logger
	events  chan Event
	cancel  context.CancelFunc
	done    chan struct{}

	mu    sync.Mutex
	state State // guarded by mu
}

// StartMonitor starts checking; cancel ctx or call Close to stop.
func StartMonitor(ctx context.Context, c Checker, cfg MonitorConfig, log *zap.Logger) (*Monitor, error) {
	if c == nil {
		return nil, errors.New("health monitor: no checker given")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("health monitor: interval must be > 0, got %v", cfg.Interval)
	}
	if cfg.InitialInterval < 0 {
		cfg.InitialInterval = 0
	}
	// 0 is Aurora's to give: the first success makes the task healthy,
	// and no attempt is reserved for successes (health_checker.py).
	if cfg.MinConsecutiveSuccesses < 0 {
		cfg.MinConsecutiveSuccesses = 0
	}
	if cfg.MaxConsecutiveFailures < 0 {
		cfg.MaxConsecutiveFailures = 0
	}
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Monitor{
		checker: c,
		cfg:     cfg,
		log:     log,
		events:  make(chan Event, 2), // at most Healthy then Unhealthy: sends never block
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go m.run(ctx)
	return m, nil
}

// Events delivers the state changes; it is closed when the Monitor stops.
func (m *Monitor) Events() <-chan Event { return m.events }

// State is the current conclusion.
func (m *Monitor) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Close stops the checks and waits for a check in flight to end. It is
// safe to call more than once.
func (m *Monitor) Close() {
	m.cancel()
	<-m.done
}

func (m *Monitor) emit(e Event) {
	m.mu.Lock()
	m.state = e.State
	m.mu.Unlock()
	m.events <- e
}

// judge holds the counters of ThreadedHealthChecker; it has no clock, so
// the rules are tested by feeding it results.
type judge struct {
	forgiving      int // attempts whose failures are ignored
	maxToRunning   int // attempts allowed before the task must be healthy
	maxFailures    int
	minSuccesses   int
	attempts       int
	successes      int
	failures       int
	running        bool
	becameHealthy  bool // set by record when this result made the task healthy
	unhealthyCause string
}

func newJudge(cfg MonitorConfig) *judge {
	forgiving := int(math.Ceil(float64(cfg.InitialInterval) / float64(cfg.Interval)))
	return &judge{
		forgiving:    forgiving,
		maxToRunning: forgiving + cfg.MaxConsecutiveFailures + cfg.MinConsecutiveSuccesses,
		maxFailures:  cfg.MaxConsecutiveFailures,
		minSuccesses: cfg.MinConsecutiveSuccesses,
	}
}

// expired reports, before an attempt, that the task ran out of attempts to
// become healthy.
func (j *judge) expired() bool {
	return !j.running && j.attempts > j.maxToRunning
}

// record takes one result; it returns false when the task is unhealthy.
func (j *judge) record(err error) bool {
	j.becameHealthy = false
	if j.attempts <= j.maxToRunning {
		j.attempts++
	}
	if err == nil {
		j.successes++
		j.failures = 0
		if !j.running && j.successes >= j.minSuccesses {
			j.running = true
			j.becameHealthy = true
		}
		return true
	}
	j.successes = 0
	if j.attempts <= j.forgiving {
		return true
	}
	if !j.running {
		left := j.maxToRunning - j.attempts
		if left > 1 && j.minSuccesses > left {
			j.unhealthyCause = err.Error()
			return false
		}
	}
	j.failures++
	if j.failures > j.maxFailures {
		j.unhealthyCause = err.Error()
		return false
	}
	return true
}

func (m *Monitor) run(ctx context.Context) {
	defer close(m.done)
	defer close(m.events)
	j := newJudge(m.cfg)
	snoozed := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if j.expired() {
			m.log.Warn("health check: exhausted attempts before becoming healthy", zap.Int("attempts", j.attempts))
			m.emit(Event{State: Unhealthy, Reason: "not enough successful health checks in time"})
			return
		}
		err := m.checkOnce(ctx, &snoozed)
		if ctx.Err() != nil {
			return
		}
		if !j.record(err) {
			m.log.Warn("health check: failure limit reached", zap.Error(err), zap.Int("attempts", j.attempts))
			m.emit(Event{State: Unhealthy, Reason: j.unhealthyCause})
			return
		}
		if err != nil {
			m.log.Info("health check failed", zap.Error(err), zap.Int("attempt", j.attempts),
				zap.Bool("ignored", j.attempts <= j.forgiving), zap.Int("consecutive_failures", j.failures))
		}
		if j.becameHealthy {
			m.log.Info("health check: task is healthy", zap.Int("attempts", j.attempts))
			m.emit(Event{State: Healthy})
		}
		timer.Reset(m.cfg.Interval)
	}
}

// checkOnce runs the checker unless the snooze file exists.
func (m *Monitor) checkOnce(ctx context.Context, snoozed *bool) error {
	if m.cfg.SnoozePath != "" {
		fi, err := os.Stat(m.cfg.SnoozePath)
		now := err == nil && fi.Mode().IsRegular()
		if now != *snoozed {
			m.log.Info("health check snooze file changed", zap.String("path", m.cfg.SnoozePath), zap.Bool("snoozed", now))
			*snoozed = now
		}
		if now {
			return nil
		}
	}
	return m.checker.Check(ctx)
}
