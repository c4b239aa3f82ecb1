package observer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"
)

// The thermos CLI's everyday verbs for people on the agent
// (src/main/python/apache/thermos/cli/commands/status.py and tail.py).

// ErrUnknownTask is returned for a task id the index does not know.
var ErrUnknownTask = errors.New("unknown task")

// Status writes every task with its state, job key and addresses, active
// tasks first.
func Status(w io.Writer, x *Index) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tJOB\tNETWORK\tADDRESSES")
	all := x.Tasks()
	active := make([]*Entry, 0, len(all))
	var done []*Entry
	for _, e := range all {
		if e.Active() {
			active = append(active, e)
		} else {
			done = append(done, e)
		}
	}
	for _, e := range append(active, done...) {
		t := e.Task
		if t == nil {
			fmt.Fprintf(tw, "%s\tUNREADABLE\t%s\t\t\n", e.ID, e.Err)
			continue
		}
		job := jobKey(t)
		if job != "" {
			job = fmt.Sprintf("%s/%d", job, t.Instance)
		}
		if len(t.Networks) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\n", e.ID, t.State(), job)
		}
		for i, n := range t.Networks {
			id, state, j := e.ID, t.State(), job
			if i > 0 {
				id, state, j = "", "", ""
			}
			name := n.Name
			if n.Interface != "" {
				name += " (" + n.Interface + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, state, j, name, strings.Join(n.Addresses, " "))
		}
	}
	return tw.Flush()
}

// TailOptions select what Tail shows.
type TailOptions struct {
	Run    int    // -1: the last run
	Stream string // stdout (default) or stderr
	Lines  int    // lines of the end to show first (default 10)
	Follow bool   // keep printing what is appended until ctx ends
	Poll   time.Duration
}

// Tail writes the end of a process run's log, as `thermos tail`.
func Tail(ctx context.Context, w io.Writer, x *Index, taskID, process string, o TailOptions) error {
	e := x.Get(taskID)
	if e == nil {
		return fmt.Errorf("%w %q: `dewar-observer status` lists the tasks of this agent", ErrUnknownTask, taskID)
	}
	if e.Task == nil {
		return fmt.Errorf("task %s is unreadable: %w", taskID, e.Err)
	}
	p := e.Task.Process(process)
	if p == nil {
		var names []string
		for _, pp := range e.Task.Processes {
			names = append(names, pp.Name)
		}
		return fmt.Errorf("task %s has no process %q; its processes: %s", taskID, process, strings.Join(names, ", "))
	}
	run := o.Run
	if run < 0 {
		last := p.Last()
		if last == nil {
			return fmt.Errorf("process %s of task %s has not run yet", process, taskID)
		}
		run = last.Run
	}
	if o.Stream == "" {
		o.Stream = "stdout"
	}
	if o.Lines <= 0 {
		o.Lines = 10
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	rel, err := logRel(e.Task, p.Name, run, o.Stream)
	if err != nil {
		return err
	}
	f, fi, err := openIn(e.RunDir, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run %d of %s has no %s (yet)", run, process, o.Stream)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, _, err := tail(f, fi.Size(), 64<<10)
	if err != nil {
		return err
	}
	if i := lastLines(b, o.Lines); i > 0 {
		b = b[i:]
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	off := fi.Size()
	if !o.Follow {
		return nil
	}
	// Like tail -f: poll the size (a log is appended to by a process of
	// the task, with no event the observer could wait for portably).
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for {
			n, err := f.ReadAt(buf, off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err != nil || n < len(buf) {
				break
			}
		}
	}
}

// lastLines is the index in b where its last n lines start.
func lastLines(b []byte, n int) int {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			return 0
		}
		end = j
	}
	return end + 1
}
