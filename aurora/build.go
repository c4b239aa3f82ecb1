package aurora

import (
	"fmt"
	"sort"
)

// ExecutorName is what Aurora puts in executorConfig.name
// (AURORA_EXECUTOR_NAME in api.thrift).
const ExecutorName = "AuroraExecutor"

// Assignment is what the scheduler decides when it places one instance.
type Assignment struct {
	TaskID    string
	SlaveID   string
	SlaveHost string
	Instance  int
	Ports     map[string]int32 // port name → agent port
}

// NewAssignedTask builds the AssignedTask an Aurora scheduler would send for
// one instance of job, with jobJSON (the job as ParseJob read it) as the
// executor config.
func NewAssignedTask(job *MesosJob, jobJSON []byte, a Assignment) *AssignedTask {
	t := TaskConfig{
		Job:             JobKey{Role: job.Role, Environment: job.Environment, Name: job.Name},
		Owner:           Identity{User: job.Role},
		IsService:       job.Service,
		Priority:        int32(job.Priority),
		MaxTaskFailures: int32(job.MaxTaskFailures),
		Production:      job.Production,
		Tier:            job.Tier,
		ContactEmail:    job.Contact,
		ExecutorConfig:  &ExecutorConfig{Name: ExecutorName, Data: string(jobJSON)},
		Metadata:        job.Metadata,
		Container:       &Container{Mesos: &MesosContainer{}},
	}
	if r := job.Task.Resources; r != nil {
		cpu, ram, disk := r.CPU, r.RAM>>20, r.Disk>>20
		t.NumCpus, t.RamMb, t.DiskMb = cpu, ram, disk
		t.Resources = append(t.Resources, Resource{NumCpus: &cpu}, Resource{RamMb: &ram}, Resource{DiskMb: &disk})
	}
	names := make([]string, 0, len(a.Ports))
	for name := range a.Ports {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.RequestedPorts = append(t.RequestedPorts, name)
		t.Resources = append(t.Resources, Resource{NamedPort: &name})
	}
	return &AssignedTask{
		TaskID:        a.TaskID,
		SlaveID:       a.SlaveID,
		SlaveHost:     a.SlaveHost,
		Task:          t,
		AssignedPorts: a.Ports,
		InstanceID:    int32(a.Instance),
	}
}

// BuildAssignedTask encodes the AssignedTask for one instance of job, as
// TaskInfo.data. Tests and the scheduler stub use it to launch fixtures.
func BuildAssignedTask(job *MesosJob, jobJSON []byte, taskID string, instance int, ports map[string]int32) ([]byte, error) {
	if job == nil {
		return nil, fmt.Errorf("build AssignedTask %q: no job given", taskID)
	}
	return EncodeAssignedTask(NewAssignedTask(job, jobJSON, Assignment{
		TaskID:    taskID,
		SlaveHost: "localhost",
		Instance:  instance,
		Ports:     ports,
	}))
}
