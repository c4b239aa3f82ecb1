package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/internal/chans"
)

// Config configures a running stub.
type Config struct {
	// Master is the master (or dewar-agent) as host:port or URL.
	Master        string
	FrameworkName string // default "dewar-scheduler"
	User          string // default: the current user
	Policy        Policy
	Executor      ExecutorSettings
	Store         *Store
	// ControlAddr is where the stub serves its control endpoint (kill);
	// default 127.0.0.1:0. The chosen address is recorded in the store.
	ControlAddr string
	// RelaunchDelay is how long a service instance stays down before it is
	// launched again (default 5s).
	RelaunchDelay time.Duration
	Log           *zap.Logger
}

// SchedulerURL turns --master into the scheduler API endpoint.
func SchedulerURL(master string) string {
	u := strings.TrimSuffix(master, "/")
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	if !strings.HasSuffix(u, "/api/v1/scheduler") {
		u += "/api/v1/scheduler"
	}
	return u
}

// Framework runs one job.
type Framework struct {
	cfg     Config
	log     *zap.Logger
	job     *aurora.MesosJob
	jobJSON []byte
	caller  calls.Caller

	mu sync.Mutex // mu guards the following fields
	// fwID is the framework id Mesos gave (kept in the store for failover).
	fwID string
	// current is the latest task of each instance, state its last state.
	current map[int]*TaskRecord
	// killed holds the instances killed on purpose; Meta.Killed keeps
	// them across restarts of `run`.
	killed     map[int]bool
	subscribed bool
	done       chan struct{} // closed when the job has nothing left to run
	doneOnce   sync.Once
}

// New prepares the stub for job (as parsed from jobJSON). It refuses a job
// the policy does not allow, before anything is launched.
func New(cfg Config, job *aurora.MesosJob, jobJSON []byte) (*Framework, error) {
	if err := cfg.Policy.Check(job); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("scheduler: no store")
	}
	if cfg.Executor.Command == "" {
		return nil, errors.New("no executor command; pass --executor-command PATH (dewar-executor on the agent)")
	}
	if cfg.FrameworkName == "" {
		cfg.FrameworkName = "dewar-scheduler"
	}
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	if cfg.ControlAddr == "" {
		cfg.ControlAddr = "127.0.0.1:0"
	}
	if cfg.RelaunchDelay <= 0 {
		cfg.RelaunchDelay = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	f := &Framework{
		cfg: cfg, job: job, jobJSON: jobJSON,
		log:     cfg.Log.With(zap.String("job", jobKey(job))),
		current: map[int]*TaskRecord{},
		killed:  map[int]bool{},
		done:    make(chan struct{}),
	}
	meta, err := cfg.Store.Meta()
	if err != nil {
		return nil, err
	}
	f.fwID = meta.FrameworkID
	for _, i := range meta.Killed {
		f.killed[i] = true
	}
	recs, err := cfg.Store.Tasks()
	if err != nil {
		return nil, err
	}
	for i, r := range Latest(recs) {
		r := r
		f.current[i] = &r
	}
	err = cfg.Store.UpdateMeta(func(m *Meta) { m.JobJSON = jobJSON })
	if err != nil {
		return nil, err
	}
	cli := httpcli.New(
		httpcli.Endpoint(SchedulerURL(cfg.Master)),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(30*time.Second))),
	)
	f.caller = httpsched.NewCaller(cli, httpsched.AllowReconnection(true))
	return f, nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return "nobody"
}

// Run subscribes (again after every disconnection) and runs the job until
// ctx ends or nothing is left to run (a finished batch job, or every
// instance killed). Tasks outlive Run: a new Run with the same store
// re-subscribes as the same framework and reconciles.
func (f *Framework) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", f.cfg.ControlAddr)
	if err != nil {
		return fmt.Errorf("control endpoint %s: %w", f.cfg.ControlAddr, err)
	}
	srv := &http.Server{Handler: f.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Warn("control endpoint stopped", zap.Error(err))
		}
	}()
	defer func() {
		_ = srv.Close()
		wg.Wait()
	}()
	if err := f.cfg.Store.UpdateMeta(func(m *Meta) { m.ControlAddr = ln.Addr().String() }); err != nil {
		return err
	}
	f.log.Info("control endpoint", zap.String("addr", ln.Addr().String()))

	ctx, cancel := chans.WithCancelOnClose(ctx, f.done)
	defer cancel()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := f.subscribeOnce(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		f.log.Warn("disconnected from the master; re-subscribing", zap.Error(err), zap.Duration("after", backoff))
		select {
		case <-ctx.Done():
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	select {
	case <-f.done:
		return nil
	default:
		return ctx.Err()
	}
}

// subscribeOnce holds one subscription until it breaks.
func (f *Framework) subscribeOnce(ctx context.Context) error {
	f.mu.Lock()
	fwID := f.fwID
	f.mu.Unlock()
	host, _ := os.Hostname()
	failover := (7 * 24 * time.Hour).Seconds()
	info := &mesos.FrameworkInfo{
		User: f.cfg.User, Name: f.cfg.FrameworkName, Hostname: &host,
		Checkpoint: ptr(true), FailoverTimeout: &failover,
	}
	if fwID != "" {
		info.ID = &mesos.FrameworkID{Value: fwID}
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := f.caller.Call(subCtx, calls.Subscribe(info))
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", SchedulerURL(f.cfg.Master), err)
	}
	defer resp.Close()
	defer func() {
		f.mu.Lock()
		f.subscribed = false
		f.mu.Unlock()
	}()

	// Mesos promises a HEARTBEAT every interval; silence for several of
	// them means the connection is dead even if TCP has not noticed.
	silence := time.Minute
	watchdog := time.AfterFunc(silence, cancel)
	defer watchdog.Stop()
	for {
		var ev scheduler.Event
		if err := resp.Decode(&ev); err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		if hb := ev.GetSubscribed().GetHeartbeatIntervalSeconds(); hb > 0 {
			silence = time.Duration(3 * hb * float64(time.Second))
		}
		watchdog.Reset(silence)
		if err := f.handle(subCtx, ev); err != nil {
			return err
		}
	}
}
