package mesosmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func ptr(s string) *string { return &s }

func netInfo(name, ip string) mesos.NetworkInfo {
	v4 := mesos.IPv4
	return mesos.NetworkInfo{Name: ptr(name), IPAddresses: []mesos.NetworkInfo_IPAddress{{Protocol: &v4, IPAddress: ptr(ip)}}}
}

func update(state mesos.TaskState, uuid byte, nis ...mesos.NetworkInfo) mesos.TaskStatus {
	ts := 1796000000.5
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t1"}, State: state.Enum(), UUID: bytes.Repeat([]byte{uuid}, 16), Timestamp: &ts}
	if len(nis) > 0 {
		st.ContainerStatus = &mesos.ContainerStatus{NetworkInfos: nis}
	}
	return st
}

// sampleStream is what an agent writes for a task that started and ran:
// UPDATE STARTING, its ACK, UPDATE RUNNING with both views of the
// addresses, its ACK.
func sampleStream(t testing.TB) []byte {
	t.Helper()
	var b []byte
	var err error
	b, err = AppendUpdate(b, "fw-1", "ex-1", "agent-1", update(mesos.TASK_STARTING, 1))
	if err != nil {
		t.Fatal(err)
	}
	b = AppendAck(b, bytes.Repeat([]byte{1}, 16))
	b, err = AppendUpdate(b, "fw-1", "ex-1", "agent-1", update(mesos.TASK_RUNNING, 2,
		netInfo("blue", "198.18.0.2"), netInfo("blue", "198.18.0.2"), netInfo("green", "198.19.0.2")))
	if err != nil {
		t.Fatal(err)
	}
	return AppendAck(b, bytes.Repeat([]byte{2}, 16))
}

func TestStreamRoundTrip(t *testing.T) {
	recs, err := ParseStream(sampleStream(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Ack {
			got = append(got, fmt.Sprintf("ACK %x", r.UUID[0]))
		} else {
			got = append(got, fmt.Sprintf("UPDATE %s %s %x", r.FrameworkID, r.Status.GetState(), r.UUID[0]))
		}
	}
	want := "[UPDATE fw-1 TASK_STARTING 1 ACK 1 UPDATE fw-1 TASK_RUNNING 2 ACK 2]"
	if fmt.Sprint(got) != want {
		t.Errorf("records %v, want %s", got, want)
	}
	nis := LatestNetworks(recs)
	exec, agent := SplitViews(nis)
	if len(exec) != 1 || exec[0].GetName() != "blue" || len(agent) != 2 || agent[1].GetName() != "green" {
		t.Errorf("views: executor %v, agent %v; want the executor's blue, the agent's blue and green", exec, agent)
	}
}

// TestTornTail: a record cut short (the agent died writing it) ends the
// stream, as the agent's own recovery reads it; garbage is an error.
func TestTornTail(t *testing.T) {
	b := sampleStream(t)
	for cut := 1; cut < 8; cut++ {
		recs, err := ParseStream(b[:len(b)-cut])
		if err != nil || len(recs) != 3 {
			t.Errorf("cut %d bytes: %d records, %v; want the first 3, no error", cut, len(recs), err)
		}
	}
	bad := binary.NativeEndian.AppendUint32(nil, 3)
	bad = append(bad, 0xff, 0xff, 0xff)
	if _, err := ParseStream(append(sampleStream(t), bad...)); err == nil {
		t.Error("a record that is not a StatusUpdateRecord decoded without an error")
	}
}

// TestRecoverStreamTruncates: recovery cuts a torn tail off the file, as
// the agent does (src/slave/state.cpp, TaskState::recover), so a record
// appended afterwards reads back whole; a bad record is an error and what
// follows it is cut off too.
func TestRecoverStreamTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), UpdatesFile)
	whole := sampleStream(t)
	if err := os.WriteFile(path, whole[:len(whole)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := RecoverStream(path)
	if err != nil || len(recs) != 3 {
		t.Fatalf("recovered %d records, %v; want the 3 whole ones, no error", len(recs), err)
	}
	next, err := AppendUpdate(nil, "fw-1", "ex-1", "agent-1", update(mesos.TASK_FINISHED, 3))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(next); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recs, err = ReadStream(path)
	if err != nil || len(recs) != 4 || recs[3].Status.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("after recovery and one append: %d records, %v; want 4 ending in TASK_FINISHED", len(recs), err)
	}

	bad := binary.NativeEndian.AppendUint32(nil, 3)
	bad = append(bad, 0xff, 0xff, 0xff)
	if err := os.WriteFile(path, append(append(sampleStream(t), bad...), next...), 0o644); err != nil {
		t.Fatal(err)
	}
	if recs, err := RecoverStream(path); err == nil || len(recs) != 4 {
		t.Errorf("a bad record: %d records, %v; want the 4 before it and an error", len(recs), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(len(whole)) {
		t.Errorf("after a bad record the file has %v bytes (%v), want the %d of the whole records before it", fi.Size(), err, len(whole))
	}
	if _, err := RecoverStream(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing stream: %v, want fs.ErrNotExist", err)
	}
}

func TestMetaRunDir(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/mesos/slaves/S1/frameworks/F/executors/E/runs/C":  "/var/lib/mesos/meta/slaves/S1/frameworks/F/executors/E/runs/C",
		"/var/lib/mesos/slaves/S1/frameworks/F/executors/E/runs/C/": "/var/lib/mesos/meta/slaves/S1/frameworks/F/executors/E/runs/C",
		"/slaves/S1/frameworks/F/executors/E/runs/C":                "/meta/slaves/S1/frameworks/F/executors/E/runs/C",
		"/var/lib/mesos/slaves/S1/frameworks/F/executors/E/C":       "",
		"/tmp/sandbox": "",
	} {
		got, ok := MetaRunDir(in)
		if got != want || ok != (want != "") {
			t.Errorf("MetaRunDir(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzParseStream: any bytes decode to records or an error, never a panic;
// what AppendUpdate writes of a decoded UPDATE decodes to the same status.
func FuzzParseStream(f *testing.F) {
	f.Add(sampleStream(f))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0, 0, 8, 1, 26, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _ := ParseStream(b)
		for _, r := range recs {
			if r.Ack {
				continue
			}
			again, err := AppendUpdate(nil, r.FrameworkID, "", "", r.Status)
			if err != nil {
				continue // a status mesos-go cannot encode (missing required field)
			}
			back, err := ParseStream(again)
			if err != nil || len(back) != 1 || !back[0].Status.Equal(&r.Status) {
				t.Fatalf("re-encoded update does not decode to the same status: %v %v", back, err)
			}
		}
	})
}
