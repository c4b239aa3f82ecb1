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
	type watched struct {
		entry Entry
		ch    <-chan zk.Event // nil: read again
	}
	nodes := map[string]*watched{}
	var childCh <-chan zk.Event
	for {
		err := func() error {
			if childCh == nil {
				children, _, ch, err := w.ChildrenW(path)
				if errors.Is(err, zk.ErrNoNode) {
					var ok bool
					ok, _, ch, err = w.ExistsW(path)
					if err == nil && ok {
						ch = nil // created in between: list it
					}
				}
				if err != nil {
					return err
				}
				childCh = ch
				keep := map[string]bool{}
				for _, c := range memberNames(children) {
					keep[c] = true
					if nodes[c] == nil {
						nodes[c] = &watched{}
					}
				}
				for c := range nodes {
					if !keep[c] {
						delete(nodes, c)
					}
				}
			}
			for c, n := range nodes {
				if n.ch != nil {
					continue
				}
				data, _, ch, err := w.GetW(path + "/" + c)
				if errors.Is(err, zk.ErrNoNode) {
					delete(nodes, c) // the child watch reports it
					continue
				}
				if err != nil {
					return err
				}
				n.entry, n.ch = entryOf(c, data, nil), ch
			}
			return nil
		}()
		if err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
				continue // go-zookeeper reconnects meanwhile
			}
		}
		if childCh == nil {
			continue
		}
		entries := make([]Entry, 0, len(nodes))
		for _, n := range nodes {
			entries = append(entries, n.entry)
		}
		slices.SortFunc(entries, func(x, y Entry) int {
			a, _ := MemberSequence(x.Node)
			b, _ := MemberSequence(y.Node)
			return cmp.Compare(a, b)
		})
		if err := fn(entries); err != nil {
			return err
		}

		// Wait for any watch: the child list, or the data of one member.
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(childCh)},
		}
		order := make([]string, 0, len(nodes))
		for c, n := range nodes {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(n.ch)})
			order = append(order, c)
		}
		chosen, v, _ := reflect.Select(cases)
		switch {
		case chosen == 0:
			return nil
		case chosen == 1:
			childCh = nil
		default:
			nodes[order[chosen-2]].ch = nil
		}
		if ev, ok := v.Interface().(zk.Event); ok && ev.Type == zk.EventNotWatching {
			// The session expired: every watch is gone.
			childCh = nil
			for _, n := range nodes {
				n.ch = nil
			}
		}
	}
}
