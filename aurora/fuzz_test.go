package aurora

import (
	"bytes"
	"testing"
)

var fixtureFiles = []string{"hello_world.json", "web_service.json", "ordered_final.json", "cron_batch.json", "cni_service.json"}

func FuzzDecodeAssignedTask(f *testing.F) {
	full, err := EncodeAssignedTask(fullAssignedTask())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add(writeWithUnknowns(f))
	f.Add([]byte{})
	f.Add([]byte{0x0d, 0x00, 0x05, 0x0b, 0x08, 0x7f, 0xff, 0xff, 0xff})
	for _, name := range fixtureFiles {
		raw := readFixture(f, name)
		job, err := ParseJob(raw)
		if err != nil {
			f.Fatal(err)
		}
		data, err := BuildAssignedTask(job, raw, "t", 0, map[string]int32{"http": 1})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		at, err := DecodeAssignedTask(data)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		b1, err := EncodeAssignedTask(at)
		if err != nil {
			t.Fatalf("re-encode a decoded task: %v", err)
		}
		at2, err := DecodeAssignedTask(b1)
		if err != nil {
			t.Fatalf("decode what the encoder wrote: %v", err)
		}
		b2, err := EncodeAssignedTask(at2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip is not stable")
		}
	})
}

func FuzzParseJob(f *testing.F) {
	for _, name := range fixtureFiles {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"instance":1,"role":"r","environment":"e","task":{"processes":[{"name":"a","cmdline":"x"}]}}`))
	f.Add([]byte(`{"role":"r","environment":"e","cluster":"c","task":{"processes":[{"name":"a","cmdline":"x"},{"name":"b","cmdline":"x"}],"constraints":[{"order":["a","b"]},{"order":["b","a"]}]}}`))
	f.Add([]byte(`{"role":"r","environment":"e","cluster":"c","health_check_config":{"type":"shell","shell_command":"true"},"task":{"processes":[{"name":"a","cmdline":"x","logger":{"mode":"rotate","rotate":{}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := ParseJob(data)
		if err != nil {
			return
		}
		if len(job.Task.Processes) == 0 {
			t.Fatal("a parsed job has no process")
		}
		hc := job.HealthCheckConfig.HealthChecker
		if (hc.HTTP == nil) == (hc.Shell == nil) {
			t.Fatalf("want exactly one health checker, got %+v", hc)
		}
		if job.HealthCheckConfig.IntervalSecs <= 0 || job.HealthCheckConfig.MinConsecutiveSuccesses < 0 {
			t.Fatalf("health check config escaped validation: %+v", job.HealthCheckConfig)
		}
	})
}
