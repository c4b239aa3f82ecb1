package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/devcluster/fakeagent/master"
	"github.com/dewarhq/dewar/internal/testenv"
)

// agent plays the node behind the real fake master: a launched task runs
// at once and reports addresses the way the fake agent forwards them.
type agent struct {
	t *testing.T
	m *master.Master

	mu        sync.Mutex
	execs     map[string]*mesos.ExecutorInfo
	fwIDs     map[string]string
	shutdowns int
	declines  int                   // DECLINE calls the master received
	subs      []mesos.FrameworkInfo // FrameworkInfo of every SUBSCRIBE
}

func (a *agent) Info() mesos.AgentInfo {
	return mesos.AgentInfo{
		ID: &mesos.AgentID{Value: "agent-1"}, Hostname: "node-1",
		Resources: []mesos.Resource{
			resources.NewCPUs(2).Resource, resources.NewMemory(2048).Resource,
			resources.Build().Name(resources.NamePorts).Ranges(resources.BuildRanges().Span(31000, 31009).Ranges).Resource,
		},
	}
}

func (a *agent) Launch(_ context.Context, fw mesos.FrameworkInfo, exec *mesos.ExecutorInfo, task mesos.TaskInfo) error {
	a.mu.Lock()
	a.execs[task.TaskID.Value] = exec
	a.fwIDs[task.TaskID.Value] = fw.GetID().GetValue()
	n := len(a.execs)
	a.mu.Unlock()
	// Container n gets 198.18.0.n on the first network, 2001:db8::n on the
	// second, as CNI host-local would hand them out.
	var nets []mesos.NetworkInfo
	for i, ni := range exec.GetContainer().GetNetworkInfos() {
		addr := []string{"198.18.0.", "2001:db8::"}[i%2] + string(rune('0'+n))
		nets = append(nets, netInfo(ni.GetName(), addr))
	}
	a.send(fw.GetID().GetValue(), task.TaskID.Value, mesos.TASK_STARTING, nil)
	a.send(fw.GetID().GetValue(), task.TaskID.Value, mesos.TASK_RUNNING, nets)
	return nil
}

func (a *agent) send(fwID, taskID string, state mesos.TaskState, nets []mesos.NetworkInfo) {
	st := mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		AgentID: &mesos.AgentID{Value: "agent-1"}, UUID: []byte(taskID + state.String()),
	}
	if nets != nil {
		// The executor's view, then the agent's appended, as the fake agent
		// merges them.
		st.ContainerStatus = &mesos.ContainerStatus{NetworkInfos: append(append([]mesos.NetworkInfo{}, nets...), nets...)}
	}
	a.m.Update(fwID, st)
}

func (a *agent) Kill(_ context.Context, fwID, taskID string, _ *mesos.KillPolicy) error {
	a.send(fwID, taskID, mesos.TASK_KILLED, nil)
	return nil
}

func (a *agent) ShutdownFramework(context.Context, string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.shutdowns++
	return nil
}

func startMaster(t *testing.T) (*agent, string) {
	t.Helper()
	a := &agent{t: t, execs: map[string]*mesos.ExecutorInfo{}, fwIDs: map[string]string{}}
	a.m = master.New(zaptest.NewLogger(t), a, master.Config{DefaultRefuse: 100 * time.Millisecond, OfferInterval: 50 * time.Millisecond})
	srv := httptest.NewServer(a.recordCalls(a.m))
	t.Cleanup(func() { a.m.Close(); srv.Close() })
	return a, strings.TrimPrefix(srv.URL, "http://")
}

// recordCalls notes calls on their way to the master: how many DECLINEs
// (the stub saying "nothing to launch" when an offer came) and what each
// SUBSCRIBE presented.
func (a *agent) recordCalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var c scheduler.Call
		if c.Unmarshal(body) == nil {
			a.mu.Lock()
			switch c.Type {
			case scheduler.Call_DECLINE:
				a.declines++
			case scheduler.Call_SUBSCRIBE:
				a.subs = append(a.subs, *c.GetSubscribe().GetFrameworkInfo())
			}
			a.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func (a *agent) counts() (launches, declines int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.execs), a.declines
}

type running struct {
	done chan error
	stop context.CancelFunc
}

// halt stops the stub as Ctrl-C does and returns what Run returned.
func (r running) halt() error {
	r.stop()
	err := <-r.done
	r.done <- err // for the cleanup
	return err
}

// ended waits for Run to return on its own (why says why it should) and
// returns what it returned.
func (r running) ended(t *testing.T, why string) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not end within 30s, although %s", why)
	}
	return nil
}

