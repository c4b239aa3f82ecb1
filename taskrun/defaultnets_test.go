package taskrun

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/sandbox"
)

// TestDefaultNetworks: the agent puts an executor launched without a
// ContainerInfo into its --default_container_info networks and says
// nothing (Slave::_run); named by Options.DefaultNetworks, they are
// discovered and reported as if the ExecutorInfo had named them. An
// executor that has a ContainerInfo gets no default from the agent, so the
// option does not apply to it.
func TestDefaultNetworks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		container *mesos.ContainerInfo
		want      string // the discovery step
		networks  []string
	}{
		{"no ContainerInfo: the agent's default networks", nil, "discover", []string{"blue"}},
		{"a ContainerInfo without networks: host networking", &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum()}, "discover host", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				edit := func(doc map[string]any) {
					delete(doc, "health_check_config")
					delete(doc, "lifecycle")
					delete(doc, "announce")
					doc["task"].(map[string]any)["processes"].([]any)[0].(map[string]any)["cmdline"] = "serve {{thermos.ports[http]}}"
				}
				info := auroraTaskInfo(t, fixtureJSON(t, "web_service.json", edit), map[string]int32{"http": 31000})
				task := w.launch(ctx, info, func(o *Options, env *executor.LaunchEnv) {
					o.DefaultNetworks = []string{"blue"}
					env.Executor.Container = tc.container
				})
				synctest.Wait()
				time.Sleep(time.Second)
				synctest.Wait()
				w.started().finish(sandbox.StateSuccess)
				<-task.Done()
				if steps := w.log(); !slices.Contains(steps, tc.want) {
					t.Errorf("steps %q; want %q", steps, tc.want)
				}
				st, _ := w.status(mesos.TASK_RUNNING)
				var got []string
				for _, n := range st.Networks {
					got = append(got, n.GetName())
				}
				if !slices.Equal(got, tc.networks) {
					t.Errorf("TASK_RUNNING networks %v, want %v", got, tc.networks)
				}
			})
		})
	}
}
