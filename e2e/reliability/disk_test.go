package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"golang.org/x/sys/unix"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// processJob is an Aurora task of one process (cmdline %[2]s).
const processJob = `{
  "name": "%[1]s", "role": "root", "environment": "test", "cluster": "rel", "instances": 1,
  "task": {
    "name": "disk",
    "processes": [{"name": "writer", "cmdline": %[2]q, "max_failures": 1}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 0
  }
}`

// sandboxDiskSize is the tmpfs every sandbox of the scenario lives on.
const sandboxDiskSize = "4m" // 4 MiB

// fillDisk writes until ENOSPC (dd then exits 1).
const fillDisk = "dd if=/dev/zero of=fill bs=64k"

// diskFull: every run dir (the executor's checkpoint and log, the task's
// sandbox and process logs) is on a tmpfs of a few MiB. Cases:
//   - the task writes until ENOSPC and exits (dd fails);
//   - the task fills the disk and keeps writing to its stdout, and is
//     killed (KILL), or its executor is shut down (SHUTDOWN): the
//     executor's own writes (checkpoint, log) fail meanwhile;
//   - the disk is full before the executor starts.
//
// Figures: each case's terminal update and message, and how long after
// the fill, KILL or SHUTDOWN the executor exited. Must hold: a
// TASK_FAILED that names the process and says the disk is full; KILL and
// SHUTDOWN answered by the executor itself (TASK_KILLED, no destruction
// after the grace period); every executor exits.
func diskFull(t *testing.T, _ *zktest.Ensemble, _ scale) result {
	res := result{
		scenario: "disk full in the sandbox (a tmpfs of 4 MiB under every run dir: executor checkpoint and log, task sandbox and logs)",
		must:     "TASK_FAILED naming the process and the full disk; KILL and SHUTDOWN answered by the executor (TASK_KILLED); the executor exits",
	}
	type outcome struct {
		what string
		st   mesos.TaskStatus
		exit time.Duration // from the fill, KILL or SHUTDOWN until the executor's run ended
		ok   bool
	}
	var outs []outcome
	for _, c := range []struct {
		what    string
		cmdline string
		prefill bool
		act     func(t *testing.T, n *fakeNode, taskID string)
		want    mesos.TaskState
	}{
		{what: "writes until ENOSPC and exits", cmdline: fillDisk, want: mesos.TASK_FAILED},
		{what: "fills the disk, keeps writing, KILL", cmdline: fillDisk + "; while :; do echo still writing; sleep 0.05; done",
			act: func(t *testing.T, n *fakeNode, taskID string) { n.kill(t, taskID) }, want: mesos.TASK_KILLED},
		{what: "fills the disk, keeps writing, SHUTDOWN", cmdline: fillDisk + "; while :; do echo still writing; sleep 0.05; done",
			act: func(t *testing.T, n *fakeNode, _ string) { n.shutdown(t) }, want: mesos.TASK_KILLED},
		// The agent needs a page for its run dir's "latest" link (a real
		// agent could not start the container on a disk with none); the
		// rest is taken before the executor starts.
		{what: "disk all but full (16 KiB) before the executor starts; the task writes 1 MiB", cmdline: "head -c 1048576 /dev/zero > out", prefill: true, want: mesos.TASK_FAILED},
	} {
		work, disk := tmpfsWorkDir(t)
		if c.prefill {
			fill(t, filepath.Join(disk, "fill"), 16<<10)
		}
		n := newFakeNode(t, fakeagent.Config{WorkDir: work})
		name := "disk-" + testenv.RandomHex(4)
		id, exID := n.launch(t, fmt.Sprintf(processJob, name, c.cmdline), name)
		done := n.executorDone(exID)
		testenv.WaitUntil(t, time.Minute, "the sandbox disk to be full", func() bool { return free(t, disk) == 0 })
		t0 := time.Now()
		if c.act != nil {
			n.waitState(t, time.Minute, id, mesos.TASK_RUNNING)
			// Let the executor's own writes meet the full disk first.
			time.Sleep(time.Second)
			t0 = time.Now()
			c.act(t, n, id)
		}
		var exit time.Duration
		select {
		case <-done:
			exit = time.Since(t0)
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: the executor is still running 2 minutes on", c.what)
		}
		last := n.waitTerminal(t, 10*time.Second, id).st
		o := outcome{what: c.what, st: last, exit: exit}
		msg := last.GetMessage()
		o.ok = last.GetState() == c.want && last.GetSource() == mesos.SOURCE_EXECUTOR
		if c.want == mesos.TASK_FAILED {
			o.ok = o.ok && strings.Contains(msg, "writer") && strings.Contains(strings.ToLower(msg), "disk")
		}
		t.Logf("%s: %s from %s (%s) %q; executor ended %v after", c.what, last.GetState(), last.GetSource(), last.GetReason(), msg, exit.Round(time.Millisecond))
		outs = append(outs, o)
	}
	res.pass = true
	var parts []string
	for _, o := range outs {
		parts = append(parts, fmt.Sprintf("%s: %s %q, executor gone after %s", o.what, o.st.GetState(), o.st.GetMessage(), secs(o.exit)))
		res.pass = res.pass && o.ok
	}
	res.figure = strings.Join(parts, "; ")
	return res
}

// tmpfsWorkDir returns a work dir for the fake agent whose sandboxes
// (<work>/slaves) are a tmpfs of sandboxDiskSize, unmounted at cleanup
// (after the node's own cleanup has killed what runs there).
func tmpfsWorkDir(t *testing.T) (work, disk string) {
	t.Helper()
	testenv.NeedRoot(t)
	work = t.TempDir()
	disk = filepath.Join(work, "slaves")
	if err := os.MkdirAll(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{work, filepath.Dir(work)} {
		if err := os.Chmod(d, 0o755); err != nil { // traversable by the task user
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+sandboxDiskSize+",mode=0755", "dewar-test-sandbox", disk).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v: %s", disk, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", disk, err, out)
			_ = exec.Command("umount", "-l", disk).Run()
		}
	})
	return work, disk
}

// free is the space left on the filesystem of dir, in bytes.
func free(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// fill writes to path until the filesystem is full, then gives back
// slack bytes.
func fill(t *testing.T, path string, slack int64) {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "dd", "if=/dev/zero", "of="+path, "bs=64k").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left") {
		t.Fatalf("fill %s: want dd to stop at ENOSPC, got %v: %s", path, err, out)
	}
	fi, err := os.Stat(path)
	if err == nil {
		err = os.Truncate(path, max(fi.Size()-slack, 0))
	}
	if err != nil {
		t.Fatal(err)
	}
}
