package taskrun

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/announcer"
	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/sandbox"
	"github.com/dewarhq/dewar/usage"
)

// The task's checkpoint (package checkpoint) is what dewar-observer shows.
// Recording is best effort: a checkpoint that cannot be written is logged
// and never fails the task.

// openCheckpoint starts the task's checkpoint in its run directory
// ($MESOS_DIRECTORY, where the observer looks for it), and the sampler of
// its resource use, which the checkpoint's Close stops.
func (t *task) openCheckpoint(ctx context.Context) *checkpoint.Writer {
	if t.runDir() == "" {
		return nil
	}
	w, err := checkpoint.NewWriter(t.runDir(), checkpoint.Task{
		TaskID:      t.info.TaskID.Value,
		Name:        t.info.GetName(),
		FrameworkID: t.env.Config.FrameworkID,
		ExecutorID:  t.env.Config.ExecutorID,
		AgentID:     t.info.AgentID.Value,
		ContainerID: t.env.ContainerID.GetValue(),
		Sandbox:     t.env.Config.Sandbox,
		LogDir:      filepath.Join(t.env.Config.Sandbox, "sandbox", ".logs"), // sandbox.Runner.logDir
		WorkDir:     filepath.Join(t.env.Config.Sandbox, "sandbox"),
		States:      []checkpoint.Transition{},
		Processes:   []checkpoint.Process{},
		Networks:    []checkpoint.Network{},
	}, t.log)
	if err != nil {
		t.log.Warn("cannot write the task checkpoint; dewar-observer will not show this task", zap.Error(err))
		return nil
	}
	t.sampleUsage(ctx, w)
	return w
}

// runDir is the task's run directory, $MESOS_DIRECTORY (else
// $MESOS_SANDBOX), where the checkpoint lives; "" when there is none.
func (t *task) runDir() string {
	if t.env.Config.Directory != "" {
		return t.env.Config.Directory
	}
	return t.env.Config.Sandbox
}

// sampleUsage records the processes' CPU and memory and the run
// directory's disk use every Options.CheckpointSampleInterval, in a
// goroutine of its own (never the lifecycle's).
func (t *task) sampleUsage(ctx context.Context, w *checkpoint.Writer) {
	if t.opt.CheckpointSampleInterval < 0 {
		return
	}
	s, err := usage.NewSampler("")
	if err != nil {
		// The disk is still sampled.
		t.log.Warn("cannot sample the task's processes; dewar-observer reads /proc instead", zap.Error(err))
	}
	opt := usage.Options{Interval: t.opt.CheckpointSampleInterval, Dir: t.runDir(), Disk: t.disk, Sampler: s, Logger: t.log}
	w.Go(ctx, func(ctx context.Context) { usage.Record(ctx, w, opt) })
}

// recordingReporter records every status before passing it on; a
// terminal one is on disk before the agent hears of it.
func (t *task) recordingReporter(next executor.Reporter) executor.Reporter {
	return func(st executor.Status) {
		now := time.Now()
		t.ckpt.Update(func(c *checkpoint.Task) {
			c.AddState(st.State.String(), st.Message, now)
			switch {
			case st.Healthy != nil && *st.Healthy:
				c.Health = &checkpoint.Health{State: checkpoint.HealthHealthy, Time: now}
			case st.Reason != nil && *st.Reason == mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED:
				c.Health = &checkpoint.Health{State: checkpoint.HealthUnhealthy, Message: st.Message, Time: now}
			}
		})
		if checkpoint.TerminalState(st.State.String()) {
			if err := t.ckpt.Flush(); err != nil {
				t.log.Warn("cannot write the task checkpoint", zap.Error(err))
			}
		}
		next(st)
	}
}

