package executor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
)

// Executor is one dewar executor process's conversation with its agent.
type Executor struct {
	cfg      Config
	log      *zap.Logger
	sender   calls.Sender
	launcher Launcher

	wake     chans.Wake    // updates may be waiting to be sent
	exit     chan struct{} // closed when the executor has nothing left to do
	exitOnce sync.Once

	// mu guards the following fields.
	mu         sync.Mutex
	session    int  // incremented for every SUBSCRIBE call
	subscribed bool // SUBSCRIBED received on the current stream
	env        *LaunchEnv
	tasks      map[string]*taskEntry
	order      []string // task ids in launch order, for SUBSCRIBE
	unacked    []*pendingUpdate
	changed    chan struct{} // closed and replaced by changedLocked
	shutdown   bool
}

type taskEntry struct {
	info     mesos.TaskInfo
	task     Task // nil for tasks refused at launch
	terminal bool
	acked    bool // some update of this task was acknowledged
}

type pendingUpdate struct {
	update      executor.Call_Update
	uuid        string
	sentSession int // session in which the agent got it (SUBSCRIBE or UPDATE)
}

// New returns an executor for cfg; Run starts it.
func New(cfg Config, launcher Launcher, log *zap.Logger) *Executor {
	return &Executor{
		cfg:      cfg,
		log:      log.With(zap.String("framework_id", cfg.FrameworkID), zap.String("executor_id", cfg.ExecutorID)),
		sender:   newSender(cfg),
		launcher: launcher,
		wake:     chans.NewWake(),
		exit:     make(chan struct{}),
		tasks:    map[string]*taskEntry{},
		changed:  make(chan struct{}),
	}
}

// Errors Run ends with when it gives up on the agent.
var (
	ErrAgentGone     = errors.New("agent disconnected and the framework does not checkpoint (MESOS_CHECKPOINT=0): tasks killed")
	ErrRecoveryTimed = errors.New("agent did not come back within MESOS_RECOVERY_TIMEOUT: tasks killed")
	// ErrSubscribeRefused wraps the agent's answer when it refuses SUBSCRIBE
	// for good: retrying would only keep the executor and its agent busy
	// until the agent's --executor_registration_timeout.
	ErrSubscribeRefused = errors.New("the agent refused SUBSCRIBE (check MESOS_SLAVE_PID for the executor socket's path, the authentication token, and that the agent still knows this framework and executor): tasks killed")
	errResubscribe      = errors.New("agent sent ERROR; resubscribing")
)

// Run subscribes and serves events until every task has ended and every
// update is acknowledged, SHUTDOWN has been handled, or the agent is gone
// for good. Cancelling ctx kills the tasks.
func (e *Executor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); e.sendLoop(ctx) }()
	go func() { defer wg.Done(); e.ackDeadline(ctx) }()

	// The recovery clock runs from the first failure after the agent was
	// last reachable, and stops whenever the agent answers at all (a 503
	// while it recovers counts): libmesos sets its recovery timer once per
	// disconnection and cancels it on connect (src/executor/executor.cpp,
	// MesosProcess::disconnected and ::connected).
	var disconnectedAt time.Time
	for {
		reached, err := e.stream(ctx)
		if e.exited() {
			// Killed tasks end within killGrace; give a straggler the
			// margin so that nothing outlives the executor. Without a
			// shutdown in progress nobody is waiting to kill us: give the
			// teardown (withdrawal, ZooKeeper close) the time it needs.
			wait := e.cfg.ShutdownGracePeriod - e.killGrace()
			if !e.shuttingDown() {
				wait = max(wait, teardownWait)
			}
			e.waitTeardown(wait)
			return nil
		}
		if ctx.Err() != nil {
			e.killAll("executor stopped")
			e.waitTasks(e.cfg.ShutdownGracePeriod)
			return ctx.Err()
		}
		if reached {
			disconnectedAt = time.Time{}
		}
		if subscribeRefused(err) {
			e.log.Error("agent refused SUBSCRIBE", zap.Error(err))
			e.killAll("the agent refused SUBSCRIBE")
			e.waitTasks(e.cfg.ShutdownGracePeriod)
			return fmt.Errorf("%w: %w", ErrSubscribeRefused, err)
		}
		if errors.Is(err, errResubscribe) {
			e.log.Warn("resubscribing after agent error")
			e.backoff(ctx)
			continue
		}
		e.log.Warn("disconnected from agent", zap.Error(err))
		if !e.cfg.Checkpoint {
			e.killAll("agent disconnected and the framework does not checkpoint")
			e.waitTasks(e.cfg.ShutdownGracePeriod)
			return ErrAgentGone
		}
		if disconnectedAt.IsZero() {
			disconnectedAt = time.Now()
		}
		if time.Since(disconnectedAt) > e.cfg.RecoveryTimeout {
			e.log.Error("agent did not come back; killing the task", zap.Duration("recovery_timeout", e.cfg.RecoveryTimeout))
			e.killAll("agent did not come back within the recovery timeout")
			e.waitTasks(e.cfg.ShutdownGracePeriod)
			return ErrRecoveryTimed
		}
		e.backoff(ctx)
	}
}

