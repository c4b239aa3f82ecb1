package aurorae2e_test

import (
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestDiskLimit: a task whose sandbox outgrows its disk reservation is
// killed and FAILED with Thermos' message (resource_manager.py,
// ResourceManager.status); within its reservation, or with the check off,
// it runs to its end.
func TestDiskLimit(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		name     string
		disk     int64  // task.resources.disk, bytes
		cmdline  string // the one process
		interval string // --disk-check-interval
		end      mesos.TaskState
	}{
		{"over the reservation", 1 * mib, "head -c 2097152 /dev/zero > fill && sleep 600", "200ms", mesos.TASK_FAILED},
		{"within the reservation", 16 * mib, "head -c 2097152 /dev/zero > fill && sleep 1", "200ms", mesos.TASK_FINISHED},
		{"check off", 1 * mib, "head -c 2097152 /dev/zero > fill && sleep 1", "0", mesos.TASK_FINISHED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t)
			job := fixture(t, "hello_world.json", func(doc map[string]any) {
				task := doc["task"].(map[string]any)
				task["resources"].(map[string]any)["disk"] = tc.disk
				task["processes"].([]any)[0].(map[string]any)["cmdline"] = tc.cmdline
			})
			tk := n.launch(t, "hello_world", job, nil, nil, "--disk-check-interval="+tc.interval)
			end := tk.awaitTerminal(t)
			tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_RUNNING, tc.end)
			if tc.end != mesos.TASK_FAILED {
				return
			}
			prefix := "Disk limit exceeded.  Reserved " + strconv.FormatInt(tc.disk, 10) + " bytes vs used "
			msg := end.GetMessage()
			used, ok := strings.CutPrefix(msg, prefix)
			if !ok || !strings.HasSuffix(used, " bytes.") {
				t.Fatalf("message %q, want %q<used> bytes.", msg, prefix)
			}
			if u, err := strconv.ParseInt(strings.TrimSuffix(used, " bytes."), 10, 64); err != nil || u < 2*mib {
				t.Errorf("used %q in %q, want at least the 2 MiB written", used, msg)
			}
			if r := end.GetReason(); r != mesos.REASON_CONTAINER_LIMITATION_DISK {
				t.Errorf("reason %v, want REASON_CONTAINER_LIMITATION_DISK", r)
			}
		})
	}
}

// TestTemplatesOverTheWholeTask: Thermos renders the whole task, so an
// unknown variable outside the command lines (here an HTTP lifecycle
// endpoint) fails the task before anything runs, naming the field
// (task_info.py, mesos_task_instance_from_assigned_task).
func TestTemplatesOverTheWholeTask(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	job := fixture(t, "hello_world.json", func(doc map[string]any) {
		doc["lifecycle"] = map[string]any{"http": map[string]any{"port": "health", "graceful_shutdown_endpoint": "/quit/{{mesos.nope}}"}}
	})
	tk := n.launch(t, "hello_world", job, nil, nil)
	end := tk.awaitTerminal(t)
	tk.expectStates(t, mesos.TASK_STARTING, mesos.TASK_FAILED)
	for _, w := range []string{"lifecycle.http.graceful_shutdown_endpoint", "{{mesos.nope}}"} {
		if !strings.Contains(end.GetMessage(), w) {
			t.Errorf("message %q does not name %q", end.GetMessage(), w)
		}
	}
	if r := end.GetReason(); r != mesos.REASON_TASK_INVALID {
		t.Errorf("reason %v, want REASON_TASK_INVALID", r)
	}
}
