package executor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// slowTeardown reports TASK_FINISHED at once but holds its resources (a
// ZooKeeper session, say) until the test releases them.
type slowTeardown struct {
	release chan struct{}
	done    chan struct{}
}

func (s *slowTeardown) Launch(_ context.Context, _ LaunchEnv, _ mesos.TaskInfo, report Reporter) Task {
	report(Status{State: mesos.TASK_FINISHED})
	go func() { <-s.release; close(s.done) }()
	return s
}
func (s *slowTeardown) Kill(*mesos.KillPolicy, string) {}
func (s *slowTeardown) Shutdown(time.Duration, string) {}
func (s *slowTeardown) Done() <-chan struct{}          { return s.done }

// Someone owns teardown: the executor does not exit on the terminal
// update's acknowledgement while the task is still tearing down, however
// long that takes within its bound.
func TestExitWaitsForTheTasksTeardown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newBubbleAgent(t, true)
		task := &slowTeardown{release: make(chan struct{}), done: make(chan struct{})}
		ex := a.newExecutor(t, bubbleConfig(), task)
		done := run(t, ex)
		waitFor(t, "subscription", func() bool { return len(a.subscribes()) == 1 })
		a.send(launchEvent("t1"))
		waitFor(t, "TASK_FINISHED acknowledged", func() bool {
			select {
			case <-ex.Done():
				return true
			default:
				return false
			}
		})
		time.Sleep(time.Second) // a (fake) second of teardown
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) while the task was still tearing down", err)
		default:
		}
		close(task.release)
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		default:
			t.Fatal("Run did not return after the teardown")
		}
	})
}
