package pystachio

import "testing"

func BenchmarkRender(b *testing.B) {
	const cmd = "exec server --http {{thermos.ports[http]}} --admin {{thermos.ports[health]}} --bind {{mesos.ip}} --id {{thermos.task_id}}/{{mesos.instance}}"
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(cmd, scope); err != nil {
			b.Fatal(err)
		}
	}
}
