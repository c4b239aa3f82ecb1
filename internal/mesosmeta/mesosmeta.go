// Package mesosmeta reads (and, for the fake agent, writes) what a Mesos
// agent checkpoints about a task under its work dir (src/slave/paths.hpp):
// the task's status update stream,
//
//	<work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/tasks/<task>/task.updates
//
// beside the run's sandbox <work_dir>/slaves/<agent>/.../runs/<container>.
// The stream holds StatusUpdateRecords (src/messages/messages.proto), each
// written by stout's protobuf::write as a native-endian uint32 length and
// the message. An UPDATE record carries the update as the agent forwarded
// it: with the agent's own container status merged in
// (Slave::_statusUpdate), so it is the one place outside the agent's
// memory where the agent's view of a task's addresses is kept (the
// executor is never told it: MESOS-6281).
package mesosmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/encoding/protowire"
)

// UpdatesFile is the stream's file name (paths.cpp, TASK_UPDATES_FILE).
const UpdatesFile = "task.updates"

// maxRecord bounds one record; the agent's are a few KiB.
const maxRecord = 64 << 20

// Record is one StatusUpdateRecord: an UPDATE (Status set) or the ACK of
// the update whose status uuid is UUID.
type Record struct {
	Ack         bool
	UUID        []byte // the status' uuid (UPDATE) or the acknowledged one (ACK)
	FrameworkID string // UPDATE only
	Status      mesos.TaskStatus
}

// MetaRunDir maps a run directory (a sandbox) to its checkpoint directory
// under meta/: <w>/slaves/<a>/frameworks/<f>/executors/<e>/runs/<c> becomes
// <w>/meta/slaves/<a>/frameworks/<f>/executors/<e>/runs/<c>. It reports
// false for a path not laid out that way.
func MetaRunDir(runDir string) (string, bool) {
	p := filepath.Clean(runDir)
	parts := strings.Split(p, string(filepath.Separator))
	n := len(parts)
	if n < 9 || parts[n-8] != "slaves" || parts[n-6] != "frameworks" || parts[n-4] != "executors" || parts[n-2] != "runs" {
		return "", false
	}
	work := strings.Join(parts[:n-8], string(filepath.Separator))
	if work == "" {
		work = string(filepath.Separator)
	}
	return filepath.Join(append([]string{work, "meta"}, parts[n-8:]...)...), true
}

// UpdatesPath is the stream of taskID in the run whose checkpoint directory
// is metaRunDir.
func UpdatesPath(metaRunDir, taskID string) string {
	return filepath.Join(metaRunDir, "tasks", taskID, UpdatesFile)
}

