package aurora

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestDecodesAnotherEncoder decodes AssignedTasks that dewar did not
// encode: testdata/aurora/thrift/*.bin were written by the Thrift 0.17
// Python bindings generated from Aurora's own api.thrift (gen.py beside
// them, from the job JSON of the same name there, kept as it was encoded),
// shaped as Aurora's scheduler fills TaskInfo.data
// (MesosTaskFactory.serializeTask, TBinaryProtocol): every TaskConfig
// field set, including the sets, maps, unions and the container we only
// skip. The same files seed FuzzDecodeAssignedTask.
func TestDecodesAnotherEncoder(t *testing.T) {
	for _, tt := range []struct{ file, job, role string }{
		{"web_service", "hello", "www-data"},
		{"cni_service", "cni_web", "root"},
		{"hello_world", "hello_world", "www-data"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := readFixture(t, filepath.Join("thrift", tt.file+".bin"))
			at, err := DecodeAssignedTask(data)
			if err != nil {
				t.Fatal(err)
			}
			task := at.Task
			if task.Job.Role != tt.role || task.Job.Environment == "" || task.Job.Name != tt.job || task.Owner.User != tt.role {
				t.Errorf("job = %+v, owner = %+v", task.Job, task.Owner)
			}
			if at.SlaveHost != "agent1.example.invalid" || at.InstanceID != 0 || at.AssignedPorts["http"] != 31000 || at.AssignedPorts["health"] != 31001 {
				t.Errorf("assigned task = host %q, instance %d, ports %v", at.SlaveHost, at.InstanceID, at.AssignedPorts)
			}
			if !task.IsService || task.MaxTaskFailures != 1 || task.TaskLinks["http"] == "" || len(task.Metadata) != 1 {
				t.Errorf("task config = %+v", task)
			}
			if task.ExecutorConfig == nil || task.ExecutorConfig.Name != "AuroraExecutor" {
				t.Fatalf("executor config = %+v", task.ExecutorConfig)
			}
			if want := readFixture(t, filepath.Join("thrift", tt.file+".json")); !bytes.Equal([]byte(task.ExecutorConfig.Data), want) {
				t.Errorf("executorConfig.data is not the job JSON it was built from")
			}
			if _, err := ParseJob([]byte(task.ExecutorConfig.Data)); err != nil {
				t.Errorf("ParseJob(executorConfig.data): %v", err)
			}
		})
	}
}
