package aurora

// The structs below mirror the parts of Aurora's api.thrift that an executor
// uses. Field ids are noted on each field because they, not the names, are what
// travels on the wire.

// AssignedTask is what the scheduler puts into TaskInfo.data.
type AssignedTask struct {
	TaskID        string           // 1
	SlaveID       string           // 2
	SlaveHost     string           // 3
	Task          TaskConfig       // 4
	AssignedPorts map[string]int32 // 5: port name → port number on the agent
	InstanceID    int32            // 6
}

// TaskConfig describes the task of a job.
type TaskConfig struct {
	Job             JobKey            // 28
	Owner           Identity          // 17
	IsService       bool              // 7
	NumCpus         float64           // 8 (deprecated in Aurora, still sent)
	RamMb           int64             // 9
	DiskMb          int64             // 10
	Priority        int32             // 11
	MaxTaskFailures int32             // 13
	Production      bool              // 18
	Tier            string            // 30
	Resources       []Resource        // 32 set<Resource>
	RequestedPorts  []string          // 21 set<string>
	TaskLinks       map[string]string // 22
	ContactEmail    string            // 23
	ExecutorConfig  *ExecutorConfig   // 25
	Metadata        []Metadata        // 27 set<Metadata>
	Container       *Container        // 29

	// Pre-0.7 schedulers sent the job key spread over these fields instead
	// of field 28; Key falls back to them.
	LegacyEnvironment string // 26
	LegacyJobName     string // 3
}

// Key is the job's key, taken from field 28 or, for old schedulers, from
// owner.role, environment and jobName.
func (t *TaskConfig) Key() JobKey {
	k := t.Job
	if k.Role == "" {
		k.Role = t.Owner.Role
	}
	if k.Environment == "" {
		k.Environment = t.LegacyEnvironment
	}
	if k.Name == "" {
		k.Name = t.LegacyJobName
	}
	return k
}

// JobKey names a job: role/environment/name.
type JobKey struct {
	Role        string // 1
	Environment string // 2
	Name        string // 3
}

// Identity is the deprecated owner of a task.
type Identity struct {
	Role string // 1 (removed in later Aurora versions)
	User string // 2
}

// ExecutorConfig names the executor and carries its configuration.
type ExecutorConfig struct {
	Name string // 1
	Data string // 2: the MesosJob JSON
}

// Metadata is a free-form key/value pair shown in Aurora's UI.
type Metadata struct {
	Key   string // 1
	Value string // 2
}

// Resource is the union Resource: exactly one field is set.
type Resource struct {
	NumCpus   *float64 // 1
	RamMb     *int64   // 2
	DiskMb    *int64   // 3
	NamedPort *string  // 4
	NumGpus   *int64   // 5
}

// Container is the union Container: Mesos (the default) or Docker.
type Container struct {
	Mesos  *MesosContainer  // 1
	Docker *DockerContainer // 2
}

// MesosContainer runs the task in the Mesos containerizer, optionally with a
// filesystem image.
type MesosContainer struct {
	Image   *Image   // 1
	Volumes []Volume // 2
}

// Image is the union Image.
type Image struct {
	Docker *DockerImage // 1
	Appc   *AppcImage   // 2
}

// DockerImage names an image in Docker format.
type DockerImage struct {
	Name string // 1
	Tag  string // 2
}

// AppcImage names an image in AppC format.
type AppcImage struct {
	Name    string // 1
	ImageID string // 2
}

// Volume is a mount into the container. Mode is 1 (RW) or 2 (RO).
type Volume struct {
	ContainerPath string // 1
	HostPath      string // 2
	Mode          int32  // 3
}

// DockerContainer runs the task with the Docker containerizer.
type DockerContainer struct {
	Image      string            // 1
	Parameters []DockerParameter // 2
}

// DockerParameter is a docker CLI parameter.
type DockerParameter struct {
	Name  string // 1
	Value string // 2
}
