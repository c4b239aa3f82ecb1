package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TaskRecord is what the stub remembers of one task.
type TaskRecord struct {
	TaskID   string           `json:"task_id"`
	Instance int              `json:"instance"`
	AgentID  string           `json:"agent_id,omitempty"`
	State    string           `json:"state"`
	Message  string           `json:"message,omitempty"`
	Reason   string           `json:"reason,omitempty"`
	Ports    map[string]int32 `json:"ports,omitempty"` // assigned ports by name
	Launched time.Time        `json:"launched"`
	Updated  time.Time        `json:"updated"`
	// Views keep the last addresses each side reported; an update without
	// addresses leaves them as they were.
	Views Views `json:"views"`
}

// Meta is the stub's own state.
type Meta struct {
	FrameworkID string `json:"framework_id,omitempty"`
	// User and FrameworkName are the FrameworkInfo fields the framework
	// was registered with; they are recorded with its id.
	User          string `json:"user,omitempty"`
	FrameworkName string `json:"framework_name,omitempty"`
	JobJSON       []byte `json:"job,omitempty"`
	ControlAddr   string `json:"control_addr,omitempty"`
	// Killed lists the instances killed on purpose (`dewar-scheduler
	// kill`), which no `run` may launch again while the framework lives.
	Killed []int `json:"killed,omitempty"`
}

var (
	bucketTasks = []byte("tasks")
	bucketMeta  = []byte("meta")
	keyMeta     = []byte("meta")
)

// Store keeps tasks and meta in a bbolt file. It opens the file only for
// the length of each transaction, so `dewar-scheduler status` can read it
// while `run` is going (bbolt locks the file while it is open).
type Store struct {
	path string
}

// OpenStore checks that path is usable (creating it) and returns a Store.
func OpenStore(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("no database path; pass --db FILE")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	s := &Store{path: path}
	err := s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTasks, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: 10 * time.Second, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", s.path, err)
	}
	return db, nil
}

func (s *Store) update(f func(*bolt.Tx) error) error {
	db, err := s.open(false)
	if err != nil {
		return err
	}
	return errors.Join(db.Update(f), db.Close())
}

func (s *Store) view(f func(*bolt.Tx) error) error {
	db, err := s.open(true)
	if err != nil {
		return err
	}
	return errors.Join(db.View(f), db.Close())
}

// Meta returns the stub's state (zero when new).
func (s *Store) Meta() (Meta, error) {
	var m Meta
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keyMeta); b != nil {
			return json.Unmarshal(b, &m)
		}
		return nil
	})
	return m, err
}

// UpdateMeta changes the stub's state in one transaction.
func (s *Store) UpdateMeta(f func(*Meta)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		var m Meta
		if v := b.Get(keyMeta); v != nil {
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode meta: %w", err)
			}
		}
		f(&m)
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return b.Put(keyMeta, v)
	})
}

// MarkKilled records instances as killed on purpose, before the KILL
// goes out: a `run` started later must not relaunch them.
func (s *Store) MarkKilled(instances []int) error {
	return s.UpdateMeta(func(m *Meta) {
		for _, i := range instances {
			if !slices.Contains(m.Killed, i) {
				m.Killed = append(m.Killed, i)
			}
		}
		slices.Sort(m.Killed)
	})
}

// ForgetFramework records that the framework was torn down: the next
// `run` registers a new one and starts the job afresh, so the kills made
// under the old one go too.
func (s *Store) ForgetFramework() error {
	return s.UpdateMeta(func(m *Meta) {
		m.FrameworkID, m.User, m.FrameworkName = "", "", ""
		m.Killed = nil
	})
}

// PutTask stores rec, replacing the record of the same task.
func (s *Store) PutTask(rec TaskRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTasks).Put([]byte(rec.TaskID), v) })
}

// UpdateTask changes the record of taskID in one transaction and returns
// it; ok is false when the task is unknown.
func (s *Store) UpdateTask(taskID string, f func(*TaskRecord)) (rec TaskRecord, ok bool, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTasks)
		v := b.Get([]byte(taskID))
		if v == nil {
			return nil
		}
		var err error
		if rec, err = decodeTask([]byte(taskID), v); err != nil {
			return err
		}
		ok = true
		f(&rec)
		nv, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte(taskID), nv)
	})
	return rec, ok, err
}

// decodeTask decodes the record stored under key.
func decodeTask(key, v []byte) (TaskRecord, error) {
	var rec TaskRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return TaskRecord{}, fmt.Errorf("decode task %q from the database (remove the file given to --db to start over): %w", key, err)
	}
	return rec, nil
}

// Tasks returns every record, by instance then launch time.
func (s *Store) Tasks() ([]TaskRecord, error) {
	var out []TaskRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			rec, err := decodeTask(k, v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Instance != out[j].Instance {
			return out[i].Instance < out[j].Instance
		}
		return out[i].Launched.Before(out[j].Launched)
	})
	return out, err
}

// Latest returns the newest task of each instance.
func Latest(recs []TaskRecord) map[int]TaskRecord {
	out := map[int]TaskRecord{}
	for _, r := range recs {
		if cur, ok := out[r.Instance]; !ok || !r.Launched.Before(cur.Launched) {
			out[r.Instance] = r
		}
	}
	return out
}
