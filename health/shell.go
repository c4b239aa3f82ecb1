package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dewarhq/dewar/internal/shell"
)

// ShellChecker runs a command with bash -c; exit status 0 is healthy. The
// command runs in a process group of its own, and the whole group is killed
// when the check times out or ends, so a check never leaves processes
// behind.
type ShellChecker struct {
	Command     string        // already rendered ({{...}} replaced)
	Timeout     time.Duration // per check; 0 leaves it to ctx
	Dir         string        // working directory; "" is the executor's
	Env         []string      // environment; nil inherits the executor's
	SysProcAttr *syscall.SysProcAttr
	// SysProcAttr lets the caller set the task user's Credential, as
	// Thermos demotes shell checks to the job's role.

	// Wrapped, when set, is the argv run instead of `bash -c Command`
	// (Thermos' ShellHealthCheck wrapped_cmd: the command inside the
	// task's filesystem image through mesos-containerizer); Command still
	// names the check in messages.
	Wrapped []string
}

var _ Checker = (*ShellChecker)(nil)

// Check runs the command once.
func (c *ShellChecker) Check(ctx context.Context) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	argv := c.Wrapped
	if len(argv) == 0 {
		bash, err := shell.Bash()
		if err != nil {
			return err
		}
		argv = []string{bash, "-c", c.Command}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	var out tailBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	attr := &syscall.SysProcAttr{}
	if c.SysProcAttr != nil {
		copied := *c.SysProcAttr
		attr = &copied
	}
	cmd.SysProcAttr = attr
	ownProcessGroup(cmd)
	cmd.Cancel = func() error {
		killProcessGroup(cmd)
		return nil
	}
	// A grandchild holding the output pipe must not keep Wait waiting.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	// Whatever the check started in the background goes with it.
	killProcessGroup(cmd)
	if ctx.Err() != nil {
		return fmt.Errorf("shell health check %q: did not finish in time: %w", c.Command, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("shell health check %q: %s%s", c.Command, exit.ProcessState, out.reason())
	}
	if err != nil {
		return fmt.Errorf("shell health check %q: %w", c.Command, err)
	}
	return nil
}

// tailBuffer keeps the last bytes of a check's output for the failure reason.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 512

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = t.buf[len(t.buf)-tailSize:]
	}
	return len(p), nil
}

func (t *tailBuffer) reason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil)))
	if s == "" {
		return ""
	}
	return ": " + s
}
