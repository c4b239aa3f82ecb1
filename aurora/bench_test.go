package aurora

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/benchtab"
)

// The executor decodes one task per launch; these show the cost stays far
// below anything a launch notices. Each takes many samples after a
// warm-up, beside a floor from the same run: encoding/json decoding the
// same bytes into untyped values (what any JSON reader pays).

const microWarm, microSamples = 50, 1000

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
	for b.Loop() {
		decode, floor := benchtab.Pair(b, microWarm, microSamples, func() (time.Duration, error) {
			start := time.Now()
			_, err := DecodeAssignedTask(data)
			return time.Since(start), err
		}, untypedJSON(raw))
		benchtab.Report(b, "aurora: decode an AssignedTask (Thrift, web_service.json inside)", "decode", decode,
			"encoding/json of the job JSON inside, untyped", floor)
	}
}

func BenchmarkParseJob(b *testing.B) {
	raw := readFixture(b, "ordered_final.json")
	for b.Loop() {
		parse, floor := benchtab.Pair(b, microWarm, microSamples, func() (time.Duration, error) {
			start := time.Now()
			_, err := ParseJob(raw)
			return time.Since(start), err
		}, untypedJSON(raw))
		benchtab.Report(b, "aurora: parse and validate a MesosJob (ordered_final.json)", "parse", parse,
			"encoding/json of the same bytes, untyped", floor)
	}
}

func untypedJSON(raw []byte) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		start := time.Now()
		var v any
		err := json.Unmarshal(raw, &v)
		return time.Since(start), err
	}
}
