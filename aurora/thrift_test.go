package aurora

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
)

func fullAssignedTask() *AssignedTask {
	cpu, ram, disk, gpus, port := 0.5, int64(128), int64(256), int64(1), "http"
	return &AssignedTask{
		TaskID:    "1700000000000-root-devel-web-0-5f1a",
		SlaveID:   "agent-1",
		SlaveHost: "node1.example.com",
		Task: TaskConfig{
			Job:               JobKey{Role: "root", Environment: "prod", Name: "web"},
			Owner:             Identity{Role: "legacy-role", User: "root"},
			IsService:         true,
			NumCpus:           0.5,
			RamMb:             128,
			DiskMb:            256,
			Priority:          7,
			MaxTaskFailures:   3,
			Production:        true,
			Tier:              "preferred",
			Resources:         []Resource{{NumCpus: &cpu}, {RamMb: &ram}, {DiskMb: &disk}, {NumGpus: &gpus}, {NamedPort: &port}},
			RequestedPorts:    []string{"health", "http"},
			TaskLinks:         map[string]string{"logs": "http://%host%:%port:http%/logs"},
			ContactEmail:      "ops@example.com",
			ExecutorConfig:    &ExecutorConfig{Name: ExecutorName, Data: `{"role":"root"}`},
			Metadata:          []Metadata{{Key: "k", Value: "v"}},
			LegacyEnvironment: "prod",
			LegacyJobName:     "web",
			Container: &Container{Mesos: &MesosContainer{
				Image:   &Image{Docker: &DockerImage{Name: "debian", Tag: "bookworm"}},
				Volumes: []Volume{{ContainerPath: "/data", HostPath: "/srv/data", Mode: 2}},
			}},
		},
		AssignedPorts: map[string]int32{"http": 31001, "health": 31002},
		InstanceID:    3,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	docker := fullAssignedTask()
	docker.Task.Container = &Container{Docker: &DockerContainer{
		Image:      "nginx:1",
		Parameters: []DockerParameter{{Name: "env", Value: "A=1"}},
	}}
	appc := fullAssignedTask()
	appc.Task.Container.Mesos.Image = &Image{Appc: &AppcImage{Name: "app", ImageID: "sha512-1"}}
	tests := []struct {
		name string
		at   *AssignedTask
	}{
		{"full", fullAssignedTask()},
		{"docker container", docker},
		{"appc image", appc},
		{"minimal", &AssignedTask{TaskID: "t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := EncodeAssignedTask(tc.at)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeAssignedTask(data)
			if err != nil {
				t.Fatal(err)
			}
			want := *tc.at
			// The encoder always writes these containers; empty ones decode as nil.
			if len(want.AssignedPorts) == 0 {
				want.AssignedPorts = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestDecodeHandWrittenBytes(t *testing.T) {
	// Written byte by byte from the binary protocol spec, so the test does
	// not trust the encoder: {1: taskId "t", 6: instanceId 2,
	// 4: task {28: job {3: name "j"}}, 5: assignedPorts {"p": 80}}.
	data := []byte{
		0x0b, 0x00, 0x01, 0, 0, 0, 1, 't',
		0x08, 0x00, 0x06, 0, 0, 0, 2,
		0x0c, 0x00, 0x04,
		0x0c, 0x00, 0x1c,
		0x0b, 0x00, 0x03, 0, 0, 0, 1, 'j',
		0x00,
		0x00,
		0x0d, 0x00, 0x05, 0x0b, 0x08, 0, 0, 0, 1, 0, 0, 0, 1, 'p', 0, 0, 0, 80,
		0x00,
	}
	got, err := DecodeAssignedTask(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &AssignedTask{TaskID: "t", InstanceID: 2, Task: TaskConfig{Job: JobKey{Name: "j"}}, AssignedPorts: map[string]int32{"p": 80}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// writeWithUnknowns writes an AssignedTask whose structs carry fields this
// package does not know, of every Thrift type, as a newer Aurora would.
func writeWithUnknowns(t testing.TB) []byte {
	t.Helper()
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	unknowns := func(base int16) {
		must(p.WriteFieldBegin(ctx, "", thrift.BOOL, base))
		must(p.WriteBool(ctx, true))
		must(p.WriteFieldBegin(ctx, "", thrift.BYTE, base+1))
		must(p.WriteByte(ctx, 7))
		must(p.WriteFieldBegin(ctx, "", thrift.I16, base+2))
		must(p.WriteI16(ctx, 7))
		must(p.WriteFieldBegin(ctx, "", thrift.I64, base+3))
		must(p.WriteI64(ctx, 7))
		must(p.WriteFieldBegin(ctx, "", thrift.DOUBLE, base+4))
		must(p.WriteDouble(ctx, 7))
		must(p.WriteFieldBegin(ctx, "", thrift.STRUCT, base+5))
		must(p.WriteFieldBegin(ctx, "", thrift.STRING, 1))
		must(p.WriteString(ctx, "nested"))
		must(p.WriteFieldStop(ctx))
		must(p.WriteFieldBegin(ctx, "", thrift.LIST, base+6))
		must(p.WriteListBegin(ctx, thrift.STRING, 2))
		must(p.WriteString(ctx, "a"))
		must(p.WriteString(ctx, "b"))
		must(p.WriteFieldBegin(ctx, "", thrift.SET, base+7))
		must(p.WriteSetBegin(ctx, thrift.I32, 1))
		must(p.WriteI32(ctx, 1))
		must(p.WriteFieldBegin(ctx, "", thrift.MAP, base+8))
		must(p.WriteMapBegin(ctx, thrift.STRING, thrift.LIST, 1))
		must(p.WriteString(ctx, "k"))
		must(p.WriteListBegin(ctx, thrift.I64, 1))
		must(p.WriteI64(ctx, 1))
	}
	must(p.WriteFieldBegin(ctx, "", thrift.STRING, 1))
	must(p.WriteString(ctx, "task-1"))
	unknowns(100)
	must(p.WriteFieldBegin(ctx, "", thrift.STRUCT, 4))
	unknowns(200)
	must(p.WriteFieldBegin(ctx, "", thrift.STRUCT, 25))
	unknowns(300)
	must(p.WriteFieldBegin(ctx, "", thrift.STRING, 2))
	must(p.WriteString(ctx, "{}"))
	must(p.WriteFieldStop(ctx))
	must(p.WriteFieldStop(ctx))
	must(p.WriteFieldBegin(ctx, "", thrift.I32, 6))
	must(p.WriteI32(ctx, 9))
	must(p.WriteFieldStop(ctx))
	return buf.Bytes()
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	got, err := DecodeAssignedTask(writeWithUnknowns(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &AssignedTask{TaskID: "task-1", InstanceID: 9, Task: TaskConfig{ExecutorConfig: &ExecutorConfig{Data: "{}"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecodeTruncatedFailsAtEveryOffset(t *testing.T) {
	data, err := EncodeAssignedTask(fullAssignedTask())
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range [][]byte{data, writeWithUnknowns(t)} {
		for n := 0; n < len(full); n++ {
			_, err := DecodeAssignedTask(full[:n])
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("truncated to %d of %d bytes: got %v, want a *DecodeError", n, len(full), err)
			}
			if !strings.HasPrefix(de.Field, "AssignedTask") {
				t.Fatalf("truncated to %d: field %q does not name the path", n, de.Field)
			}
		}
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		wantField string
	}{
		{
			name:      "taskId as i32",
			data:      []byte{0x08, 0x00, 0x01, 0, 0, 0, 1, 0x00},
			wantField: "AssignedTask.taskId",
		},
		{
			name:      "executorConfig.data as list",
			data:      []byte{0x0c, 0x00, 0x04, 0x0c, 0x00, 0x19, 0x0f, 0x00, 0x02, 0x0b, 0, 0, 0, 0, 0x00, 0x00, 0x00},
			wantField: "AssignedTask.task.executorConfig.data",
		},
		{
			name:      "assignedPorts values as strings",
			data:      []byte{0x0d, 0x00, 0x05, 0x0b, 0x0b, 0, 0, 0, 1, 0, 0, 0, 1, 'p', 0, 0, 0, 1, 'x', 0x00},
			wantField: "AssignedTask.assignedPorts",
		},
		{
			name:      "string longer than the input",
			data:      []byte{0x0b, 0x00, 0x03, 0x7f, 0, 0, 0, 'h'},
			wantField: "AssignedTask.slaveHost",
		},
		{
			name:      "negative string length",
			data:      []byte{0x0b, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff},
			wantField: "AssignedTask.slaveId",
		},
		{
			name:      "unknown field of an unknown type",
			data:      []byte{0x14, 0x00, 0x63, 0x00},
			wantField: "AssignedTask",
		},
		{
			name:      "requestedPorts elements as i32",
			data:      []byte{0x0c, 0x00, 0x04, 0x0e, 0x00, 0x15, 0x08, 0, 0, 0, 1, 0, 0, 0, 1, 0x00, 0x00},
			wantField: "AssignedTask.task.requestedPorts",
		},
		{
			name:      "empty input",
			data:      nil,
			wantField: "AssignedTask",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeAssignedTask(tc.data)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if de.Field != tc.wantField {
				t.Errorf("field %q, want %q (error: %v)", de.Field, tc.wantField, err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("message %q does not name %s", err, tc.wantField)
			}
		})
	}
}

func TestDecodeWrongWireTypeIsErrWireType(t *testing.T) {
	_, err := DecodeAssignedTask([]byte{0x08, 0x00, 0x01, 0, 0, 0, 1, 0x00})
	if !errors.Is(err, errWireType) {
		t.Errorf("got %v, want it to wrap errWireType", err)
	}
}

func TestTaskConfigKeyFallsBackToLegacyFields(t *testing.T) {
	tc := TaskConfig{Owner: Identity{Role: "www"}, LegacyEnvironment: "prod", LegacyJobName: "app"}
	if got, want := tc.Key(), (JobKey{Role: "www", Environment: "prod", Name: "app"}); got != want {
		t.Errorf("Key() = %+v, want %+v", got, want)
	}
	tc.Job = JobKey{Role: "r", Environment: "e", Name: "n"}
	if got := tc.Key(); got != tc.Job {
		t.Errorf("Key() = %+v, want field 28 %+v", got, tc.Job)
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	a, err := EncodeAssignedTask(fullAssignedTask())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b, err := EncodeAssignedTask(fullAssignedTask())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two encodings of the same task differ")
		}
	}
}

// TestThriftLibraryReadsTheEncoding: what EncodeAssignedTask writes (with
// dewar's own binary protocol writer) is one well-formed struct to Apache
// Thrift's Go library: its generic reader walks it field by field and
// stops exactly at the end, with the field ids and wire types of
// api.thrift's AssignedTask.
func TestThriftLibraryReadsTheEncoding(t *testing.T) {
	data, err := EncodeAssignedTask(fullAssignedTask())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	buf.Write(data) //nolint:errcheck // a bytes.Buffer
	p := thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})
	want := map[int16]thrift.TType{1: thrift.STRING, 2: thrift.STRING, 3: thrift.STRING, 4: thrift.STRUCT, 5: thrift.MAP, 6: thrift.I32}
	got := map[int16]thrift.TType{}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ == thrift.STOP {
			break
		}
		got[id] = typ
		if err := p.Skip(ctx, typ); err != nil {
			t.Fatalf("field %d (%s): %v", id, typ, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes left after the struct's STOP", buf.Len())
	}
}
