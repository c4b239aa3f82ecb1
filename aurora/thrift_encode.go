package aurora

import (
	"fmt"
	"maps"
	"slices"
)

// EncodeAssignedTask writes at in Thrift's binary protocol, the encoding an
// Aurora scheduler uses for TaskInfo.data. Optional fields that are unset
// (nil, or empty for the optional strings) are left out, as Thrift's
// generated code leaves out unset optionals; map keys are written sorted so
// the bytes are deterministic.
func EncodeAssignedTask(at *AssignedTask) ([]byte, error) {
	e := &encoder{}
	e.assignedTask(at)
	if e.w.err != nil {
		return nil, fmt.Errorf("encode AssignedTask: %w", e.w.err)
	}
	return e.w.b, nil
}

// encoder writes the structs of api.thrift; the names beside the ids make
// the write sequence read as the IDL does (the binary protocol does not
// carry them).
type encoder struct {
	w binWriter
}

func (e *encoder) structure(_ string, body func()) {
	body()
	e.w.stop()
}

func (e *encoder) field(_ string, typ wireType, id int16, body func()) {
	e.w.fieldHeader(typ, id)
	body()
}

func (e *encoder) str(name string, id int16, v string) {
	e.field(name, tString, id, func() { e.w.string(v) })
}

func (e *encoder) optStr(name string, id int16, v string) {
	if v != "" {
		e.str(name, id, v)
	}
}

func (e *encoder) boolean(name string, id int16, v bool) {
	e.field(name, tBool, id, func() { e.w.bool(v) })
}

func (e *encoder) i32(name string, id int16, v int32) {
	e.field(name, tI32, id, func() { e.w.i32(v) })
}

func (e *encoder) i64(name string, id int16, v int64) {
	e.field(name, tI64, id, func() { e.w.i64(v) })
}

func (e *encoder) double(name string, id int16, v float64) {
	e.field(name, tDouble, id, func() { e.w.double(v) })
}

// list writes a list or a set (the same bytes).
func (e *encoder) list(elem wireType, n int, each func(i int)) {
	e.w.listHeader(elem, n)
	for i := 0; i < n; i++ {
		each(i)
	}
}

func (e *encoder) assignedTask(at *AssignedTask) {
	e.structure("AssignedTask", func() {
		e.str("taskId", 1, at.TaskID)
		e.str("slaveId", 2, at.SlaveID)
		e.str("slaveHost", 3, at.SlaveHost)
		e.field("task", tStruct, 4, func() { e.taskConfig(&at.Task) })
		e.field("assignedPorts", tMap, 5, func() {
			e.w.mapHeader(tString, tI32, len(at.AssignedPorts))
			for _, k := range slices.Sorted(maps.Keys(at.AssignedPorts)) {
				e.w.string(k)
				e.w.i32(at.AssignedPorts[k])
			}
		})
		e.i32("instanceId", 6, at.InstanceID)
	})
}

