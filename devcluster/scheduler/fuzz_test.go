package scheduler

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// FuzzTaskRecord: a task record read back from the stub's database (a
// file on disk an older stub or a crash may have left) decodes to a
// record or an error, never a panic; what decodes is written and read
// back unchanged, and the stub's summaries of it work.
func FuzzTaskRecord(f *testing.F) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	rec := TaskRecord{TaskID: "www-prod-hello-0-1", Instance: 0, AgentID: "agent-1", State: "TASK_RUNNING",
		Ports: map[string]int32{"http": 31000}, Launched: at, Updated: at.Add(time.Second),
		Views: Views{Agent: []Network{{Name: "blue", Addresses: []string{"198.18.0.2"}}},
			Executor: []Network{{Name: "blue", Addresses: []string{"198.18.0.3"}}}}}
	b, err := json.Marshal(rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"task_id":"t","views":{"agent":null,"executor":[]}}`))
	f.Add([]byte(`{"task_id":"t","launched":"0001-01-01T00:00:00Z","ports":{"":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeTask([]byte("k"), data)
		if err != nil {
			return
		}
		_ = rec.Views.Disagreement()
		_ = Latest([]TaskRecord{rec, rec})
		b1, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("write a decoded record: %v", err)
		}
		again, err := decodeTask([]byte("k"), b1)
		if err != nil {
			t.Fatalf("read back what was written: %v\n%s", err, b1)
		}
		b2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip is not stable:\n%s\n%s", b1, b2)
		}
	})
}

// FuzzViewsOf: a status update as the master forwards it (protobuf
// TaskStatus, with the executor's network_infos label and the agent's
// merged container_status) yields the two address views or an error,
// never a panic.
func FuzzViewsOf(f *testing.F) {
	name, v4, v6 := "blue", "198.18.0.2", "2001:db8::2/64"
	ni := mesos.NetworkInfo{Name: &name, IPAddresses: []mesos.NetworkInfo_IPAddress{
		{Protocol: mesos.IPv4.Enum(), IPAddress: &v4}, {Protocol: mesos.IPv6.Enum(), IPAddress: &v6}}}
	label, _ := json.Marshal([]mesos.NetworkInfo{ni})
	labelValue := string(label)
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum(),
		ContainerStatus: &mesos.ContainerStatus{NetworkInfos: []mesos.NetworkInfo{ni, ni}},
		Labels:          &mesos.Labels{Labels: []mesos.Label{{Key: ExecutorNetworksLabel, Value: &labelValue}}}}
	b, err := st.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var st mesos.TaskStatus
		if err := st.Unmarshal(data); err != nil {
			return
		}
		v, err := ViewsOf(st)
		if err != nil {
			return
		}
		_ = v.Disagreement()
	})
}
