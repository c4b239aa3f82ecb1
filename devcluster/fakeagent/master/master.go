package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/chans"
	"github.com/dewarhq/dewar/internal/taskstate"
)

// Config tunes the master; the zero value gives Mesos-like defaults.
type Config struct {
	// Heartbeat is the interval of HEARTBEAT events (Mesos: 15s,
	// DEFAULT_HEARTBEAT_INTERVAL in src/master/constants.hpp).
	Heartbeat time.Duration
	// DefaultRefuse is how long declined resources are withheld from a
	// framework when its DECLINE carries no refuse_seconds. Mesos uses 5s
	// (Filters.refuse_seconds' default, include/mesos/v1/mesos.proto); a
	// single-node demo wants its offers back sooner (ours).
	DefaultRefuse time.Duration
	// OfferInterval is how often the master looks for resources to offer
	// (refuse filters expiring); state changes also trigger a look at once.
	// (Mesos' allocator runs every --allocation_interval, 1s by default.)
	OfferInterval time.Duration
	// AgentTimeout bounds each call into the Agent.
	AgentTimeout time.Duration
	// UpdateRetry is how long an update may stay unacknowledged before it
	// is sent again, as the agent's status update manager retries (Mesos:
	// 10s, STATUS_UPDATE_RETRY_INTERVAL_MIN in src/slave/constants.hpp,
	// used by TaskStatusUpdateManager; Mesos then backs off, the fake does
	// not).
	UpdateRetry time.Duration
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.DefaultRefuse <= 0 {
		c.DefaultRefuse = time.Second
	}
	if c.OfferInterval <= 0 {
		c.OfferInterval = 500 * time.Millisecond
	}
	if c.AgentTimeout <= 0 {
		c.AgentTimeout = 2 * time.Minute
	}
	if c.UpdateRetry <= 0 {
		c.UpdateRetry = 10 * time.Second
	}
	return c
}

// Master serves the v1 scheduler API for one Agent.
type Master struct {
	log   *zap.Logger
	agent Agent
	info  mesos.AgentInfo // read once: the agent may call Update holding its own locks
	cfg   Config

	ctx    context.Context // cancelled by Close; parent of every agent call
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
	kick   chans.Wake // "state changed, try to offer"

	mu sync.Mutex // mu guards the following fields
	// frameworks by id; a framework outlives its subscription (failover).
	frameworks map[string]*framework
	// tornDown remembers removed frameworks so late updates are dropped
	// instead of resurrecting them, and their SUBSCRIBE is refused
	// (Mesos' completed frameworks: Master::validateFramework).
	tornDown map[string]bool
	offers   map[string]*offer // outstanding offers by id
	// tasks the master knows: from launch until the framework acknowledges
	// the task's terminal update (Master::acknowledge then removes it).
	tasks map[taskKey]*task
	// executors holds the resources of executors with live tasks; an
	// executor's resources count once however many tasks it runs.
	executors map[taskKey]*executorUse
}

type taskKey struct{ framework, id string }

type framework struct {
	id   string
	info mesos.FrameworkInfo
	// idOnly: info holds only the id, the framework having come back
	// through its tasks' updates before its scheduler subscribed (as
	// Master::_subscribe's recoverFramework); its next SUBSCRIBE supplies
	// the rest.
	idOnly     bool
	sub        *subscription // nil while disconnected
	refuseTill time.Time
	suppressed bool
	// unacked holds forwarded updates (those with a uuid) in arrival order
	// until the framework acknowledges them.
	unacked []pending
}

type pending struct {
	status mesos.TaskStatus
	sent   time.Time // zero: not sent yet (no subscription)
}

type offer struct {
	id        string
	framework string
	resources mesos.Resources
}

type task struct {
	framework string
	info      mesos.TaskInfo
	executor  string // executor id, "" for a command task
	resources mesos.Resources
	latest    mesos.TaskStatus
	done      bool // a terminal state was seen; resources are released
}

type executorUse struct {
	resources mesos.Resources
	live      int
}

