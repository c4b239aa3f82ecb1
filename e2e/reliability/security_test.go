package reliability

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/devcluster/fakeagent"
	"github.com/dewarhq/dewar/internal/testenv"
	"github.com/dewarhq/dewar/internal/zktest"
)

// envJob is an announced Aurora service whose process prints its whole
// environment to its stdout (kept in the sandbox) and to env.txt, then
// waits for %[2]s.
const envJob = `{
  "name": "%[1]s", "role": "root", "environment": "test", "cluster": "rel",
  "instances": 1, "service": true, "max_task_failures": 1,
  "announce": {"primary_port": "http", "portmap": {"aurora": "http"}},
  "task": {
    "name": "env",
    "processes": [{"name": "env", "cmdline": "env; env > env.txt; while [ ! -e %[2]s ] && [ -d %[3]s ]; do sleep 0.05; done", "max_failures": 1}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 0
  }
}`

// badNameJob is an Aurora task with one process named %[2]s.
const badNameJob = `{
  "name": "%[1]s", "role": "root", "environment": "test", "cluster": "rel", "instances": 1,
  "task": {
    "name": "bad",
    "processes": [{"name": %[2]q, "cmdline": "echo escaped > escaped.txt", "max_failures": 1}],
    "constraints": [], "resources": {"cpu": 0.1, "ram": 16777216, "disk": 16777216},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 0
  }
}`

// security: what another tenant or a bad job could try.
//   - Another ZooKeeper session (other digest credentials, or none) tries
//     to delete, overwrite or re-ACL the member an executor announced
//     under a digest ACL (--announcer-zookeeper-auth-config).
//   - Processes named ".." or with a '/' (their log directory would be
//     outside .logs) go to the real executor.
//   - The agent's executor token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN,
//     Mesos' --authenticate_http_executors) is searched for in every file
//     of the run dir (executor log, task logs, checkpoints), in the task's
//     environment and in every update the agent checkpointed.
//
// Figures: attempts refused of attempts made; leaks found. Must hold: all
// refused, 0 leaks.
func security(t *testing.T, ens *zktest.Ensemble, _ scale) result {
	res := result{
		scenario: "security: other ZooKeeper credentials vs. a member under a digest ACL; process names with `..`; the agent's executor token",
		must:     "all attempts refused, 0 leaks",
	}
	n := newFakeNode(t, fakeagent.Config{AuthenticateExecutors: true})
	dir := t.TempDir()
	auth := filepath.Join(dir, "zkauth.json")
	const owner = "dewar:s3cret-" // + random: the test's own identity
	cred := owner + testenv.RandomHex(4)
	writeFile(t, auth, fmt.Sprintf(`{"auth":[{"scheme":"digest","credential":%q}],
 "acl":[{"scheme":"digest","credential":%q,"permissions":{"read":true,"write":true,"create":true,"delete":true,"admin":true}}]}`, cred, cred))

	name := "env-" + testenv.RandomHex(4)
	done := filepath.Join(dir, "done")
	id, exID := n.launch(t, fmt.Sprintf(envJob, name, done, dir), name,
		"--announcer-ensemble", strings.Join(ens.Addrs(), ","), "--announcer-zookeeper-auth-config", auth)
	n.waitState(t, time.Minute, id, mesos.TASK_RUNNING)
	ex := n.executorState(t, exID)
	token := executorToken(t, ex)

	// The member as its owner reads it.
	ownerConn := reader(t, ens)
	if err := ownerConn.AddAuth("digest", []byte(cred)); err != nil {
		t.Fatal(err)
	}
	member := waitMember(t, ownerConn, "/aurora/root/test/"+name)
	data, stat, err := ownerConn.Get(member)
	if err != nil {
		t.Fatalf("the owner cannot read its member %s: %v", member, err)
	}

	attempts, refused := 0, 0
	var notes []string
	try := func(who, what string, err error) {
		attempts++
		if errors.Is(err, zk.ErrNoAuth) {
			refused++
			return
		}
		notes = append(notes, fmt.Sprintf("%s %s: %v (want %v)", who, what, err, zk.ErrNoAuth))
	}
	for _, who := range []string{"other digest credentials", "no credentials"} {
		c := reader(t, ens)
		if who == "other digest credentials" {
			if err := c.AddAuth("digest", []byte("intruder:"+testenv.RandomHex(4))); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := c.Get(member)
		try(who, "read", err)
		_, err = c.Set(member, []byte(`{"serviceEndpoint":{"host":"203.0.113.9","port":1},"additionalEndpoints":{},"status":"ALIVE"}`), -1)
		try(who, "overwrite", err)
		try(who, "delete", c.Delete(member, -1))
		_, err = c.SetACL(member, zk.WorldACL(zk.PermAll), -1)
		try(who, "re-ACL", err)
		_, err = c.Create(member+"/x", nil, 0, zk.WorldACL(zk.PermAll))
		try(who, "create under", err)
	}
	after, astat, err := ownerConn.Get(member)
	if err != nil || !bytes.Equal(after, data) || astat.Version != stat.Version || astat.Aversion != stat.Aversion {
		notes = append(notes, fmt.Sprintf("the member changed: %v, version %d→%d, aversion %d→%d", err, stat.Version, astat.Version, stat.Aversion, astat.Aversion))
		refused = min(refused, attempts-1)
	}

	badRefused, badTried := badProcessNames(t, n, &notes)
	attempts, refused = attempts+badTried, refused+badRefused

	touch(t, done)
	n.waitState(t, time.Minute, id, mesos.TASK_FINISHED)
	select {
	case <-n.executorDone(exID):
	case <-time.After(time.Minute):
		t.Fatalf("executor %s still running a minute after TASK_FINISHED", exID)
	}
	leaks, where := tokenLeaks(t, n, ex, token)
	notes = append(notes, where...)
	for _, note := range notes {
		t.Log(note)
	}
	res.figure = fmt.Sprintf("%d of %d attempts refused (ZooKeeper read, overwrite, delete, re-ACL, create under a member, with other and with no credentials; processes named `..` and `../x`); %d token leaks in the executor's and the task's files, the task's environment and %d checkpointed updates",
		refused, attempts, leaks, len(n.updatesOf(id)))
	res.pass = refused == attempts && leaks == 0
	return res
}

// badProcessNames launches tasks whose process is named ".." or "../x"
// under the real executor: each must fail before anything runs, saying
// which name is wrong, and write nothing outside its sandbox.
func badProcessNames(t *testing.T, n *fakeNode, notes *[]string) (refused, tried int) {
	t.Helper()
	for _, bad := range []string{"..", "../escaped"} {
		tried++
		name := "bad-" + testenv.RandomHex(4)
		// Built from a valid job (the scheduler side would refuse this
		// one), sent with the bad name.
		id, exID := n.launchAs(t, fmt.Sprintf(badNameJob, name, "ok"), fmt.Sprintf(badNameJob, name, bad), name)
		ex := n.executorState(t, exID)
		last := n.waitTerminal(t, time.Minute, id).st
		var outside []string
		_ = filepath.WalkDir(ex.Sandbox, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "escaped.txt" || strings.HasSuffix(p, "/escaped") {
				outside = append(outside, p)
			}
			return nil
		})
		msg := last.GetMessage()
		if last.GetState() == mesos.TASK_FAILED && strings.Contains(msg, fmt.Sprintf("%q", bad)) && len(outside) == 0 {
			refused++
			t.Logf("process name %q: %s %q", bad, last.GetState(), msg)
			continue
		}
		*notes = append(*notes, fmt.Sprintf("process name %q: %s %q; written: %v", bad, last.GetState(), msg, outside))
	}
	return refused, tried
}

