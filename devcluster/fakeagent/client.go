package fakeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// LoadTask reads a TaskInfo in mesos-go's JSON form (protobuf field names):
//
//	{"name": "hello", "command": {"value": "echo hello; sleep 1"},
//	 "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}
//
// task_id may be left out: it becomes "<name>-<random>". agent_id is filled
// in by the agent.
func LoadTask(path string) (mesos.TaskInfo, error) {
	var t mesos.TaskInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("read task: %w", err)
	}
	if err := t.UnmarshalJSON(b); err != nil {
		return t, fmt.Errorf("task %s is not a TaskInfo in JSON: %w", path, err)
	}
	if t.Name == "" {
		return t, fmt.Errorf("task %s has no name; add \"name\"", path)
	}
	if t.TaskID.Value == "" {
		t.TaskID.Value = t.Name + "-" + newID()
	}
	return t, nil
}

// LaunchRemote launches task on the agent at agentURL (LaunchPath) and
// calls fn with each of its status updates until a terminal one, which it
// returns.
func LaunchRemote(ctx context.Context, agentURL string, task mesos.TaskInfo, fn func(mesos.TaskStatus)) (mesos.TaskStatus, error) {
	var last mesos.TaskStatus
	body, err := task.MarshalJSON()
	if err != nil {
		return last, fmt.Errorf("encode task: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(agentURL, "/")+LaunchPath, bytes.NewReader(body))
	if err != nil {
		return last, fmt.Errorf("launch: %w", err)
	}
	req.Header.Set("Content-Type", mediaJSON)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return last, fmt.Errorf("launch on %s: %w; is dewar-agent running there?", agentURL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return last, fmt.Errorf("launch on %s: %s: %s", agentURL, res.Status, strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), maxCallBytes)
	for sc.Scan() {
		var st mesos.TaskStatus
		if err := st.UnmarshalJSON(sc.Bytes()); err != nil {
			return last, fmt.Errorf("launch: bad update from agent: %w", err)
		}
		last = st
		fn(st)
		if isTerminal(st.GetState()) {
			return last, nil
		}
	}
	if err := sc.Err(); err != nil {
		return last, fmt.Errorf("launch: update stream: %w", err)
	}
	return last, fmt.Errorf("launch: the agent closed the update stream before task %s ended", task.TaskID.Value)
}

// IsTerminal reports whether a task in state s is done.
func IsTerminal(s mesos.TaskState) bool { return isTerminal(s) }