// New returns a Master for agent; call Close when done. It reads
// agent.Info once, here, so the agent may call Update while holding locks
// its Info would need.
func New(log *zap.Logger, agent Agent, cfg Config) *Master {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Master{
		log:        log.Named("master"),
		agent:      agent,
		info:       agent.Info(),
		cfg:        cfg.withDefaults(),
		ctx:        ctx,
		cancel:     cancel,
		kick:       chans.NewWake(),
		frameworks: map[string]*framework{},
		tornDown:   map[string]bool{},
		offers:     map[string]*offer{},
		tasks:      map[taskKey]*task{},
		executors:  map[taskKey]*executorUse{},
	}
	m.wg.Add(1)
	go m.run()
	return m
}

// Close ends every subscription and waits for the master's goroutines
// (including agent calls in flight). It is idempotent.
func (m *Master) Close() error {
	m.closed.Do(func() {
		m.cancel()
		m.mu.Lock()
		for _, fw := range m.frameworks {
			m.dropSubscriptionLocked(fw)
		}
		m.mu.Unlock()
	})
	m.wg.Wait()
	return nil
}

func (m *Master) run() {
	defer m.wg.Done()
	heartbeat := time.NewTicker(m.cfg.Heartbeat)
	defer heartbeat.Stop()
	offerTick := time.NewTicker(m.cfg.OfferInterval)
	defer offerTick.Stop()
	retry := time.NewTicker(m.cfg.UpdateRetry / 2)
	defer retry.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-heartbeat.C:
			m.mu.Lock()
			for _, fw := range m.frameworks {
				m.sendLocked(fw, &scheduler.Event{Type: scheduler.Event_HEARTBEAT})
			}
			m.mu.Unlock()
		case <-offerTick.C:
			m.allocate()
		case <-retry.C:
			m.retryUpdates()
		case <-m.kick:
			m.allocate()
		}
	}
}

// kickAllocator asks the run loop to look for offers without blocking.
func (m *Master) kickAllocator() { m.kick.Signal() }

// goAgent runs an agent call in the background, bounded by AgentTimeout and
// Close.
func (m *Master) goAgent(what string, f func(ctx context.Context) error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.AgentTimeout)
		defer cancel()
		if err := f(ctx); err != nil {
			m.log.Warn("agent call failed", zap.String("call", what), zap.Error(err))
		}
	}()
}

// Update receives a status update the agent has checkpointed, forwards it
// to the framework and keeps it until acknowledged (when it has a uuid).
func (m *Master) Update(frameworkID string, st mesos.TaskStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updateLocked(frameworkID, st)
}

func (m *Master) updateLocked(frameworkID string, st mesos.TaskStatus) {
	key := taskKey{frameworkID, st.TaskID.Value}
	if t, ok := m.tasks[key]; ok {
		t.latest = st
		if isTerminal(st.GetState()) && !t.done {
			m.releaseLocked(key, t)
		}
		if isTerminal(st.GetState()) && len(st.UUID) == 0 {
			// No acknowledgement will come for the master's own terminal
			// update: the task goes at once, as Master::__removeSlave
			// does after such an update (updateTask, removeTask).
			delete(m.tasks, key)
		}
	}
	if m.tornDown[frameworkID] {
		m.log.Info("dropping update of a torn-down framework",
			zap.String("framework", frameworkID), zap.String("task", st.TaskID.Value))
		return
	}
	fw, ok := m.frameworks[frameworkID]
	if !ok {
		// After a restart of the fake agent its executors come back before
		// their scheduler: keep the framework so it can re-subscribe with
		// its id and receive what it missed.
		fw = &framework{id: frameworkID, info: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: frameworkID}}, idOnly: true}
		m.frameworks[frameworkID] = fw
	}
	if len(st.UUID) > 0 {
		p := pending{status: st}
		if fw.sub != nil {
			p.sent = time.Now()
		}
		fw.unacked = append(fw.unacked, p)
	}
	m.sendLocked(fw, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
}

// retryUpdates sends again what a subscribed framework has left
// unacknowledged for UpdateRetry.
func (m *Master) retryUpdates() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for _, fw := range m.frameworks {
		if fw.sub == nil {
			continue
		}
		for i := range fw.unacked {
			p := &fw.unacked[i]
			if now.Sub(p.sent) < m.cfg.UpdateRetry {
				continue
			}
			p.sent = now
			m.sendLocked(fw, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: p.status}})
			if fw.sub == nil {
				break // the stream was dropped as full
			}
		}
	}
}

