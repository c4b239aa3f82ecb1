package aurora

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/thrift/lib/go/thrift"
)

// EncodeAssignedTask writes at in Thrift's binary protocol, the encoding an
// Aurora scheduler uses for TaskInfo.data. Optional fields that are unset
// (nil, or empty for the optional strings) are left out, as Thrift's
// generated code leaves out unset optionals; map keys are written sorted so
// the bytes are deterministic.
func EncodeAssignedTask(at *AssignedTask) ([]byte, error) {
	buf := thrift.NewTMemoryBuffer()
	e := &encoder{ctx: context.Background(), p: thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})}
	e.assignedTask(at)
	if e.err != nil {
		return nil, fmt.Errorf("encode AssignedTask: %w", e.err)
	}
	return buf.Bytes(), nil
}

// encoder keeps the first error so the write sequence reads straight; writes
// into a memory buffer only fail on sizes Thrift cannot express.
type encoder struct {
	ctx context.Context
	p   *thrift.TBinaryProtocol
	err error
}

func (e *encoder) keep(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

func (e *encoder) structure(name string, body func()) {
	e.keep(e.p.WriteStructBegin(e.ctx, name))
	body()
	e.keep(e.p.WriteFieldStop(e.ctx))
	e.keep(e.p.WriteStructEnd(e.ctx))
}

func (e *encoder) field(name string, typ thrift.TType, id int16, body func()) {
	e.keep(e.p.WriteFieldBegin(e.ctx, name, typ, id))
	body()
	e.keep(e.p.WriteFieldEnd(e.ctx))
}

func (e *encoder) str(name string, id int16, v string) {
	e.field(name, thrift.STRING, id, func() { e.keep(e.p.WriteString(e.ctx, v)) })
}

func (e *encoder) optStr(name string, id int16, v string) {
	if v != "" {
		e.str(name, id, v)
	}
}

func (e *encoder) boolean(name string, id int16, v bool) {
	e.field(name, thrift.BOOL, id, func() { e.keep(e.p.WriteBool(e.ctx, v)) })
}

func (e *encoder) i32(name string, id int16, v int32) {
	e.field(name, thrift.I32, id, func() { e.keep(e.p.WriteI32(e.ctx, v)) })
}

func (e *encoder) i64(name string, id int16, v int64) {
	e.field(name, thrift.I64, id, func() { e.keep(e.p.WriteI64(e.ctx, v)) })
}

func (e *encoder) double(name string, id int16, v float64) {
	e.field(name, thrift.DOUBLE, id, func() { e.keep(e.p.WriteDouble(e.ctx, v)) })
}

func (e *encoder) list(typ, elem thrift.TType, n int, each func(i int)) {
	if typ == thrift.SET {
		e.keep(e.p.WriteSetBegin(e.ctx, elem, n))
	} else {
		e.keep(e.p.WriteListBegin(e.ctx, elem, n))
	}
	for i := 0; i < n; i++ {
		each(i)
	}
	if typ == thrift.SET {
		e.keep(e.p.WriteSetEnd(e.ctx))
	} else {
		e.keep(e.p.WriteListEnd(e.ctx))
	}
}

func (e *encoder) assignedTask(at *AssignedTask) {
	e.structure("AssignedTask", func() {
		e.str("taskId", 1, at.TaskID)
		e.str("slaveId", 2, at.SlaveID)
		e.str("slaveHost", 3, at.SlaveHost)
		e.field("task", thrift.STRUCT, 4, func() { e.taskConfig(&at.Task) })
		e.field("assignedPorts", thrift.MAP, 5, func() {
			e.keep(e.p.WriteMapBegin(e.ctx, thrift.STRING, thrift.I32, len(at.AssignedPorts)))
			for _, k := range slices.Sorted(maps.Keys(at.AssignedPorts)) {
				e.keep(e.p.WriteString(e.ctx, k))
				e.keep(e.p.WriteI32(e.ctx, at.AssignedPorts[k]))
			}
			e.keep(e.p.WriteMapEnd(e.ctx))
		})
		e.i32("instanceId", 6, at.InstanceID)
	})
}

func (e *encoder) taskConfig(t *TaskConfig) {
	e.structure("TaskConfig", func() {
		e.field("job", thrift.STRUCT, 28, func() {
			e.structure("JobKey", func() {
				e.str("role", 1, t.Job.Role)
				e.str("environment", 2, t.Job.Environment)
				e.str("name", 3, t.Job.Name)
			})
		})
		e.field("owner", thrift.STRUCT, 17, func() {
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
		e.field("resources", thrift.SET, 32, func() {
			e.list(thrift.SET, thrift.STRUCT, len(t.Resources), func(i int) { e.resource(&t.Resources[i]) })
		})
		e.field("constraints", thrift.SET, 20, func() { e.list(thrift.SET, thrift.STRUCT, 0, nil) })
		e.field("requestedPorts", thrift.SET, 21, func() {
			e.list(thrift.SET, thrift.STRING, len(t.RequestedPorts), func(i int) {
				e.keep(e.p.WriteString(e.ctx, t.RequestedPorts[i]))
			})
		})
		if t.TaskLinks != nil {
			e.field("taskLinks", thrift.MAP, 22, func() {
				e.keep(e.p.WriteMapBegin(e.ctx, thrift.STRING, thrift.STRING, len(t.TaskLinks)))
				for _, k := range slices.Sorted(maps.Keys(t.TaskLinks)) {
					e.keep(e.p.WriteString(e.ctx, k))
					e.keep(e.p.WriteString(e.ctx, t.TaskLinks[k]))
				}
				e.keep(e.p.WriteMapEnd(e.ctx))
			})
		}
		e.optStr("contactEmail", 23, t.ContactEmail)
		if t.ExecutorConfig != nil {
			e.field("executorConfig", thrift.STRUCT, 25, func() {
				e.structure("ExecutorConfig", func() {
					e.str("name", 1, t.ExecutorConfig.Name)
					e.str("data", 2, t.ExecutorConfig.Data)
				})
			})
		}
		if t.Metadata != nil {
			e.field("metadata", thrift.SET, 27, func() {
				e.list(thrift.SET, thrift.STRUCT, len(t.Metadata), func(i int) {
					e.structure("Metadata", func() {
						e.str("key", 1, t.Metadata[i].Key)
						e.str("value", 2, t.Metadata[i].Value)
					})
				})
			})
		}
		if t.Container != nil {
			e.field("container", thrift.STRUCT, 29, func() { e.container(t.Container) })
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
			e.field("mesos", thrift.STRUCT, 1, func() {
				e.structure("MesosContainer", func() {
					if m.Image != nil {
						e.field("image", thrift.STRUCT, 1, func() { e.image(m.Image) })
					}
					if m.Volumes != nil {
						e.field("volumes", thrift.LIST, 2, func() {
							e.list(thrift.LIST, thrift.STRUCT, len(m.Volumes), func(i int) {
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
			e.field("docker", thrift.STRUCT, 2, func() {
				e.structure("DockerContainer", func() {
					e.str("image", 1, dc.Image)
					if dc.Parameters != nil {
						e.field("parameters", thrift.LIST, 2, func() {
							e.list(thrift.LIST, thrift.STRUCT, len(dc.Parameters), func(i int) {
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
			e.field("docker", thrift.STRUCT, 1, func() {
				e.structure("DockerImage", func() {
					e.str("name", 1, img.Docker.Name)
					e.str("tag", 2, img.Docker.Tag)
				})
			})
		}
		if img.Appc != nil {
			e.field("appc", thrift.STRUCT, 2, func() {
				e.structure("AppcImage", func() {
					e.str("name", 1, img.Appc.Name)
					e.str("imageId", 2, img.Appc.ImageID)
				})
			})
		}
	})
}
