package aurora

import (
	"errors"
	"fmt"
	"strings"
)

// DecodeError says which field of the AssignedTask could not be read.
type DecodeError struct {
	Field string // dotted path, e.g. "AssignedTask.task.executorConfig.data"
	Err   error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v (TaskInfo.data must be an Aurora AssignedTask in Thrift binary protocol)", e.Field, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// errWireType is wrapped when a known field arrives with another Thrift type.
var errWireType = errors.New("wrong wire type")

// DecodeAssignedTask reads an AssignedTask in Thrift's binary protocol, as an
// Aurora scheduler puts it into TaskInfo.data. Fields this package does not
// know are skipped by their wire type, as Thrift's generated code does; a
// known field with another wire type, or input that ends early, is an error
// naming the field.
func DecodeAssignedTask(data []byte) (*AssignedTask, error) {
	d := &decoder{p: &binReader{b: data}, path: []string{"AssignedTask"}}
	var at AssignedTask
	if err := d.readStruct(assignedTaskFields(&at)); err != nil {
		return nil, err
	}
	return &at, nil
}

type decoder struct {
	p    *binReader
	path []string
}

// field is one known field of a struct: its name for errors, its wire type
// and how to read its value.
type field struct {
	name string
	typ  wireType
	read func(d *decoder) error
}

func (d *decoder) fail(format string, args ...any) error {
	return &DecodeError{Field: strings.Join(d.path, "."), Err: fmt.Errorf(format, args...)}
}

func (d *decoder) push(name string) { d.path = append(d.path, name) }
func (d *decoder) pop()             { d.path = d.path[:len(d.path)-1] }

func (d *decoder) readStruct(fields map[int16]field) error {
	for {
		typ, id, err := d.p.fieldHeader()
		if err != nil {
			return d.fail("field header: %w", err)
		}
		if typ == tStop {
			return nil
		}
		f, ok := fields[id]
		if !ok {
			if err := d.p.skip(typ, skipDepth); err != nil {
				return d.fail("skipping unknown field %d of type %s: %w", id, typ, err)
			}
			continue
		}
		d.push(f.name)
		if typ != f.typ {
			err = d.fail("field %d has %w %s, want %s", id, errWireType, typ, f.typ)
		} else {
			err = f.read(d)
		}
		d.pop()
		if err != nil {
			return err
		}
	}
}

func str(dst *string) field {
	return field{typ: tString, read: func(d *decoder) error {
		v, err := d.p.string()
		if err != nil {
			return d.fail("string: %w", err)
		}
		*dst = v
		return nil
	}}
}

func boolean(dst *bool) field {
	return field{typ: tBool, read: func(d *decoder) error {
		v, err := d.p.bool()
		if err != nil {
			return d.fail("bool: %w", err)
		}
		*dst = v
		return nil
	}}
}

func i32(dst *int32) field {
	return field{typ: tI32, read: func(d *decoder) error {
		v, err := d.p.i32()
		if err != nil {
			return d.fail("i32: %w", err)
		}
		*dst = v
		return nil
	}}
}

func i64(dst *int64) field {
	return field{typ: tI64, read: func(d *decoder) error {
		v, err := d.p.i64()
		if err != nil {
			return d.fail("i64: %w", err)
		}
		*dst = v
		return nil
	}}
}

func double(dst *float64) field {
	return field{typ: tDouble, read: func(d *decoder) error {
		v, err := d.p.double()
		if err != nil {
			return d.fail("double: %w", err)
		}
		*dst = v
		return nil
	}}
}

func structure(fields func() map[int16]field) field {
	return field{typ: tStruct, read: func(d *decoder) error { return d.readStruct(fields()) }}
}

// named sets the name a field is reported under.
func named(name string, f field) field {
	f.name = name
	return f
}

// collection reads a list or set whose elements have wire type elem; each
// element is read by one call of next(i).
func collection(typ, elem wireType, next func(i int) field) field {
	return field{typ: typ, read: func(d *decoder) error {
		et, size, err := d.p.listHeader()
		if err != nil {
			return d.fail("%s header: %w", typ, err)
		}
		if size > 0 && et != elem {
			return d.fail("elements have %w %s, want %s", errWireType, et, elem)
		}
		for i := 0; i < size; i++ {
			f := next(i)
			d.push(fmt.Sprintf("[%d]", i))
			err := f.read(d)
			d.pop()
			if err != nil {
				return err
			}
		}
		return nil
	}}
}

// mapping reads a map whose keys and values have the given wire types.
func mapping(kt, vt wireType, next func() (k, v field, store func())) field {
	return field{typ: tMap, read: func(d *decoder) error {
		gotK, gotV, size, err := d.p.mapHeader()
		if err != nil {
			return d.fail("map header: %w", err)
		}
		if size > 0 && (gotK != kt || gotV != vt) {
			return d.fail("map<%s,%s> has %w map<%s,%s>", kt, vt, errWireType, gotK, gotV)
		}
		for i := 0; i < size; i++ {
			k, v, store := next()
			d.push(fmt.Sprintf("[%d]", i))
			err := k.read(d)
			if err == nil {
				err = v.read(d)
			}
			d.pop()
			if err != nil {
				return err
			}
			store()
		}
		return nil
	}}
}

func stringSet(dst *[]string) field {
	return collection(tSet, tString, func(int) field {
		*dst = append(*dst, "")
		return str(&(*dst)[len(*dst)-1])
	})
}

func assignedTaskFields(at *AssignedTask) map[int16]field {
	return map[int16]field{
		1: named("taskId", str(&at.TaskID)),
		2: named("slaveId", str(&at.SlaveID)),
		3: named("slaveHost", str(&at.SlaveHost)),
		4: named("task", structure(func() map[int16]field { return taskConfigFields(&at.Task) })),
		5: named("assignedPorts", mapping(tString, tI32, func() (field, field, func()) {
			var k string
			var v int32
			return str(&k), i32(&v), func() {
				if at.AssignedPorts == nil {
					at.AssignedPorts = make(map[string]int32)
				}
				at.AssignedPorts[k] = v
			}
		})),
		6: named("instanceId", i32(&at.InstanceID)),
	}
}

func taskConfigFields(t *TaskConfig) map[int16]field {
	return map[int16]field{
		3:  named("jobName", str(&t.LegacyJobName)),
		7:  named("isService", boolean(&t.IsService)),
		8:  named("numCpus", double(&t.NumCpus)),
		9:  named("ramMb", i64(&t.RamMb)),
		10: named("diskMb", i64(&t.DiskMb)),
		11: named("priority", i32(&t.Priority)),
		13: named("maxTaskFailures", i32(&t.MaxTaskFailures)),
		17: named("owner", structure(func() map[int16]field {
			return map[int16]field{
				1: named("role", str(&t.Owner.Role)),
				2: named("user", str(&t.Owner.User)),
			}
		})),
		18: named("production", boolean(&t.Production)),
		21: named("requestedPorts", stringSet(&t.RequestedPorts)),
		22: named("taskLinks", mapping(tString, tString, func() (field, field, func()) {
			var k, v string
			return str(&k), str(&v), func() {
				if t.TaskLinks == nil {
					t.TaskLinks = make(map[string]string)
				}
				t.TaskLinks[k] = v
			}
		})),
		23: named("contactEmail", str(&t.ContactEmail)),
		25: named("executorConfig", structure(func() map[int16]field {
			t.ExecutorConfig = &ExecutorConfig{}
			return map[int16]field{
				1: named("name", str(&t.ExecutorConfig.Name)),
				2: named("data", str(&t.ExecutorConfig.Data)),
			}
		})),
		26: named("environment", str(&t.LegacyEnvironment)),
		27: named("metadata", collection(tSet, tStruct, func(int) field {
			t.Metadata = append(t.Metadata, Metadata{})
			m := &t.Metadata[len(t.Metadata)-1]
			return structure(func() map[int16]field {
				return map[int16]field{1: named("key", str(&m.Key)), 2: named("value", str(&m.Value))}
			})
		})),
		28: named("job", structure(func() map[int16]field {
			return map[int16]field{
				1: named("role", str(&t.Job.Role)),
				2: named("environment", str(&t.Job.Environment)),
				3: named("name", str(&t.Job.Name)),
			}
		})),
		29: named("container", structure(func() map[int16]field {
			t.Container = &Container{}
			return containerFields(t.Container)
		})),
		30: named("tier", str(&t.Tier)),
		32: named("resources", collection(tSet, tStruct, func(int) field {
			t.Resources = append(t.Resources, Resource{})
			return structure(func() map[int16]field { return resourceFields(&t.Resources[len(t.Resources)-1]) })
		})),
	}
}

func resourceFields(r *Resource) map[int16]field {
	return map[int16]field{
		1: named("numCpus", optional(&r.NumCpus, double)),
		2: named("ramMb", optional(&r.RamMb, i64)),
		3: named("diskMb", optional(&r.DiskMb, i64)),
		4: named("namedPort", optional(&r.NamedPort, str)),
		5: named("numGpus", optional(&r.NumGpus, i64)),
	}
}

// optional reads a value into a fresh *T, so that a union member is non-nil
// exactly when it was on the wire.
func optional[T any](dst **T, mk func(*T) field) field {
	f := mk(new(T))
	f.read = func(d *decoder) error {
		v := new(T)
		if err := mk(v).read(d); err != nil {
			return err
		}
		*dst = v
		return nil
	}
	return f
}

func containerFields(c *Container) map[int16]field {
	return map[int16]field{
		1: named("mesos", structure(func() map[int16]field {
			c.Mesos = &MesosContainer{}
			m := c.Mesos
			return map[int16]field{
				1: named("image", structure(func() map[int16]field {
					m.Image = &Image{}
					return map[int16]field{
						1: named("docker", structure(func() map[int16]field {
							m.Image.Docker = &DockerImage{}
							return map[int16]field{
								1: named("name", str(&m.Image.Docker.Name)),
								2: named("tag", str(&m.Image.Docker.Tag)),
							}
						})),
						2: named("appc", structure(func() map[int16]field {
							m.Image.Appc = &AppcImage{}
							return map[int16]field{
								1: named("name", str(&m.Image.Appc.Name)),
								2: named("imageId", str(&m.Image.Appc.ImageID)),
							}
						})),
					}
				})),
				2: named("volumes", collection(tList, tStruct, func(int) field {
					m.Volumes = append(m.Volumes, Volume{})
					v := &m.Volumes[len(m.Volumes)-1]
					return structure(func() map[int16]field {
						return map[int16]field{
							1: named("containerPath", str(&v.ContainerPath)),
							2: named("hostPath", str(&v.HostPath)),
							3: named("mode", i32(&v.Mode)),
						}
					})
				})),
			}
		})),
		2: named("docker", structure(func() map[int16]field {
			c.Docker = &DockerContainer{}
			dc := c.Docker
			return map[int16]field{
				1: named("image", str(&dc.Image)),
				2: named("parameters", collection(tList, tStruct, func(int) field {
					dc.Parameters = append(dc.Parameters, DockerParameter{})
					p := &dc.Parameters[len(dc.Parameters)-1]
					return structure(func() map[int16]field {
						return map[int16]field{1: named("name", str(&p.Name)), 2: named("value", str(&p.Value))}
					})
				})),
			}
		})),
	}
}
