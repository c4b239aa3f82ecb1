package fakeagent

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Isolator attaches a container to CNI networks (package isolator; wired in
// by cmd/dewar-agent). It is declared here, where it is used, so the agent
// runs and is tested without root when no task asks for networks.
type Isolator interface {
	// Prepare creates the container's network namespace and attaches it to
	// networks, in order (ethN is the N-th named network).
	Prepare(ctx context.Context, containerID string, networks []mesos.NetworkInfo) (*NetContainer, error)
	// Cleanup detaches and removes the namespace; idempotent, also after a
	// restart of the agent.
	Cleanup(ctx context.Context, containerID string) error
}

// orphanLister is implemented by an Isolator that can list the containers
// it has prepared, so that recovery cleans up containers the agent lost
// track of (a crash between Prepare and the checkpoint), as Mesos destroys
// orphan containers.
type orphanLister interface {
	Prepared() ([]string, error)
}

// NetContainer is a prepared network namespace.
type NetContainer struct {
	NetNSPath string
	// NetworkInfos are the networks with the addresses CNI assigned: the
	// agent's view, merged into every status update.
	NetworkInfos []mesos.NetworkInfo
	// Wrap turns the executor's argv into one that runs it in the namespace.
	Wrap func(argv []string) []string
}

// executorArgv is the executor's command line from CommandInfo: with shell
// (the default) `/bin/sh -c value`, else value with arguments[1:], as Mesos.
func executorArgv(c *mesos.CommandInfo) ([]string, error) {
	if c == nil || c.GetValue() == "" {
		return nil, errors.New("the executor has no command (ExecutorInfo.command.value is empty)")
	}
	if c.GetShell() {
		return []string{"/bin/sh", "-c", c.GetValue()}, nil
	}
	argv := []string{c.GetValue()}
	if len(c.Arguments) > 1 {
		argv = append(argv, c.Arguments[1:]...)
	}
	return argv, nil
}

// DefaultPATH is stout's os::host_default_path
// (3rdparty/stout/include/stout/posix/os.hpp), which the containerizer's
// launcher gives a process whose environment has no PATH
// (src/slave/containerizer/mesos/launch.cpp, MesosContainerizerLaunch).
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// executorEnv is the environment a Mesos agent gives an executor, built
// from nothing: the agent's own environment is not inherited
// (src/slave/slave.cpp, executorEnvironment), except LIBPROCESS_IP;
// Config.ExecutorEnvironment (--executor_environment_variables) comes next.
// MESOS_SANDBOX comes from the containerizer
// (src/slave/containerizer/mesos/containerizer.cpp, _launch); the
// executor's CommandInfo.environment is applied last, and PATH defaults
// to DefaultPATH. MESOS_CONTAINER_IP is never set: only Mesos' default
// executor sets it, for its own tasks.
func (a *Agent) executorEnv(f *framework, info mesos.ExecutorInfo, run runInfo) []string {
	env := map[string]string{}
	if ip, ok := os.LookupEnv("LIBPROCESS_IP"); ok {
		env["LIBPROCESS_IP"] = ip
	}
	maps.Copy(env, a.cfg.ExecutorEnvironment) // --executor_environment_variables
	env["LIBPROCESS_PORT"] = "0"
	checkpoint := "0"
	if f.checkpoints() {
		checkpoint = "1"
	}
	for k, v := range map[string]string{
		"MESOS_FRAMEWORK_ID":                   f.id(),
		"MESOS_EXECUTOR_ID":                    info.ExecutorID.Value,
		"MESOS_DIRECTORY":                      run.Sandbox,
		"MESOS_SLAVE_ID":                       a.info.ID.Value,
		"MESOS_SLAVE_PID":                      a.PID(),
		"MESOS_AGENT_ENDPOINT":                 a.Addr(),
		"MESOS_CHECKPOINT":                     checkpoint,
		"MESOS_HTTP_COMMAND_EXECUTOR":          "0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": mesosDuration(a.gracePeriod(info)),
		"MESOS_SANDBOX":                        run.Sandbox,
	} {
		env[k] = v
	}
	if a.unixLn != nil {
		// --http_executor_domain_sockets: the host path, for every executor.
		env["MESOS_DOMAIN_SOCKET"] = a.SocketPath()
	}
	if f.checkpoints() {
		env["MESOS_RECOVERY_TIMEOUT"] = mesosDuration(a.cfg.RecoveryTimeout)
		env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = mesosDuration(a.cfg.ExecutorReregistrationTimeout)
	}
	if a.cfg.AuthenticateExecutors {
		env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] = run.Token
	}
	if e := info.GetCommand().GetEnvironment(); e != nil {
		for _, v := range e.Variables {
			env[v.GetName()] = v.GetValue()
		}
	}
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = DefaultPATH
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// mesosDuration formats d as Mesos' Duration does ("5secs", "15mins",
// "100ms"): the largest unit that represents d exactly.
func mesosDuration(d time.Duration) string {
	units := []struct {
		d    time.Duration
		name string
	}{
		{7 * 24 * time.Hour, "weeks"}, {24 * time.Hour, "days"}, {time.Hour, "hrs"},
		{time.Minute, "mins"}, {time.Second, "secs"}, {time.Millisecond, "ms"},
		{time.Microsecond, "us"},
	}
	for _, u := range units {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
