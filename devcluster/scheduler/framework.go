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
	// User the tasks run as; default: the user the recorded framework was
	// registered with, else the current user.
	User     string
	Policy   Policy
	Executor ExecutorSettings
	Store    *Store
	// ControlAddr is where the stub serves its control endpoint (kill);
	// default 127.0.0.1:0. The chosen address is recorded in the store.
	ControlAddr string
	// RelaunchDelay is how long a service instance stays down before it is
	// launched again (default 5s).
	RelaunchDelay time.Duration
	Log           *zap.Logger
}

const defaultFrameworkName = "dewar-scheduler"

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

	finishMu sync.Mutex    // serializes finishIfDone
	done     chan struct{} // closed (by finishIfDone) when the job has nothing left to run
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
		cfg.FrameworkName = defaultFrameworkName
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
	if f.cfg.User, err = frameworkUser(cfg.User, meta); err != nil {
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
	f.caller = newCaller(cfg.Master)
	return f, nil
}

// frameworkUser is the user to subscribe as: the one the recorded framework
// was registered with (Mesos keeps it for the framework's life, see
// frameworkInfo), else flagUser, else the current user.
func frameworkUser(flagUser string, meta Meta) (string, error) {
	switch {
	case meta.FrameworkID == "" || meta.User == "":
	case flagUser == "" || flagUser == meta.User:
		return meta.User, nil
	default:
		return "", fmt.Errorf("--user %s: framework %s in this database was registered with user %s, and Mesos keeps a framework's user for its life; "+
			"run with --user %s, or kill the job (dewar-scheduler kill) to register a new framework", flagUser, meta.FrameworkID, meta.User, meta.User)
	}
	if flagUser != "" {
		return flagUser, nil
	}
	return currentUser(), nil
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
		// Shutdown, not Close: a kill that ended the job (Kill ->
		// finishIfDone) is still writing its answer.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
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
		if merr, ok := errors.AsType[*MasterError](err); ok {
			return f.refused(merr)
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

// refused is Run's error for an ERROR from the master, saying what to do.
// A removed framework is forgotten: its id is of no use any more.
func (f *Framework) refused(merr *MasterError) error {
	f.mu.Lock()
	who := "framework " + f.fwID
	if f.fwID == "" {
		who = "a new framework"
	}
	f.mu.Unlock()
	if err, removed := forgetRemoved(f.cfg.Store, who, merr); removed {
		return fmt.Errorf("%w: run again to register a new framework and start the job afresh", err)
	}
	return fmt.Errorf("%s: %w; subscribing again would get the same answer: "+
		"stop any other scheduler subscribed as this framework, or kill the job (dewar-scheduler kill) and run again to register a new framework", who, merr)
}

// subscribeOnce holds one subscription until it breaks.
func (f *Framework) subscribeOnce(ctx context.Context) error {
	f.mu.Lock()
	id := identity{ID: f.fwID, User: f.cfg.User, Name: f.cfg.FrameworkName}
	f.mu.Unlock()
	sub, subCtx, err := subscribe(ctx, f.caller, f.cfg.Master, id)
	if err != nil {
		return err
	}
	defer sub.Close()
	defer func() {
		f.mu.Lock()
		f.subscribed = false
		f.mu.Unlock()
	}()
	for {
		ev, err := sub.next()
		if err != nil {
			return err
		}
		if err := f.handle(subCtx, ev); err != nil {
			return err
		}
	}
}
