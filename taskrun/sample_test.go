package taskrun

import (
	"context"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dewarhq/dewar/checkpoint"
	"github.com/dewarhq/dewar/executor"
)

// TestLaunchSamplesUsage: a running task's checkpoint gets its process
// run's CPU and memory and its sandbox's disk use, sampled every
// Options.CheckpointSampleInterval.
func TestLaunchSamplesUsage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	statuses := make(chan executor.Status, 16)
	env := executor.LaunchEnv{
		Config:    executor.Config{Sandbox: dir, ShutdownGracePeriod: 5 * time.Second},
		Framework: mesos.FrameworkInfo{User: "root"},
		Agent:     mesos.AgentInfo{Hostname: "agent1"},
	}
	cmd := "sleep 1000"
	info := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t-sampled"}, Command: &mesos.CommandInfo{Value: &cmd}}
	lr := New(Options{NoSetuid: true, CheckpointSampleInterval: 50 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	task := lr.Launch(ctx, env, info, func(s executor.Status) { statuses <- s })
	t.Cleanup(func() {
		task.Kill(nil, "the test is over")
		waitDone(t, task)
		cancel()
	})
	var c *checkpoint.Task
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sample in the checkpoint within 20s: %+v", c)
		}
		var err error
		if c, err = checkpoint.Read(dir); err != nil {
			t.Fatal(err)
		}
		if c.Disk == nil || len(c.Processes) == 0 {
			continue
		}
		if r := c.Processes[0].Last(); r != nil && r.State == checkpoint.RunRunning && r.Usage != nil {
			if r.Usage.RSSBytes <= 0 || r.Usage.Processes < 1 {
				t.Errorf("usage of %s = %+v, want RSS > 0", c.Processes[0].Name, r.Usage)
			}
			if c.Disk.Bytes <= 0 || c.Disk.Entries < 2 {
				t.Errorf("disk = %+v", c.Disk)
			}
			return
		}
	}
}
