package aurora

import "testing"

// The executor decodes one task per launch; these show the cost stays far
// below anything a launch notices.

func BenchmarkDecodeAssignedTask(b *testing.B) {
	raw := readFixture(b, "web_service.json")
	job, err := ParseJob(raw)
	if err != nil {
		b.Fatal(err)
	}
	data, err := BuildAssignedTask(job, raw, "t", 0, map[string]int32{"http": 1, "health": 2})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAssignedTask(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJob(b *testing.B) {
	raw := readFixture(b, "ordered_final.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJob(raw); err != nil {
			b.Fatal(err)
		}
	}
}