// tokenLeaks finds the executor's token in every file of its run dir
// (its own log, the task's logs, checkpoints), in the task's environment
// dump and in every update the agent checkpointed.
func tokenLeaks(t *testing.T, n *fakeNode, ex fakeagent.ExecutorState, token string) (int, []string) {
	t.Helper()
	var where []string
	_ = filepath.WalkDir(ex.Sandbox, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(token)) {
			where = append(where, "the token is in "+p)
		}
		return nil
	})
	for _, u := range n.allUpdates() {
		b, err := u.st.Marshal()
		if err != nil || bytes.Contains(b, []byte(token)) {
			where = append(where, fmt.Sprintf("the token is in the update %s of %s (%v)", u.st.GetState(), u.st.TaskID.Value, err))
		}
	}
	env, err := os.ReadFile(filepath.Join(ex.Sandbox, "sandbox", "env.txt"))
	if err != nil || len(env) == 0 {
		t.Fatalf("the task's environment dump: %v (empty: %v)", err, len(env) == 0)
	}
	if bytes.Contains(env, []byte("MESOS_EXECUTOR_AUTHENTICATION_TOKEN")) {
		where = append(where, "the task's environment has MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
	}
	return len(where), where
}

// executorToken is the token the agent gave the running executor, read
// from its environment.
func executorToken(t *testing.T, ex fakeagent.ExecutorState) string {
	t.Helper()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", ex.PID))
	if err != nil {
		t.Fatalf("the executor's environment: %v", err)
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("MESOS_EXECUTOR_AUTHENTICATION_TOKEN=")); ok && len(v) >= 8 {
			return string(v)
		}
	}
	t.Fatalf("executor %d has no MESOS_EXECUTOR_AUTHENTICATION_TOKEN: the agent does not authenticate executors", ex.PID)
	return ""
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
