package taskrun

import (
	"testing"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/sandbox"
)

// A process' own Thermos logger wins over the executor's flags; what it
// leaves out comes from the flags; processes without one keep the flags.
func TestApplyLoggers(t *testing.T) {
	def := sandbox.LogConfig{Destination: sandbox.LogFile, Mode: sandbox.LogStandard, RotateSizeBytes: 100 << 20, RotateBackups: 5}
	job := &aurora.MesosJob{Task: aurora.Task{Processes: []aurora.Process{
		{Name: "plain"},
		{Name: "quiet", Logger: &aurora.Logger{Destination: aurora.LogNone}},
		{Name: "rotating", Logger: &aurora.Logger{Mode: aurora.LogRotate, Rotate: &aurora.RotatePolicy{LogSize: 1 << 20}}},
	}}}
	p := &taskSpec{job: job, task: sandbox.Task{Processes: []sandbox.Process{{Name: "plain"}, {Name: "quiet"}, {Name: "rotating"}}}}
	applyLoggers(p, def)
	if p.task.Processes[0].Log != nil {
		t.Errorf("plain: got its own logger %+v, want the executor's", p.task.Processes[0].Log)
	}
	if got := p.task.Processes[1].Log; got == nil || got.Destination != sandbox.LogNone || got.Mode != sandbox.LogStandard {
		t.Errorf("quiet: %+v", got)
	}
	want := sandbox.LogConfig{Destination: sandbox.LogFile, Mode: sandbox.LogRotate, RotateSizeBytes: 1 << 20, RotateBackups: 5}
	if got := p.task.Processes[2].Log; got == nil || *got != want {
		t.Errorf("rotating: %+v, want %+v", got, want)
	}
}
