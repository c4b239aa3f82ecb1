package scheduler

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStoreKeepsEverythingAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "stub.db")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []TaskRecord{
		{TaskID: "a-0-old", Instance: 0, State: "TASK_KILLED", Launched: t0, Updated: t0},
		{TaskID: "a-0-new", Instance: 0, State: "TASK_RUNNING", Launched: t0.Add(time.Minute), Updated: t0.Add(time.Minute),
			Views: Views{
				Agent:    []Network{{Name: "blue", Addresses: []string{"198.18.0.2"}}, {Name: "green", Addresses: []string{"2001:db8::2"}}},
				Executor: []Network{{Name: "blue", Addresses: []string{"198.18.0.2"}}, {Name: "green", Addresses: []string{"2001:db8::2"}}},
			}},
		{TaskID: "a-1-x", Instance: 1, State: "TASK_STAGING", Launched: t0, Updated: t0},
	}
	for _, r := range recs {
		if err := s.PutTask(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdateMeta(func(m *Meta) { m.FrameworkID = "fw-1"; m.JobJSON = []byte(`{"x":1}`) }); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkKilled([]int{1}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkKilled([]int{0, 1}); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := s.UpdateTask("a-1-x", func(r *TaskRecord) { r.State = "TASK_RUNNING"; r.Message = "healthy" })
	if err != nil || !ok || rec.State != "TASK_RUNNING" {
		t.Fatalf("UpdateTask = %+v, %v, %v", rec, ok, err)
	}
	if _, ok, err := s.UpdateTask("nope", func(*TaskRecord) {}); ok || err != nil {
		t.Fatalf("UpdateTask of an unknown task = %v, %v; want false, nil", ok, err)
	}

	// A new process opens the same file.
	s2, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := s2.Meta()
	if err != nil || meta.FrameworkID != "fw-1" || string(meta.JobJSON) != `{"x":1}` || !reflect.DeepEqual(meta.Killed, []int{0, 1}) {
		t.Fatalf("meta after reopen = %+v, %v", meta, err)
	}
	// A new framework starts the job afresh: the kills of the old one go.
	if err := s2.ForgetFramework(); err != nil {
		t.Fatal(err)
	}
	if meta, err := s2.Meta(); err != nil || meta.FrameworkID != "" || meta.Killed != nil || string(meta.JobJSON) != `{"x":1}` {
		t.Fatalf("meta after ForgetFramework = %+v, %v", meta, err)
	}
	got, err := s2.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	recs[2].State, recs[2].Message = "TASK_RUNNING", "healthy"
	for i := range got {
		got[i].Launched, got[i].Updated = got[i].Launched.UTC(), got[i].Updated.UTC()
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("tasks after reopen:\n got %+v\nwant %+v", got, recs)
	}
	latest := Latest(got)
	if latest[0].TaskID != "a-0-new" || latest[1].TaskID != "a-1-x" {
		t.Fatalf("Latest = %+v", latest)
	}
}

func TestStatusAndEndpoints(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "stub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for _, r := range []TaskRecord{
		{TaskID: "t0", Instance: 0, State: "TASK_RUNNING", Launched: t0, Ports: map[string]int32{"http": 31001, "health": 31000},
			Views: Views{
				Agent:    []Network{{"blue", []string{"198.18.10.2"}}, {"green", []string{"198.18.20.2", "2001:db8:20::2"}}},
				Executor: []Network{{"blue", []string{"198.18.10.2"}}, {"green", []string{"198.18.20.2"}}},
			}},
		{TaskID: "t1", Instance: 1, State: "TASK_STAGING", Launched: t0, Ports: map[string]int32{"http": 31003}},
	} {
		if err := s.PutTask(r); err != nil {
			t.Fatal(err)
		}
	}
	// Instance 2 was killed before it had a task.
	if err := s.MarkKilled([]int{2, 1}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteStatus(&out, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"instance 0  t0  TASK_RUNNING\n",
		"ports        health=31000 http=31001\n",
		"blue         agent: 198.18.10.2",
		"executor: 198.18.10.2\n",
		"green        agent: 198.18.20.2 2001:db8:20::2",
		"DISAGREE: green: agent [198.18.20.2 2001:db8:20::2] executor [198.18.20.2]",
		"instance 1  t1  TASK_STAGING  killed: not relaunched\n",
		"instance 2  (no task)  killed: not launched\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := WriteEndpoints(&out, s, "http"); err != nil {
		t.Fatal(err)
	}
	want := "0 blue 198.18.10.2 31001\n0 green 198.18.20.2 31001\n0 green 2001:db8:20::2 31001\n"
	if out.String() != want {
		t.Fatalf("endpoints:\n%s\nwant (running instances only, agent's view):\n%s", out.String(), want)
	}
}