func (e *encoder) taskConfig(t *TaskConfig) {
	e.structure("TaskConfig", func() {
		e.field("job", tStruct, 28, func() {
			e.structure("JobKey", func() {
				e.str("role", 1, t.Job.Role)
				e.str("environment", 2, t.Job.Environment)
				e.str("name", 3, t.Job.Name)
			})
		})
		e.field("owner", tStruct, 17, func() {
			e.structure("Identity", func() {
				e.optStr("role", 1, t.Owner.Role)
				e.str("user", 2, t.Owner.User)
			})
		})
		e.optStr("jobName", 3, t.LegacyJobName)
		e.optStr("environment", 26, t.LegacyEnvironment)
		e.boolean("isService", 7, t.IsService)
		e.double("numCpus", 8, t.NumCpus)
		e.i64("ramMb", 9, t.RamMb)
		e.i64("diskMb", 10, t.DiskMb)
		e.i32("priority", 11, t.Priority)
		e.i32("maxTaskFailures", 13, t.MaxTaskFailures)
		e.boolean("production", 18, t.Production)
		e.optStr("tier", 30, t.Tier)
		e.field("resources", tSet, 32, func() {
			e.list(tStruct, len(t.Resources), func(i int) { e.resource(&t.Resources[i]) })
		})
		e.field("constraints", tSet, 20, func() { e.list(tStruct, 0, nil) })
		e.field("requestedPorts", tSet, 21, func() {
			e.list(tString, len(t.RequestedPorts), func(i int) {
				e.w.string(t.RequestedPorts[i])
			})
		})
		if t.TaskLinks != nil {
			e.field("taskLinks", tMap, 22, func() {
				e.w.mapHeader(tString, tString, len(t.TaskLinks))
				for _, k := range slices.Sorted(maps.Keys(t.TaskLinks)) {
					e.w.string(k)
					e.w.string(t.TaskLinks[k])
				}
			})
		}
		e.optStr("contactEmail", 23, t.ContactEmail)
		if t.ExecutorConfig != nil {
			e.field("executorConfig", tStruct, 25, func() {
				e.structure("ExecutorConfig", func() {
					e.str("name", 1, t.ExecutorConfig.Name)
					e.str("data", 2, t.ExecutorConfig.Data)
				})
			})
		}
		if t.Metadata != nil {
			e.field("metadata", tSet, 27, func() {
				e.list(tStruct, len(t.Metadata), func(i int) {
					e.structure("Metadata", func() {
						e.str("key", 1, t.Metadata[i].Key)
						e.str("value", 2, t.Metadata[i].Value)
					})
				})
			})
		}
		if t.Container != nil {
			e.field("container", tStruct, 29, func() { e.container(t.Container) })
		}
	})
}

func (e *encoder) resource(r *Resource) {
	e.structure("Resource", func() {
		switch {
		case r.NumCpus != nil:
			e.double("numCpus", 1, *r.NumCpus)
		case r.RamMb != nil:
			e.i64("ramMb", 2, *r.RamMb)
		case r.DiskMb != nil:
			e.i64("diskMb", 3, *r.DiskMb)
		case r.NamedPort != nil:
			e.str("namedPort", 4, *r.NamedPort)
		case r.NumGpus != nil:
			e.i64("numGpus", 5, *r.NumGpus)
		}
	})
}

func (e *encoder) container(c *Container) {
	e.structure("Container", func() {
		if m := c.Mesos; m != nil {
			e.field("mesos", tStruct, 1, func() {
				e.structure("MesosContainer", func() {
					if m.Image != nil {
						e.field("image", tStruct, 1, func() { e.image(m.Image) })
					}
					if m.Volumes != nil {
						e.field("volumes", tList, 2, func() {
							e.list(tStruct, len(m.Volumes), func(i int) {
								v := m.Volumes[i]
								e.structure("Volume", func() {
									e.str("containerPath", 1, v.ContainerPath)
									e.str("hostPath", 2, v.HostPath)
									e.i32("mode", 3, v.Mode)
								})
							})
						})
					}
				})
			})
		}
		if dc := c.Docker; dc != nil {
			e.field("docker", tStruct, 2, func() {
				e.structure("DockerContainer", func() {
					e.str("image", 1, dc.Image)
					if dc.Parameters != nil {
						e.field("parameters", tList, 2, func() {
							e.list(tStruct, len(dc.Parameters), func(i int) {
								p := dc.Parameters[i]
								e.structure("DockerParameter", func() {
									e.str("name", 1, p.Name)
									e.str("value", 2, p.Value)
								})
							})
						})
					}
				})
			})
		}
	})
}

func (e *encoder) image(img *Image) {
	e.structure("Image", func() {
		if img.Docker != nil {
			e.field("docker", tStruct, 1, func() {
				e.structure("DockerImage", func() {
					e.str("name", 1, img.Docker.Name)
					e.str("tag", 2, img.Docker.Tag)
				})
			})
		}
		if img.Appc != nil {
			e.field("appc", tStruct, 2, func() {
				e.structure("AppcImage", func() {
					e.str("name", 1, img.Appc.Name)
					e.str("imageId", 2, img.Appc.ImageID)
				})
			})
		}
	})
}