// maxResubscribeWait bounds the wait between two SUBSCRIBE attempts, as
// Mesos' own executors retry every second (src/launcher/executor.cpp,
// doReliableRegistration).
const maxResubscribeWait = time.Second

// resubscribeWait is how long to wait before the next SUBSCRIBE: random in
// [0, min(MESOS_SUBSCRIPTION_BACKOFF_MAX, 1s)]. The randomness spreads the
// executors of a restarting agent (libmesos picks the same range,
// src/executor/executor.cpp MesosProcess::backoff); the bound keeps every
// try inside the agent's --executor_reregistration_timeout, which is what
// MESOS_SUBSCRIPTION_BACKOFF_MAX carries: an executor that has not
// resubscribed by then is destroyed (src/slave/slave.cpp,
// Slave::reregisterExecutorTimeout).
func resubscribeWait(backoffMax time.Duration, rnd func(int64) int64) time.Duration {
	m := min(backoffMax, maxResubscribeWait)
	if m <= 0 {
		return 0
	}
	return time.Duration(rnd(int64(m) + 1))
}

// backoff waits resubscribeWait.
func (e *Executor) backoff(ctx context.Context) {
	t := time.NewTimer(resubscribeWait(e.cfg.SubscriptionBackoffMax, mrand.Int64N))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-e.exit:
	}
}

// stream makes one SUBSCRIBE call and handles its events until the stream
// ends. It reports whether the agent answered at all.
func (e *Executor) stream(ctx context.Context) (reached bool, err error) {
	sctx, cancel := chans.WithCancelOnClose(ctx, e.exit)
	defer cancel()

	call := e.subscribeCall()
	resp, err := e.sender.Send(sctx, calls.NonStreaming(call))
	if err != nil {
		return agentAnswered(err), fmt.Errorf("subscribe to agent: %w", err)
	}
	defer resp.Close()
	defer e.setSubscribed(false)
	for {
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			return true, fmt.Errorf("event stream: %w", err)
		}
		if err := e.handle(ctx, &ev); err != nil {
			return true, err
		}
	}
}

// subscribeCall builds SUBSCRIBE with every unacknowledged task and update:
// the agent never re-sends them, so they would be lost otherwise.
func (e *Executor) subscribeCall() *executor.Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.session++
	e.subscribed = false
	var tasks []mesos.TaskInfo
	for _, id := range e.order {
		if t := e.tasks[id]; !t.acked {
			tasks = append(tasks, t.info)
		}
	}
	var updates []executor.Call_Update
	for _, u := range e.unacked {
		if !ValidStatusUUID(u.update.Status.UUID) {
			// Never: newUUID makes every UUID. Leaving it out keeps a bug
			// here from crashing the agent.
			e.log.Error("bug: leaving an update with an invalid UUID out of SUBSCRIBE", zap.String("task_id", u.update.Status.TaskID.Value))
			continue
		}
		updates = append(updates, u.update)
		u.sentSession = e.session
	}
	e.log.Info("subscribing", zap.Int("unacknowledged_tasks", len(tasks)), zap.Int("unacknowledged_updates", len(updates)))
	return calls.Subscribe(tasks, updates)
}

func (e *Executor) setSubscribed(v bool) {
	e.mu.Lock()
	e.subscribed = v
	e.mu.Unlock()
	if v {
		e.poke()
	}
}

func (e *Executor) poke() { e.wake.Signal() }

func (e *Executor) exited() bool {
	select {
	case <-e.exit:
		return true
	default:
		return false
	}
}

func (e *Executor) finish(why string) {
	e.exitOnce.Do(func() {
		e.log.Info("executor done", zap.String("why", why))
		close(e.exit)
	})
}

// Done is closed when the executor has nothing left to do.
func (e *Executor) Done() <-chan struct{} { return e.exit }

// newUUID returns a random (version 4) RFC 4122 UUID for status.uuid. The
// version bits matter: the agent parses the UUID with stout's
// UUID::fromBytes, which refuses one whose version is unknown.
func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return b
}

// ValidStatusUUID reports whether the agent accepts b as status.uuid:
// stout's UUID::fromBytes (3rdparty/stout/include/stout/uuid.hpp) wants 16
// bytes whose version, the high nibble of byte 6 (boost::uuids::uuid::
// version), is 1 to 5. The HTTP layer answers 400 to an UPDATE that fails
// this (src/common/validation.cpp, executor::call::validate), and the
// agent aborts on one inside SUBSCRIBE (src/slave/slave.cpp,
// Slave::addPendingTaskStatus calls fromBytes(...).get()).
func ValidStatusUUID(b []byte) bool {
	if len(b) != 16 {
		return false
	}
	v := b[6] >> 4
	return v >= 1 && v <= 5
}