// Recover tells a freshly started master about a task the agent is still
// running (agent recovery), so its resources are accounted for and
// reconciliation answers with its state.
func (m *Master) Recover(fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, ti mesos.TaskInfo, latest mesos.TaskStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := fw.GetID().GetValue()
	if _, ok := m.frameworks[id]; !ok && !m.tornDown[id] {
		m.frameworks[id] = &framework{id: id, info: fw}
	}
	t := m.addTaskLocked(id, exec, ti)
	t.latest = latest
	if isTerminal(latest.GetState()) {
		m.releaseLocked(taskKey{id, ti.TaskID.Value}, t)
	}
}

// addTaskLocked records a launched task and the resources it holds.
func (m *Master) addTaskLocked(fwID string, exec *mesos.ExecutorInfo, ti mesos.TaskInfo) *task {
	t := &task{
		framework: fwID,
		info:      ti,
		resources: unallocated(ti.Resources),
		latest:    m.masterStatus(ti.TaskID.Value, mesos.TASK_STAGING, 0, ""),
	}
	if exec != nil {
		t.executor = exec.ExecutorID.Value
		ek := taskKey{fwID, t.executor}
		use, ok := m.executors[ek]
		if !ok {
			use = &executorUse{resources: unallocated(exec.Resources)}
			m.executors[ek] = use
		}
		use.live++
	}
	m.tasks[taskKey{fwID, ti.TaskID.Value}] = t
	return t
}

// releaseLocked frees a task's resources (and its executor's, when this was
// the executor's last live task) and lets the allocator offer them again.
func (m *Master) releaseLocked(key taskKey, t *task) {
	t.done = true
	if t.executor != "" {
		ek := taskKey{key.framework, t.executor}
		if use, ok := m.executors[ek]; ok {
			use.live--
			if use.live <= 0 {
				delete(m.executors, ek)
			}
		}
	}
	m.kickAllocator()
}

// masterStatus is an update the master itself generates, SOURCE_MASTER. It
// carries no uuid: the master sends it without a status update manager
// behind it, and the scheduler API says updates without a uuid need no
// acknowledgement (include/mesos/v1/scheduler/scheduler.proto, Update).
func (m *Master) masterStatus(taskID string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) mesos.TaskStatus {
	agentID := m.agentID()
	now := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID:    mesos.TaskID{Value: taskID},
		State:     state.Enum(),
		Source:    mesos.SOURCE_MASTER.Enum(),
		AgentID:   &mesos.AgentID{Value: agentID},
		Timestamp: &now,
	}
	if reason != 0 {
		st.Reason = reason.Enum()
	}
	if msg != "" {
		st.Message = &msg
	}
	return st
}

func (m *Master) agentID() string { return m.info.GetID().GetValue() }

// sendLocked queues ev on fw's stream, if it has one.
func (m *Master) sendLocked(fw *framework, ev *scheduler.Event) {
	if fw.sub == nil {
		return
	}
	if !fw.sub.Send(ev) {
		// A scheduler that does not read its stream loses it (ours: Mesos
		// buffers without bound); it re-subscribes and receives its
		// unacknowledged updates again.
		m.log.Warn("event stream full, disconnecting framework", zap.String("framework", fw.id))
		m.dropSubscriptionLocked(fw)
	}
}

func (m *Master) dropSubscriptionLocked(fw *framework) {
	if fw.sub == nil {
		return
	}
	fw.sub.Close()
	fw.sub = nil
	// Offers to a disconnected framework are rescinded (here: forgotten),
	// as Master::deactivate(Framework*) removes them.
	for id, o := range m.offers {
		if o.framework == fw.id {
			delete(m.offers, id)
		}
	}
	m.kickAllocator()
}

func isTerminal(s mesos.TaskState) bool { return taskstate.Terminal(s.String()) }

func unallocated(rs []mesos.Resource) mesos.Resources {
	out := mesos.Resources(rs).Clone()
	for i := range out {
		out[i].AllocationInfo = nil
	}
	return out
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func sortedFrameworks(fws map[string]*framework) []*framework {
	out := make([]*framework, 0, len(fws))
	for _, fw := range fws {
		out = append(out, fw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