// ReadStream reads a stream file; see ParseStream.
func ReadStream(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := ParseStream(b)
	if err != nil {
		return recs, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// ParseStream decodes a stream. A torn last record (the agent died while
// writing it; it recovers the same way, src/slave/state.cpp) ends the
// stream without an error; a record that does not decode is an error,
// returned with the records before it.
func ParseStream(b []byte) ([]Record, error) {
	recs, _, err := parse(b)
	return recs, err
}

// parse is ParseStream that also says how many bytes the whole records
// before a torn tail or a bad record take.
func parse(b []byte) (recs []Record, whole int, err error) {
	for whole < len(b) {
		rest := b[whole:]
		if len(rest) < 4 {
			return recs, whole, nil
		}
		size := binary.NativeEndian.Uint32(rest)
		if size > maxRecord {
			return recs, whole, fmt.Errorf("record %d: length %d is not a status update record's", len(recs), size)
		}
		if uint64(len(rest)-4) < uint64(size) {
			return recs, whole, nil
		}
		r, err := decodeRecord(rest[4 : 4+size])
		if err != nil {
			return recs, whole, fmt.Errorf("record %d: %w", len(recs), err)
		}
		recs = append(recs, r)
		whole += 4 + int(size)
	}
	return recs, whole, nil
}

// RecoverStream reads the stream at path for a writer that goes on
// appending to it, as the agent recovers a task (src/slave/state.cpp,
// TaskState::recover): the records are read up to a torn tail, and the
// file is truncated to the whole records ("Always truncate the file to
// contain only valid updates"), so that the next record appended is not
// glued to half of one. A record that does not decode is an error (the
// agent's strict recovery fails the same way), after the truncation. A
// missing file is fs.ErrNotExist.
func RecoverStream(path string) ([]Record, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	recs, whole, perr := parse(b)
	if whole < len(b) {
		if err := errors.Join(f.Truncate(int64(whole)), f.Sync()); err != nil {
			return recs, fmt.Errorf("truncate %s to its %d whole records: %w", path, len(recs), err)
		}
	}
	if perr != nil {
		return recs, fmt.Errorf("%s: %w", path, perr)
	}
	return recs, nil
}

func decodeRecord(msg []byte) (Record, error) {
	var r Record
	var typ uint64
	var update []byte
	haveType := false
	err := eachField(msg, func(num protowire.Number, v uint64, b []byte) error {
		switch num {
		case 1:
			typ, haveType = v, true
		case 2:
			update = b
		case 3:
			r.UUID = b
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	switch {
	case !haveType:
		return r, errors.New("no type")
	case typ == 1:
		r.Ack = true
		if r.UUID == nil {
			return r, errors.New("ACK without a uuid")
		}
		return r, nil
	case typ != 0:
		return r, fmt.Errorf("unknown type %d", typ)
	case update == nil:
		return r, errors.New("UPDATE without an update")
	}
	var status []byte
	err = eachField(update, func(num protowire.Number, _ uint64, b []byte) error {
		switch num {
		case 1: // FrameworkID
			return eachField(b, func(num protowire.Number, _ uint64, b []byte) error {
				if num == 1 {
					r.FrameworkID = string(b)
				}
				return nil
			})
		case 4:
			status = b
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("update: %w", err)
	}
	if status == nil {
		return r, errors.New("update without a status")
	}
	if err := r.Status.Unmarshal(status); err != nil {
		return r, fmt.Errorf("status: %w", err)
	}
	r.UUID = r.Status.UUID
	return r, nil
}

// eachField calls f with every field of a protobuf message: varints (and
// fixed-width values) in v, length-delimited fields in b.
func eachField(msg []byte, f func(num protowire.Number, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(msg)
			v = uint64(v32)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
			if b == nil && n >= 0 {
				b = []byte{}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if err := f(num, v, b); err != nil {
			return err
		}
	}
	return nil
}

// AppendUpdate appends the UPDATE record of st, from framework frameworkID
// and executor executorID on agent agentID, to stream, as the agent's
// TaskStatusUpdateManager checkpoints it.
func AppendUpdate(stream []byte, frameworkID, executorID, agentID string, st mesos.TaskStatus) ([]byte, error) {
	status, err := st.Marshal()
	if err != nil {
		return stream, fmt.Errorf("encode status: %w", err)
	}
	var u []byte
	u = appendID(u, 1, frameworkID)
	if executorID != "" {
		u = appendID(u, 2, executorID)
	}
	if agentID != "" {
		u = appendID(u, 3, agentID)
	}
	u = protowire.AppendTag(u, 4, protowire.BytesType)
	u = protowire.AppendBytes(u, status)
	ts := st.GetTimestamp()
	u = protowire.AppendTag(u, 5, protowire.Fixed64Type)
	u = protowire.AppendFixed64(u, math.Float64bits(ts))
	if st.UUID != nil {
		u = protowire.AppendTag(u, 6, protowire.BytesType)
		u = protowire.AppendBytes(u, st.UUID)
	}
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 0)
	rec = protowire.AppendTag(rec, 2, protowire.BytesType)
	rec = protowire.AppendBytes(rec, u)
	return appendFrame(stream, rec), nil
}

// AppendAck appends the ACK record of the update whose status uuid is uuid.
func AppendAck(stream, uuid []byte) []byte {
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 1)
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendBytes(rec, uuid)
	return appendFrame(stream, rec)
}

func appendID(b []byte, num protowire.Number, value string) []byte {
	var id []byte
	id = protowire.AppendTag(id, 1, protowire.BytesType)
	id = protowire.AppendString(id, value)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, id)
}

func appendFrame(stream, rec []byte) []byte {
	stream = binary.NativeEndian.AppendUint32(stream, uint32(len(rec)))
	return append(stream, rec...)
}

// LatestNetworks is the container_status.network_infos of the last UPDATE
// that has any, or nil.
func LatestNetworks(recs []Record) []mesos.NetworkInfo {
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; !r.Ack {
			if nis := r.Status.GetContainerStatus().GetNetworkInfos(); len(nis) > 0 {
				return nis
			}
		}
	}
	return nil
}

// SplitViews separates a forwarded update's network_infos into the
// executor's own report and the agent's. The agent appends its NetworkInfos
// (the CNI results) after the executor's (ContainerStatus::MergeFrom in
// Slave::_statusUpdate), so of a network named more than once the last
// entry is the agent's and the others the executor's, and a network named
// once is the agent's alone.
func SplitViews(nis []mesos.NetworkInfo) (executor, agent []mesos.NetworkInfo) {
	count := map[string]int{}
	for _, ni := range nis {
		count[ni.GetName()]++
	}
	seen := map[string]int{}
	for _, ni := range nis {
		name := ni.GetName()
		seen[name]++
		if count[name] > 1 && seen[name] < count[name] {
			executor = append(executor, ni)
		} else {
			agent = append(agent, ni)
		}
	}
	return executor, agent
}
