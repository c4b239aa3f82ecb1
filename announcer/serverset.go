package announcer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
)

// Entry is one member znode of a serverset as a reader sees it.
type Entry struct {
	Node   string // znode name, member_NNNNNNNNNN
	Member Member // valid when Err is nil
	Err    error  // why the member could not be read or parsed
}

// MemberReader is what ListMembers needs; *zk.Conn has it.
type MemberReader interface {
	Children(path string) ([]string, *zk.Stat, error)
	Get(path string) ([]byte, *zk.Stat, error)
}

// ListMembers reads every member of the serverset at path, in sequence
// order. Children not named member_N are not members (Finagle skips them
// too). A member that cannot be parsed is an Entry with Err, never an
// error of the listing. A path that does not exist has no members.
func ListMembers(r MemberReader, path string) ([]Entry, error) {
	children, _, err := r.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list serverset %s: %w", path, err)
	}
	var out []Entry
	for _, c := range memberNames(children) {
		data, _, err := r.Get(path + "/" + c)
		if errors.Is(err, zk.ErrNoNode) {
			continue // left between the listing and the read
		}
		out = append(out, entryOf(c, data, err))
	}
	return out, nil
}

func entryOf(node string, data []byte, err error) Entry {
	if err != nil {
		return Entry{Node: node, Err: err}
	}
	m, err := ParseMember(data)
	return Entry{Node: node, Member: m, Err: err}
}

func memberNames(children []string) []string {
	var names []string
	for _, c := range children {
		if _, ok := MemberSequence(c); ok {
			names = append(names, c)
		}
	}
	slices.SortFunc(names, func(x, y string) int {
		a, _ := MemberSequence(x)
		b, _ := MemberSequence(y)
		return cmp.Compare(a, b)
	})
	return names
}

// MemberWatcher is what WatchMembers needs; *zk.Conn has it.
type MemberWatcher interface {
	ChildrenW(path string) ([]string, *zk.Stat, <-chan zk.Event, error)
	GetW(path string) ([]byte, *zk.Stat, <-chan zk.Event, error)
	ExistsW(path string) (bool, *zk.Stat, <-chan zk.Event, error)
}

// WatchMembers calls fn with the members of path now and after every change:
// members joining or leaving and data set in place. It returns when ctx ends
// (nil) or fn fails. Connection trouble is retried; watches are set again
// after a session expires.
func WatchMembers(ctx context.Context, w MemberWatcher, path string, fn func([]Entry) error) error {
	mw := &memberWatch{w: w, path: path, nodes: map[string]*watchedMember{}}
	for {
		if err := mw.refresh(); err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
				continue // go-zookeeper reconnects meanwhile
			}
		}
		if err := fn(mw.entries()); err != nil {
			return err
		}
		if !mw.wait(ctx) {
			return nil
		}
	}
}

// memberWatch holds a watch on the child list and one on each member's
// data; a nil channel means "read again".
type memberWatch struct {
	w       MemberWatcher
	path    string
	childCh <-chan zk.Event
	nodes   map[string]*watchedMember
}

type watchedMember struct {
	entry Entry
	ch    <-chan zk.Event
}

// refresh re-reads whatever a fired watch says has changed.
func (mw *memberWatch) refresh() error {
	for mw.childCh == nil {
		children, _, ch, err := mw.w.ChildrenW(mw.path)
		if errors.Is(err, zk.ErrNoNode) {
			var exists bool
			exists, _, ch, err = mw.w.ExistsW(mw.path)
			if err == nil && exists {
				continue // created in between: list it
			}
		}
		if err != nil {
			return err
		}
		mw.childCh = ch
		keep := map[string]bool{}
		for _, c := range memberNames(children) {
			keep[c] = true
			if mw.nodes[c] == nil {
				mw.nodes[c] = &watchedMember{}
			}
		}
		for c := range mw.nodes {
			if !keep[c] {
				delete(mw.nodes, c)
			}
		}
	}
	for c, n := range mw.nodes {
		if n.ch != nil {
			continue
		}
		data, _, ch, err := mw.w.GetW(mw.path + "/" + c)
		if errors.Is(err, zk.ErrNoNode) {
			delete(mw.nodes, c) // the child watch reports it
			continue
		}
		if err != nil {
			return err
		}
		n.entry, n.ch = entryOf(c, data, nil), ch
	}
	return nil
}

func (mw *memberWatch) entries() []Entry {
	entries := make([]Entry, 0, len(mw.nodes))
	for _, n := range mw.nodes {
		entries = append(entries, n.entry)
	}
	slices.SortFunc(entries, func(x, y Entry) int {
		a, _ := MemberSequence(x.Node)
		b, _ := MemberSequence(y.Node)
		return cmp.Compare(a, b)
	})
	return entries
}

// wait blocks until a watch fires (true) or ctx ends (false).
func (mw *memberWatch) wait(ctx context.Context) bool {
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(mw.childCh)},
	}
	order := make([]*watchedMember, 0, len(mw.nodes))
	for _, n := range mw.nodes {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(n.ch)})
		order = append(order, n)
	}
	chosen, v, _ := reflect.Select(cases)
	switch chosen {
	case 0:
		return false
	case 1:
		mw.childCh = nil
	default:
		order[chosen-2].ch = nil
	}
	if ev, ok := v.Interface().(zk.Event); ok && ev.Type == zk.EventNotWatching {
		// The session expired: every watch is gone.
		mw.childCh = nil
		for _, n := range mw.nodes {
			n.ch = nil
		}
	}
	return true
}