// waitTornDown waits until the agent was asked to shut the framework down.
func (a *agent) waitTornDown(t *testing.T) {
	t.Helper()
	testenv.WaitUntil(t, 30*time.Second, "the framework torn down", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.shutdowns == 1
	})
}

// newStore opens a fresh database.
func newStore(t *testing.T) *Store {
	t.Helper()
	store, err := OpenStore(filepath.Join(t.TempDir(), "stub.db"))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func startStub(t *testing.T, masterAddr string, store *Store, jobFile string) running {
	t.Helper()
	return startStubWith(t, masterAddr, store, jobFile, nil)
}

// startStubWith runs the stub with a Config that edit may change.
func startStubWith(t *testing.T, masterAddr string, store *Store, jobFile string, edit func(*Config)) running {
	t.Helper()
	job, data := loadJob(t, jobFile)
	cfg := Config{
		Master: masterAddr, Store: store,
		Policy:   Policy{EnableCNI: true, AllowedNetworks: []string{"blue", "green"}},
		Executor: ExecutorSettings{Command: "/usr/bin/dewar-executor", CPUs: 0.25, MemMB: 128},
		Log:      zaptest.NewLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	fw, err := New(cfg, job, data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := running{done: make(chan error, 1), stop: cancel}
	go func() { r.done <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// runUntilRunning runs web_cni.json until both instances run, then stops
// `run` (its tasks keep running).
func runUntilRunning(t *testing.T, addr string, store *Store) {
	t.Helper()
	r := startStub(t, addr, store, "web_cni.json")
	waitFor(t, store, "both instances RUNNING", allRunning(2))
	_ = r.halt()
}

// waitFor polls the store until cond holds for the latest task of every
// instance listed.
func waitFor(t *testing.T, store *Store, what string, cond func(map[int]TaskRecord) bool) map[int]TaskRecord {
	t.Helper()
	var latest map[int]TaskRecord
	testenv.WaitUntilState(t, 30*time.Second, what, func() (bool, string) {
		recs, err := store.Tasks()
		if err != nil {
			t.Fatal(err)
		}
		latest = Latest(recs)
		return cond(latest), fmt.Sprintf("store has %+v", latest)
	})
	return latest
}

func allRunning(n int) func(map[int]TaskRecord) bool {
	return func(l map[int]TaskRecord) bool {
		if len(l) != n {
			return false
		}
		for _, r := range l {
			if r.State != "TASK_RUNNING" {
				return false
			}
		}
		return true
	}
}

func TestStubRunsRestartsReconcilesAndKills(t *testing.T) {
	a, addr := startMaster(t)
	store := newStore(t)
	first := startStub(t, addr, store, "web_cni.json")
	latest := waitFor(t, store, "both instances RUNNING", allRunning(2))
	for i, r := range latest {
		if len(r.Views.Agent) != 2 || !equalViews(r.Views.Agent, r.Views.Executor) {
			t.Fatalf("instance %d stored views %+v, want both networks in both views", i, r.Views)
		}
		a.mu.Lock()
		exec := a.execs[r.TaskID]
		a.mu.Unlock()
		if got := len(exec.GetContainer().GetNetworkInfos()); got != 2 {
			t.Fatalf("instance %d launched with %d network_infos, want 2", i, got)
		}
	}
	meta, _ := store.Meta()

	// Restart the stub: it keeps the addresses, re-subscribes as the same
	// framework and reconciles its tasks.
	if err := first.halt(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	startStub(t, addr, store, "web_cni.json")
	latest = waitFor(t, store, "reconciliation", func(l map[int]TaskRecord) bool {
		return allRunning(2)(l) && l[0].Reason == "REASON_RECONCILIATION" && l[1].Reason == "REASON_RECONCILIATION"
	})
	for i, r := range latest {
		if len(r.Views.Agent) != 2 || len(r.Views.Executor) != 2 {
			t.Fatalf("instance %d lost its addresses across the restart: %+v", i, r.Views)
		}
	}
	if meta2, _ := store.Meta(); meta2.FrameworkID != meta.FrameworkID {
		t.Fatalf("framework id %q after restart, want %q kept", meta2.FrameworkID, meta.FrameworkID)
	}

	ctx := context.Background()
	out, err := requestKillWhenSubscribed(t, ctx, store, 0)
	if err != nil || !strings.Contains(out, "instance 0: killing task "+latest[0].TaskID) {
		t.Fatalf("kill instance 0 = %q, %v", out, err)
	}
	waitFor(t, store, "instance 0 KILLED", func(l map[int]TaskRecord) bool {
		return l[0].State == "TASK_KILLED" && l[1].State == "TASK_RUNNING"
	})
	if _, err := RequestKill(ctx, store, -1); err != nil {
		t.Fatalf("kill the job: %v", err)
	}
	waitFor(t, store, "every instance KILLED", func(l map[int]TaskRecord) bool {
		return l[0].State == "TASK_KILLED" && l[1].State == "TASK_KILLED"
	})
	waitShutdown := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		n, launched := a.shutdowns, len(a.execs)
		a.mu.Unlock()
		if launched != 2 {
			t.Fatalf("%d launches, want 2: a killed instance was relaunched", launched)
		}
		if n == 1 {
			break
		}
		if time.Now().After(waitShutdown) {
			t.Fatal("the framework was not torn down after the job was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A killed instance stays killed when `run` restarts: the kill is in the
// database, not only in the memory of the `run` that received it.
func TestKilledInstanceStaysKilledAcrossRestart(t *testing.T) {
	a, addr := startMaster(t)
	store := newStore(t)
	// A relaunch delay this short makes a forgotten kill show at the
	// restarted stub's first offer.
	fast := func(c *Config) { c.RelaunchDelay = time.Millisecond }
	first := startStubWith(t, addr, store, "web_cni.json", fast)
	latest := waitFor(t, store, "both instances RUNNING", allRunning(2))
	out, err := requestKillWhenSubscribed(t, context.Background(), store, 0)
	if err != nil || !strings.Contains(out, "instance 0: killing task "+latest[0].TaskID) {
		t.Fatalf("kill instance 0 = %q, %v", out, err)
	}
	waitFor(t, store, "instance 0 KILLED", func(l map[int]TaskRecord) bool {
		return l[0].State == "TASK_KILLED" && l[1].State == "TASK_RUNNING"
	})
	_ = first.halt()

	_, declinedBefore := a.counts()
	startStubWith(t, addr, store, "web_cni.json", fast)
	// The restarted stub subscribes, reconciles and is offered the free
	// resources at once; declining them is its answer that nothing is to
	// be launched.
	testenv.WaitUntilState(t, 30*time.Second, "the restarted stub declines an offer", func() (bool, string) {
		launches, declines := a.counts()
		if launches != 2 {
			t.Fatalf("%d launches, want 2: the restarted stub relaunched killed instance 0", launches)
		}
		return declines > declinedBefore, fmt.Sprintf("%d declines", declines)
	})
	var status strings.Builder
	if err := WriteStatus(&status, store); err != nil {
		t.Fatal(err)
	}
	if want := "instance 0  " + latest[0].TaskID + "  TASK_KILLED  killed: not relaunched"; !strings.Contains(status.String(), want) {
		t.Fatalf("status after the restart lacks %q:\n%s", want, status.String())
	}
	if strings.Contains(status.String(), "instance 1  "+latest[1].TaskID+"  TASK_RUNNING  killed") {
		t.Fatalf("status marks instance 1 as killed:\n%s", status.String())
	}
}

// requestKillWhenSubscribed retries while the restarted stub is still
// subscribing.
func requestKillWhenSubscribed(t *testing.T, ctx context.Context, store *Store, instance int) (string, error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := RequestKill(ctx, store, instance)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "not subscribed") {
			return out, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equalViews(a, b []Network) bool {
	return Views{Agent: a, Executor: b}.Disagreement() == "" && len(a) == len(b)
}

func TestStubRejectsBeforeLaunching(t *testing.T) {
	store := newStore(t)
	tests := []struct {
		name   string
		job    string
		policy Policy
		want   error
	}{
		{"cni off", "web_cni.json", Policy{}, ErrCNIDisabled},
		{"network not allowed", "web_forbidden.json", Policy{EnableCNI: true, AllowedNetworks: []string{"blue", "green"}}, ErrNetworkNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, data := loadJob(t, tt.job)
			_, err := New(Config{Master: "127.0.0.1:1", Store: store, Policy: tt.policy, Executor: ExecutorSettings{Command: "/x"}}, job, data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New() = %v, want %v", err, tt.want)
			}
		})
	}
}

// After `run` stopped, its tasks keep running; kill reaches them by
// subscribing as the recorded framework.
func TestKillWithoutRunningStub(t *testing.T) {
	a, addr := startMaster(t)
	store := newStore(t)
	// Mesos keeps a framework's user for its life; kill presents the user
	// and name `run` registered with, not its own.
	r := startStubWith(t, addr, store, "web_cni.json", func(c *Config) { c.User, c.FrameworkName = "aurora", "web-stub" })
	latest := waitFor(t, store, "both instances RUNNING", allRunning(2))
	_ = r.halt()

	ctx := context.Background()
	if _, err := RequestKill(ctx, store, 0); !errors.Is(err, ErrStubNotRunning) {
		t.Fatalf("RequestKill with no stub = %v, want ErrStubNotRunning", err)
	}
	log := zaptest.NewLogger(t)
	msgs, err := KillDirect(ctx, addr, store, 0, log)
	if err != nil || !strings.Contains(strings.Join(msgs, "\n"), "instance 0: killing task "+latest[0].TaskID) {
		t.Fatalf("KillDirect(0) = %q, %v", msgs, err)
	}
	waitFor(t, store, "instance 0 KILLED", func(l map[int]TaskRecord) bool {
		return l[0].State == "TASK_KILLED" && l[1].State == "TASK_RUNNING"
	})
	if meta, _ := store.Meta(); !slices.Equal(meta.Killed, []int{0}) {
		t.Fatalf("killed instances recorded = %v, want [0]: a later run would relaunch instance 0", meta.Killed)
	}
	if _, err := KillDirect(ctx, addr, store, -1, log); err != nil {
		t.Fatalf("KillDirect(job): %v", err)
	}
	l := waitFor(t, store, "every instance KILLED", func(l map[int]TaskRecord) bool {
		return l[0].State == "TASK_KILLED" && l[1].State == "TASK_KILLED"
	})
	if l[1].Views.Agent == nil {
		t.Error("killing dropped the stored addresses")
	}
	if meta, _ := store.Meta(); meta.FrameworkID != "" {
		t.Errorf("framework id %q still recorded after the job was killed", meta.FrameworkID)
	}
	a.waitTornDown(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.subs) != 3 {
		t.Fatalf("%d SUBSCRIBE calls, want 3 (run, kill, kill)", len(a.subs))
	}
	for i, info := range a.subs {
		if info.User != "aurora" || info.Name != "web-stub" || !info.GetCheckpoint() {
			t.Errorf("SUBSCRIBE %d as user %q name %q checkpoint %v; want aurora, web-stub, true as registered", i, info.User, info.Name, info.GetCheckpoint())
		}
		if i > 0 && info.GetID().GetValue() != a.subs[1].GetID().GetValue() {
			t.Errorf("SUBSCRIBE %d as framework %q, want the recorded %q", i, info.GetID().GetValue(), a.subs[1].GetID().GetValue())
		}
	}
}

// Instances killed one by one while no `run` was up leave nothing to run:
// the next `run` launches nothing, tears the framework down and ends.
func TestRunAfterEveryInstanceWasKilledEnds(t *testing.T) {
	a, addr := startMaster(t)
	store := newStore(t)
	runUntilRunning(t, addr, store)
	log := zaptest.NewLogger(t)
	for _, i := range []int{0, 1} {
		if _, err := KillDirect(context.Background(), addr, store, i, log); err != nil {
			t.Fatalf("KillDirect(%d): %v", i, err)
		}
	}

	r := startStubWith(t, addr, store, "web_cni.json", func(c *Config) { c.RelaunchDelay = time.Millisecond })
	if err := r.ended(t, "every instance was killed"); err != nil {
		t.Fatalf("Run = %v, want nil: nothing was left to run", err)
	}
	if launches, _ := a.counts(); launches != 2 {
		t.Fatalf("%d launches, want 2", launches)
	}
	if meta, _ := store.Meta(); meta.FrameworkID != "" || meta.Killed != nil {
		t.Fatalf("meta after the job ended = %+v, want framework and kills forgotten", meta)
	}
	a.waitTornDown(t)
}

func TestFrameworkUser(t *testing.T) {
	registered := Meta{FrameworkID: "fw-1", User: "aurora"}
	tests := []struct {
		name    string
		flag    string
		meta    Meta
		want    string
		wantErr bool
	}{
		{"new framework, --user", "alice", Meta{}, "alice", false},
		{"new framework, no --user", "", Meta{}, currentUser(), false},
		{"recorded framework, no --user", "", registered, "aurora", false},
		{"recorded framework, same --user", "aurora", registered, "aurora", false},
		{"recorded framework, other --user", "alice", registered, "", true},
		{"torn down framework", "alice", Meta{User: "aurora"}, "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := frameworkUser(tt.flag, tt.meta)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("frameworkUser(%q, %+v) = %q, %v; want %q, error %v", tt.flag, tt.meta, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--user aurora") {
				t.Fatalf("error %q does not say which --user to pass", err)
			}
		})
	}
}
