package pystachio

import (
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/benchtab"
)

// BenchmarkRender renders a typical command line many times after a
// warm-up, beside a floor from the same run: strings.NewReplacer replacing
// the same five tags with their values (no parsing, no lookup).
func BenchmarkRender(b *testing.B) {
	const cmd = "exec server --http {{thermos.ports[http]}} --admin {{thermos.ports[health]}} --bind {{mesos.ip}} --id {{thermos.task_id}}/{{mesos.instance}}"
	for b.Loop() {
		render, floor := benchtab.Pair(b, 50, 1000, func() (time.Duration, error) {
			start := time.Now()
			_, err := Render(cmd, scope)
			return time.Since(start), err
		}, func() (time.Duration, error) {
			start := time.Now()
			r := strings.NewReplacer("{{thermos.ports[http]}}", "1", "{{thermos.ports[health]}}", "2", "{{mesos.ip}}", "3",
				"{{thermos.task_id}}", "4", "{{mesos.instance}}", "5")
			_ = r.Replace(cmd)
			return time.Since(start), nil
		})
		benchtab.Report(b, "pystachio: render a command line with five tags", "render", render,
			"strings.Replacer of the same five tags", floor)
	}
}
