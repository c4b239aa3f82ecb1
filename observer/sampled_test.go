package observer

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/checkpoint"
)

// sampledTask is a task whose executor recorded resource samples: a
// running run whose pid is nobody's (only the sample can say what it
// uses) and a finished task's last samples.
func sampledTask(id string, finished bool, at time.Time) checkpoint.Task {
	t := syntheticTask(id, "sampled", 0, at.Add(-time.Minute))
	// Pid 0x3ffffff is above any pid_max: /proc has nothing for it.
	t.RunStarted("sidecar", 1, 0x3ffffff, at.Add(-30*time.Second))
	t.SetUsage("sidecar", 1, checkpoint.Usage{CPUSeconds: 12.5, RSSBytes: 5 << 20, Processes: 2, Time: at})
	t.SetDisk(checkpoint.Disk{Bytes: 3 << 30, Entries: 1234, Time: at})
	if finished {
		t.RunEnded("sidecar", 1, checkpoint.RunSuccess, 0, "", at.Add(time.Second))
		t.AddState("TASK_FINISHED", "all processes finished", at.Add(time.Second))
	}
	return t
}

// The observer shows what the executor sampled — CPU, RSS and disk — on
// the pages, the JSON and /metrics, in preference to its own /proc scan
// and disk walk (which would find nothing, and a few KiB), also for a
// finished task.
func TestObserverShowsExecutorSamples(t *testing.T) {
	f := newFixture(t)
	at := time.Now().Add(-5 * time.Second)
	writeRun(t, f.root, "agent-1", sampledTask("t-sampled", false, at))
	writeRun(t, f.root, "agent-1", sampledTask("t-sampled-done", true, at))

	sampledAt := regexp.QuoteMeta(`title="sampled by the executor at ` + fmtTime(at) + `"`)
	cells := regexp.MustCompile(`<td class="cpu" ` + sampledAt + `>12.50 s</td><td class="rss" ` + sampledAt + `>5.0 MiB</td>`)
	for _, id := range []string{"t-sampled", "t-sampled-done"} {
		for _, path := range []string{"/task/" + id, "/process/" + id + "/sidecar"} {
			body := f.mustGet(t, path)
			if !cells.MatchString(body) {
				t.Errorf("%s does not show the sampled CPU and RSS:\n%s", path, grepLines(body, "sidecar"))
			}
			if strings.HasPrefix(path, "/task/") && !strings.Contains(body, `<span id="disk">3.0 GiB</span>`) {
				t.Errorf("%s does not show the sampled disk use:\n%s", path, grepLines(body, "disk"))
			}
		}
		if body := f.mustGet(t, "/j/process/"+id+"/sidecar"); !strings.Contains(body, `"cpu_seconds": 12.5`) || !strings.Contains(body, `"ram": 5242880`) {
			t.Errorf("/j/process/%s/sidecar lacks the sampled usage: %s", id, body)
		}
	}

	body := f.mustGet(t, "/metrics")
	for _, want := range []string{
		`dewar_process_cpu_seconds_total{process="sidecar",task_id="t-sampled"} 12.5`,
		`dewar_process_resident_memory_bytes{process="sidecar",task_id="t-sampled"} 5.24288e+06`,
		`dewar_task_disk_bytes{task_id="t-sampled"} 3.221225472e+09`,
		`dewar_task_disk_bytes{task_id="t-sampled-done"} 3.221225472e+09`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "sampled"))
		}
	}
	// A finished run's last sample is history, not a live gauge.
	if strings.Contains(body, `dewar_process_resident_memory_bytes{process="sidecar",task_id="t-sampled-done"}`) {
		t.Error("/metrics reports the RSS of a finished run")
	}
}
