package scheduler

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/taskrun"
)

// Aurora's executor naming (MesosTaskFactory): executor id "thermos-<task
// id>", name "aurora.task", source "<role>.<env>.<job>.<instance>".
const (
	executorIDPrefix = "thermos-"
	executorName     = "aurora.task"
)

// Aurora gives the executor a token share (RESOURCES_EPSILON) because Mesos
// refuses an executor without resources; the executor's real overhead is
// added to the task instead, since both share one container.
const (
	epsilonCPUs  = 0.01
	epsilonMemMB = 32
)

// ExecutorSettings say how to start dewar-executor on the agent.
type ExecutorSettings struct {
	// Command is the executor's path on the agent.
	Command string
	// Args are appended to the command line (the announcer flags).
	Args []string
	// CPUs and MemMB are the executor's own overhead (Aurora's
	// --thermos_executor_cpu and --thermos_executor_ram).
	CPUs  float64
	MemMB float64
}

// Launch is one instance to start from an offer.
type Launch struct {
	Job         *aurora.MesosJob
	JobJSON     []byte // the executor config, as submitted
	Instance    int
	TaskID      string // "" picks a new one
	FrameworkID string
}

// NewTaskID names a task as Aurora does, minus the timestamp:
// <role>-<env>-<job>-<instance>-<uuid>.
func NewTaskID(job *aurora.MesosJob, instance int) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	h := hex.EncodeToString(b[:])
	uuid := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	return fmt.Sprintf("%s-%s-%s-%d-%s", job.Role, job.Environment, job.Name, instance, uuid)
}

// Need is what one task of job takes from an offer, ports aside: the job's
// resources plus the executor overhead.
func (s ExecutorSettings) Need(job *aurora.MesosJob) (cpus, memMB float64) {
	if r := job.Task.Resources; r != nil {
		cpus, memMB = r.CPU, float64(r.RAM)/(1<<20)
	}
	return cpus + s.CPUs, memMB + s.MemMB
}

// BuildTask makes the TaskInfo for l from what is left of an offer (avail),
// and returns it with the resources it uses. Ports come from avail's port
// ranges, lowest first.
func (s ExecutorSettings) BuildTask(l Launch, offer mesos.Offer, avail mesos.Resources) (mesos.TaskInfo, mesos.Resources, error) {
	job := l.Job
	cpus, mem := s.Need(job)
	haveCPUs, _ := resources.CPUs(avail...)
	haveMem, _ := resources.Memory(avail...)
	if haveCPUs+1e-9 < cpus || float64(haveMem)+1e-9 < mem {
		return mesos.TaskInfo{}, nil, fmt.Errorf("offer has cpus %.2f mem %dMB left, an instance needs cpus %.2f mem %.0fMB", haveCPUs, haveMem, cpus, mem)
	}
	names := PortNames(job)
	ports, portRes, err := pickPorts(avail, names)
	if err != nil {
		return mesos.TaskInfo{}, nil, err
	}
	taskID := l.TaskID
	if taskID == "" {
		taskID = NewTaskID(job, l.Instance)
	}
	data, err := aurora.EncodeAssignedTask(aurora.NewAssignedTask(job, l.JobJSON, aurora.Assignment{
		TaskID: taskID, SlaveID: offer.AgentID.Value, SlaveHost: offer.Hostname,
		Instance: l.Instance, Ports: ports,
	}))
	if err != nil {
		return mesos.TaskInfo{}, nil, fmt.Errorf("encode AssignedTask of %s: %w", taskID, err)
	}
	taskRes := mesos.Resources{
		resources.NewCPUs(cpus - epsilonCPUs).Resource,
		resources.NewMemory(mem - epsilonMemMB).Resource,
	}
	if portRes != nil {
		taskRes = append(taskRes, *portRes)
	}
	exec := s.executorInfo(l, taskID)
	// Take the offer's role (and allocation) so that Mesos, and Minus below,
	// match these resources with the offered ones: a resource without a role
	// is not comparable with one whose role is "*".
	taskRes = likeOffered(taskRes, avail)
	exec.Resources = likeOffered(exec.Resources, avail)
	ti := mesos.TaskInfo{
		Name:      jobKey(job),
		TaskID:    mesos.TaskID{Value: taskID},
		AgentID:   offer.AgentID,
		Resources: taskRes,
		Executor:  &exec,
		Data:      data,
	}
	used := taskRes.Clone().Plus(exec.Resources...)
	return ti, used, nil
}

func (s ExecutorSettings) executorInfo(l Launch, taskID string) mesos.ExecutorInfo {
	job := l.Job
	args := append([]string{s.Command}, s.Args...)
	shell := false
	exec := mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: executorIDPrefix + taskID},
		FrameworkID: &mesos.FrameworkID{Value: l.FrameworkID},
		Name:        ptr(executorName),
		Source:      ptr(fmt.Sprintf("%s.%s.%s.%d", job.Role, job.Environment, job.Name, l.Instance)),
		Command:     &mesos.CommandInfo{Value: ptr(s.Command), Shell: &shell, Arguments: args},
		Resources: []mesos.Resource{
			resources.NewCPUs(epsilonCPUs).Resource,
			resources.NewMemory(epsilonMemMB).Resource,
		},
	}
	if len(job.Networks) > 0 {
		// The CNI extension: the agent's network/cni isolator attaches the
		// executor's container to these networks, eth0, eth1, ... in order.
		ci := &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum()}
		for _, n := range job.Networks {
			ci.NetworkInfos = append(ci.NetworkInfos, mesos.NetworkInfo{Name: ptr(n.Name), Labels: taskrun.Labels(n.Labels)})
		}
		exec.Container = ci
	}
	return exec
}

// pickPorts takes one port per name from the lowest free ports of avail.
func pickPorts(avail mesos.Resources, names []string) (map[string]int32, *mesos.Resource, error) {
	if len(names) == 0 {
		return nil, nil, nil
	}
	ranges, _ := resources.Ports(avail...)
	var free []uint64
	for _, r := range ranges.Sort() {
		for p := r.Begin; p <= r.End && len(free) < len(names); p++ {
			free = append(free, p)
		}
		if len(free) == len(names) {
			break
		}
	}
	if len(free) < len(names) {
		return nil, nil, fmt.Errorf("offer has %d free ports, the task needs %d (%v)", len(free), len(names), names)
	}
	ports := map[string]int32{}
	var nums []uint64
	for i, n := range names {
		ports[n] = int32(free[i])
		nums = append(nums, free[i])
	}
	res := resources.Build().Name(resources.NamePorts).Ranges(mesos.NewRanges(nums...)).Resource
	return ports, &res, nil
}

func ptr[T any](v T) *T { return &v }

// likeOffered copies role and allocation info from the offered resource of
// the same name.
func likeOffered(rs mesos.Resources, offered mesos.Resources) mesos.Resources {
	for i := range rs {
		for _, o := range offered {
			if o.Name == rs[i].Name {
				rs[i].Role = o.Role
				rs[i].AllocationInfo = o.AllocationInfo
				break
			}
		}
	}
	return rs
}
