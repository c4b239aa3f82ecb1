package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"
)

// The control endpoint lets `dewar-scheduler kill` reach the running stub:
// the stub owns the subscription (a second subscriber with the same
// framework id would take the stream away from it) and must know an
// instance was killed on purpose, so that it does not relaunch it.
//
//	POST /kill            kill every instance; run ends when all are down
//	POST /kill?instance=N kill one instance
func (f *Framework) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kill", func(w http.ResponseWriter, r *http.Request) {
		instances, err := f.killTargets(r.URL.Query().Get("instance"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msgs, err := f.Kill(r.Context(), instances)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, strings.Join(msgs, "\n"))
	})
	return mux
}

func (f *Framework) killTargets(q string) ([]int, error) {
	n := max(f.job.Instances, 1)
	if q == "" {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	i, err := strconv.Atoi(q)
	if err != nil || i < 0 || i >= n {
		return nil, fmt.Errorf("instance %q: the job has instances 0..%d", q, n-1)
	}
	return []int{i}, nil
}

// Kill marks instances as killed (never relaunched) and sends KILL for
// their live tasks. It returns one line per instance. When no instance is
// left to run (those killed had no live task), it ends the job at once:
// no update would come to do it.
func (f *Framework) Kill(ctx context.Context, instances []int) ([]string, error) {
	f.mu.Lock()
	subscribed := f.subscribed
	f.mu.Unlock()
	if !subscribed {
		return nil, errors.New("the stub is not subscribed to the master right now; retry in a few seconds")
	}
	if err := f.cfg.Store.MarkKilled(instances); err != nil {
		return nil, fmt.Errorf("record the kill: %w", err)
	}
	f.mu.Lock()
	var msgs []string
	var kill, agentIDs []string
	for _, i := range instances {
		f.killed[i] = true
		r, ok := f.current[i]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("instance %d: no task; will not be launched", i))
		case terminalState(r.State):
			msgs = append(msgs, fmt.Sprintf("instance %d: task %s already %s", i, r.TaskID, r.State))
		default:
			kill = append(kill, r.TaskID)
			agentIDs = append(agentIDs, r.AgentID)
			msgs = append(msgs, fmt.Sprintf("instance %d: killing task %s", i, r.TaskID))
		}
	}
	f.mu.Unlock()
	for i, id := range kill {
		f.log.Info("killing", zap.String("task", id))
		if err := f.call(ctx, calls.Kill(id, agentIDs[i])); err != nil {
			return msgs, err
		}
	}
	if err := f.finishIfDone(ctx); err != nil {
		return msgs, fmt.Errorf("end the job: %w", err)
	}
	return msgs, nil
}

// ErrStubNotRunning: no `run` answers on the control endpoint recorded in
// the database.
var ErrStubNotRunning = errors.New("no running stub")

// RequestKill asks the running stub recorded in store to kill instance (or
// every instance when instance < 0) and returns its answer.
func RequestKill(ctx context.Context, store *Store, instance int) (string, error) {
	meta, err := store.Meta()
	if err != nil {
		return "", err
	}
	if meta.ControlAddr == "" {
		return "", fmt.Errorf("%w recorded in the database", ErrStubNotRunning)
	}
	u := url.URL{Scheme: "http", Host: meta.ControlAddr, Path: "/kill"}
	if instance >= 0 {
		u.RawQuery = "instance=" + strconv.Itoa(instance)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %w", ErrStubNotRunning, meta.ControlAddr, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("stub refused the kill: %s", strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}