// recordSpec records who the task is and what it will run.
func (t *task) recordSpec(p *taskSpec, f *Facts) {
	t.ckpt.Update(func(c *checkpoint.Task) {
		c.User, c.Instance, c.Hostname = p.user, p.instance, f.Hostname
		if p.name != "" {
			c.Name = p.name
		}
		if p.job != nil {
			key := p.assigned.Task.Key()
			c.Role = orDefault(key.Role, p.job.Role)
			c.Environment = orDefault(key.Environment, p.job.Environment)
			c.Job = orDefault(key.Name, p.job.Name)
		}
		c.Ports = maps.Clone(p.ports)
		for _, pr := range p.task.Processes {
			c.AddProcess(pr.Name)
		}
		c.Networks = checkpointNetworks(f)
	})
}

// recordHealthPending says the task has a health check that has not passed.
func (t *task) recordHealthPending() {
	t.ckpt.Update(func(c *checkpoint.Task) {
		c.Health = &checkpoint.Health{State: checkpoint.HealthUnknown, Time: time.Now()}
	})
}

// recordNetworks records the addresses after a change.
func (t *task) recordNetworks(f *Facts) {
	t.ckpt.Update(func(c *checkpoint.Task) { c.Networks = checkpointNetworks(f) })
}

func checkpointNetworks(f *Facts) []checkpoint.Network {
	out := []checkpoint.Network{}
	for _, n := range f.Networks {
		cn := checkpoint.Network{Name: n.Name, Interface: n.Interface, Labels: maps.Clone(n.Labels), Addresses: []string{}}
		for _, a := range n.Addrs {
			cn.Addresses = append(cn.Addresses, a.String())
		}
		out = append(out, cn)
	}
	if len(f.Networks) == 0 && len(f.HostAddrs) > 0 {
		cn := checkpoint.Network{Name: "host", Host: true, Addresses: []string{}}
		for _, a := range f.HostAddrs {
			cn.Addresses = append(cn.Addresses, a.String())
		}
		out = append(out, cn)
	}
	return out
}

// recordEvent records a process run's start or end, or a runner state.
func (t *task) recordEvent(ev sandbox.Event) {
	t.ckpt.Update(func(c *checkpoint.Task) {
		switch ev.Kind {
		case sandbox.EventStarted:
			c.RunStarted(ev.Process, ev.Run, ev.PID, ev.Time)
		case sandbox.EventExited:
			c.RunEnded(ev.Process, ev.Run, checkpoint.RunSuccess, 0, ev.Message, ev.Time)
		case sandbox.EventFailed:
			c.RunEnded(ev.Process, ev.Run, checkpoint.RunFailed, ev.ExitCode, ev.Message, ev.Time)
		case sandbox.EventLost:
			// The runner stopped it (CLEANING, FINALIZING, a kill):
			// Thermos' KILLED.
			c.RunEnded(ev.Process, ev.Run, checkpoint.RunKilled, ev.ExitCode, ev.Message, ev.Time)
		case sandbox.EventState:
			c.AddRunnerState(string(ev.TaskState), ev.Message, ev.Time)
		}
	})
}

// recordServersets records the members the announcer keeps; after a
// withdrawal (members empty) the recorded ones are marked withdrawn.
func recordServersets(w *checkpoint.Writer, members map[string][]byte) {
	now := time.Now()
	w.Update(func(c *checkpoint.Task) {
		if len(members) == 0 {
			for i := range c.Serversets {
				if c.Serversets[i].Joined {
					c.Serversets[i].Joined, c.Serversets[i].Time = false, now
				}
			}
			return
		}
		c.Serversets = c.Serversets[:0]
		for _, path := range slices.Sorted(maps.Keys(members)) {
			m, err := announcer.ParseMember(members[path])
			if err != nil {
				continue // ours, so always parseable; skip rather than guess
			}
			s := checkpoint.Serverset{Path: path, Network: m.Metadata[announcer.MetaNetwork], Joined: true, Time: now,
				Endpoint: checkpoint.Endpoint{Host: m.ServiceEndpoint.Host, Port: m.ServiceEndpoint.Port}}
			for name, e := range m.AdditionalEndpoints {
				if s.Additional == nil {
					s.Additional = map[string]checkpoint.Endpoint{}
				}
				s.Additional[name] = checkpoint.Endpoint{Host: e.Host, Port: e.Port}
			}
			c.Serversets = append(c.Serversets, s)
		}
	})
}
