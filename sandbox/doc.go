// Package sandbox runs the processes of one task with the semantics of
// Aurora's Thermos runner: ordering constraints, retries, daemons, ephemeral
// and final processes, the ACTIVE → CLEANING → FINALIZING → terminal state
// machine, per-run logs, and the guarantee that nothing the task started
// outlives it.
//
// # Process trees
//
// Every process run is `bash -c <cmdline>` in a session of its own (Setsid)
// — for a task with a filesystem image (Options.Image), `mesos-containerizer
// launch`, which changes root and user and then execs that bash in place, so
// pids and sessions are the same —
// so the session id equals the pid of the run's bash and every descendant that
// does not call setsid(2) itself stays in it. A Runner remembers the sessions
// it created (a process-wide registry, because several Runners may share one
// executor or test binary) and finds its processes by scanning /proc: members
// of its sessions plus their descendants by parent pid. When a run exits,
// what it left in its process group is SIGKILLed before the run is reaped
// (Thermos kills a process's tree after every run); CLEANING sends SIGTERM to
// everything of the task; the end of the task SIGKILLs whatever is left and
// waits until nothing is.
//
// A descendant that both leaves the session (setsid) and loses its parent
// (double fork) is reparented to the nearest subreaper: the executor calls
// BecomeSubreaper, so that is the executor. Every process of a Runner
// inherits DEWAR_SANDBOX_RUNNER=<executor pid>-<n> in its environment, and
// an orphan carrying a Runner's value belongs to that Runner. At the end of a
// task (and on Kill) a Runner also kills the children of this process that
// no Runner started, no live Runner claims, and that sit in a session other
// than this process's ("adopted" children: orphans that scrubbed their
// environment), but only while this process is a subreaper; otherwise every
// child was started by code in this process. Children the executor starts
// itself without Setsid (health-check commands, even with Setpgid) stay in
// its session and are never touched.
//
// # Reaping
//
// Exit statuses of tracked runs are collected with exec.Cmd.Wait, which waits
// for one specific pid (after a waitid(WNOWAIT) on the same pid, which only
// watches). Nothing here ever waits on pid -1, which would steal statuses
// from os/exec users elsewhere in the process. Orphans are reaped one pid at
// a time (wait4(pid, WNOHANG)), and only when /proc shows them as zombies
// that belong to this Runner, or, at the end of the task, adopted children.
// While the task runs, a SIGCHLD schedules such a scan within half a second
// (batched, since most SIGCHLDs are tracked runs).
//
// # Deviations from Thermos worth knowing
//
//   - min_duration is measured from the end of the previous run, as Thermos'
//     planner does (so a retry also starts at least min_duration after the
//     previous start).
//   - A run that ends by a signal while the task is ACTIVE counts as a
//     failure (Thermos counts a coordinator killed by a signal as "lost").
//   - As in Thermos, a failing final process does not change the task's
//     result; task max_failures counts regular processes only.
package sandbox
