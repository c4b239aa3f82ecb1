#!/usr/bin/env bash
# dewar demo: a two-instance web service on two CNI networks, end to end.
#
#   ./scripts/demo.sh         start everything, show addresses, serversets and
#                             HTTP answers, then wait (Ctrl-C cleans up)
#   ./scripts/demo.sh stop    clean up a demo left running (make demo-stop)
#
# The whole node lives in the network namespace dewar-demo-node: ZooKeeper,
# dewar-agent (with its CNI bridges dewar-demo-blue and dewar-demo-grn), the
# scheduler stub, and the host side of every container's veth. The machine's
# own network stack is never touched. Needs root, `make deps` and `make build`
# (`make demo` does both).
#
# The job (testdata/jobs/web_cni.json) runs the test web server
# (internal/testprog/webserver, which `make build` puts into
# bin/dewar-test-webserver), so the demo needs no Python or busybox.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=$ROOT/.demo
NS=dewar-demo-node
BIN=$ROOT/bin
JOB=$ROOT/testdata/jobs/web_cni.json
ZK_PORT=2181
AGENT=127.0.0.1:5051
BLUE_GW=198.18.10.1 # bridge gateway of "blue": the containers reach ZooKeeper here
WAIT_SECS=${DEWAR_DEMO_WAIT:-180}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
STARTED=
die() {
  echo "demo: $*" >&2
  if [[ -n $STARTED && -z ${DEWAR_DEMO_KEEP:-} ]]; then
    for l in "$DEMO"/logs/*.log; do echo "--- tail of $l" >&2; tail -n 15 "$l" >&2 || true; done
    stop
  fi
  exit 1
}
# nsenter --net enters only the network namespace. (`ip netns exec` would
# also give the command a private mount namespace, and the container
# namespaces the agent pins under /run/netns would be invisible outside it.)
in_ns() { nsenter --net="/run/netns/$NS" -- "$@"; }
# bg_in_ns runs a daemon in the node namespace in a session of its own, so
# that Ctrl-C reaches only this script, which then stops everything in order
# (setsid and nsenter both exec in place: $! is the daemon's PID).
bg_in_ns() { setsid nsenter --net="/run/netns/$NS" -- "$@" </dev/null & }

pid_alive() { [[ -f $DEMO/pids/$1 ]] && kill -0 "$(cat "$DEMO/pids/$1")" 2>/dev/null; }

# stop_pid NAME SECS: SIGTERM the process we recorded, SIGKILL after SECS.
stop_pid() {
  local name=$1 secs=${2:-10} pid
  [[ -f $DEMO/pids/$name ]] || return 0
  pid=$(cat "$DEMO/pids/$name")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DEMO/pids/$name"
}

# Processes started by the demo's agent (executors and their tasks) carry
# MESOS_DIRECTORY under .demo/agent; find them by that, never by name.
demo_task_pids() {
  local f pid
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}; pid=${pid%/environ}
    { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -q "^MESOS_DIRECTORY=$DEMO/agent/" && echo "$pid"
  done
  return 0
}

stop() {
  [[ -d $DEMO ]] || { echo "demo: nothing to stop"; return 0; }
  say "stopping the demo"
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    # Kill the job through the stub: executors withdraw from the
    # serversets, stop their processes and exit; the agent then runs CNI
    # DEL and removes each container's namespace.
    # (With the stub gone, kill subscribes as its framework itself.)
    if pid_alive agent && [[ -f $DEMO/scheduler.db ]]; then
      in_ns "$BIN/dewar-scheduler" kill --db "$DEMO/scheduler.db" --master "$AGENT" || true
      for ((i = 0; i < 300; i++)); do pid_alive scheduler || break; sleep 0.1; done
    fi
  fi
  stop_pid scheduler 5
  stop_pid agent 10
  stop_pid observer 5
  local left
  left=$(demo_task_pids)
  if [[ -n $left ]]; then
    echo "killing leftover task processes:" $left
    kill -KILL $left 2>/dev/null || true
  fi
  # Namespaces of containers the agent could not clean up itself.
  if [[ -d $DEMO/agent/cni ]]; then
    grep -rhoE '"netns_name": *"dewar-c-[^"]+"' "$DEMO/agent/cni" 2>/dev/null |
      sed -E 's/.*"(dewar-c-[^"]+)"/\1/' | sort -u | while read -r n; do
        ip netns del "$n" 2>/dev/null && echo "removed leftover namespace $n" || true
      done || true
  fi
  stop_pid zookeeper 10
  # Deleting the node namespace removes its bridges and veths with it.
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DEMO"
  echo "demo stopped; nothing left"
}

if [[ ${1:-} == stop ]]; then
  stop
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, bridges); run: sudo make demo"
for b in dewar-agent dewar-executor dewar-scheduler dewar-serverset dewar-observer dewar-test-webserver; do
  [[ -x $BIN/$b ]] || die "$BIN/$b missing; run: make build"
done
[[ -x $ROOT/.tools/cni/bridge ]] || die "CNI plugins missing in .tools/cni; run: make deps"
[[ -f /usr/share/java/zookeeper.jar ]] || die "ZooKeeper missing; run: make deps"
command -v curl >/dev/null || die "curl missing; run: make deps"
if [[ -d $DEMO ]] || ip netns list 2>/dev/null | grep -qw "$NS"; then
  echo "a previous demo is still there; cleaning it up first"
  stop
fi

trap 'stop; exit 130' INT TERM
STARTED=1
mkdir -p "$DEMO"/{pids,logs,cni,ipam,zk/data}

say "node namespace $NS"
ip netns add "$NS"
in_ns ip link set lo up

# Two CNI networks in the 0.2.0 format the Mesos isolator reads. Forwarding
# stays off in the node namespace: the networks do not route to each other.
cat >"$DEMO/cni/blue.conf" <<JSON
{
  "cniVersion": "0.2.0", "name": "blue", "type": "bridge", "bridge": "dewar-demo-blue",
  "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "subnet": "198.18.10.0/24", "dataDir": "$DEMO/ipam",
           "routes": [{"dst": "198.18.10.0/24"}]}
}
JSON
cat >"$DEMO/cni/green.conf" <<JSON
{
  "cniVersion": "0.2.0", "name": "green", "type": "bridge", "bridge": "dewar-demo-grn",
  "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$DEMO/ipam",
           "ranges": [[{"subnet": "198.18.20.0/24"}], [{"subnet": "2001:db8:20::/64"}]],
           "routes": [{"dst": "198.18.20.0/24"}, {"dst": "2001:db8:20::/64"}]}
}
JSON
echo "blue:  198.18.10.0/24                     (bridge dewar-demo-blue)"
echo "green: 198.18.20.0/24 and 2001:db8:20::/64 (bridge dewar-demo-grn)"

say "ZooKeeper on port $ZK_PORT inside $NS"
cat >"$DEMO/zk/zoo.cfg" <<CFG
tickTime=2000
dataDir=$DEMO/zk/data
clientPort=$ZK_PORT
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
CFG
bg_in_ns java -Dzookeeper.log.dir="$DEMO/logs" \
  -cp "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/*" \
  org.apache.zookeeper.server.ZooKeeperServerMain "$DEMO/zk/zoo.cfg" >"$DEMO/logs/zookeeper.log" 2>&1
echo $! >"$DEMO/pids/zookeeper"
for ((i = 0; ; i++)); do
  in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && echo ruok >&3 && head -c4 <&3" 2>/dev/null | grep -q imok && break
  ((i < 300)) || die "ZooKeeper did not start; see $DEMO/logs/zookeeper.log"
  pid_alive zookeeper || die "ZooKeeper exited; see $DEMO/logs/zookeeper.log"
  sleep 0.1
done
echo "ZooKeeper is up"

say "dewar-agent (master + agent + CNI isolator) on $AGENT"
bg_in_ns "$BIN/dewar-agent" \
  --executor-environment-variables "{\"PATH\": \"$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"}" \
  --work-dir "$DEMO/agent" --listen "$AGENT" --hostname dewar-demo-node \
  --resources "cpus:4;mem:4096;ports:[31000-31999]" \
  --executor "$BIN/dewar-executor" \
  --network-cni-config-dir "$DEMO/cni" --network-cni-plugins-dir "$ROOT/.tools/cni" \
  >"$DEMO/logs/agent.log" 2>&1
echo $! >"$DEMO/pids/agent"
for ((i = 0; ; i++)); do
  in_ns curl -fsS -o /dev/null "http://$AGENT/state" 2>/dev/null && break
  ((i < 300)) || die "dewar-agent did not start; see $DEMO/logs/agent.log"
  pid_alive agent || die "dewar-agent exited; see $DEMO/logs/agent.log"
  sleep 0.1
done
echo "dewar-agent is up"

say "dewar-scheduler: submitting $(basename "$JOB") (2 instances on blue and green)"
bg_in_ns "$BIN/dewar-scheduler" run --master "$AGENT" --db "$DEMO/scheduler.db" --job "$JOB" \
  --enable-cni --allowed-networks blue,green \
  --executor-command "$BIN/dewar-executor" \
  --announcer-ensemble "$BLUE_GW:$ZK_PORT" \
  >"$DEMO/logs/scheduler.log" 2>&1
echo $! >"$DEMO/pids/scheduler"

echo "waiting for both instances to be RUNNING (up to ${WAIT_SECS}s)"
for ((i = 0; ; i++)); do
  running=$("$BIN/dewar-scheduler" status --db "$DEMO/scheduler.db" 2>/dev/null | grep -c '^instance .* TASK_RUNNING' || true)
  [[ $running -ge 2 ]] && break
  pid_alive scheduler || die "the stub exited; see $DEMO/logs/scheduler.log"
  ((i < WAIT_SECS * 2)) || { "$BIN/dewar-scheduler" status --db "$DEMO/scheduler.db" || true; die "instances not RUNNING; see $DEMO/logs/"; }
  sleep 0.5
done

say "addresses per instance and network (agent's CNI results vs the executor's own discovery)"
"$BIN/dewar-scheduler" status --db "$DEMO/scheduler.db"

say "serverset members in ZooKeeper"
for path in /aurora/root/devel/hello /aurora/root/devel/hello@blue /aurora/root/devel/hello@green; do
  echo "-- $path"
  in_ns "$BIN/dewar-serverset" ls --zk "127.0.0.1:$ZK_PORT" "$path" || true
done

say "HTTP from inside $NS to every instance on every address"
failures=0
while read -r inst net addr port; do
  host=$addr
  [[ $addr == *:* ]] && host="[$addr]"
  if body=$(in_ns curl -fsS --retry 10 --retry-delay 1 --retry-all-errors --max-time 5 "http://$host:$port/"); then
    printf 'instance %s %-6s %-16s -> %s\n' "$inst" "$net" "$addr" "$body"
  else
    printf 'instance %s %-6s %-16s -> FAILED\n' "$inst" "$net" "$addr"
    failures=$((failures + 1))
  fi
done < <("$BIN/dewar-scheduler" status --db "$DEMO/scheduler.db" --endpoints http)
((failures == 0)) || echo "demo: $failures requests failed; see $DEMO/logs/"

say "dewar-observer on the machine's own loopback, reading the agent's work dir"
# Not in the node namespace: a browser on this machine opens it. Port 0
# picks a free port (1338, Thermos' port, may be in use); the observer
# prints the one line "observer: http://127.0.0.1:PORT/".
setsid "$BIN/dewar-observer" --mesos-root "$DEMO/agent" --ip 127.0.0.1 --port "${DEWAR_OBSERVER_PORT:-0}" \
  </dev/null >"$DEMO/logs/observer.log" 2>&1 &
echo $! >"$DEMO/pids/observer"
OBSERVER=
for ((i = 0; i < 100; i++)); do
  OBSERVER=$(grep -m1 -o '^observer: http://[^ ]*' "$DEMO/logs/observer.log" 2>/dev/null || true)
  [[ -n $OBSERVER ]] && break
  pid_alive observer || die "dewar-observer exited; see $DEMO/logs/observer.log"
  sleep 0.1
done
[[ -n $OBSERVER ]] || die "dewar-observer did not start; see $DEMO/logs/observer.log"
echo "$OBSERVER"
# The observer's task pages must show every address of the table above.
mismatch=0
while read -r inst net addr port; do
  task=$(curl -fsS "${OBSERVER#observer: }j/task_ids/active/0/100" | grep -o '"task_id": "[^"]*"' | cut -d'"' -f4 || true)
  found=
  for id in $task; do
    # Read the whole page first: grep -q stops reading at the first match,
    # and curl then fails writing the rest (exit 23 under pipefail).
    page=$(curl -fsS "${OBSERVER#observer: }task/$id" || true)
    grep -qF ">$addr/" <<<"$page" && found=$id
  done
  if [[ -n $found ]]; then
    printf 'instance %s %-6s %-16s on the observer page of %s\n' "$inst" "$net" "$addr" "$found"
  else
    printf 'instance %s %-6s %-16s NOT on any observer task page\n' "$inst" "$net" "$addr"
    mismatch=$((mismatch + 1))
  fi
done < <("$BIN/dewar-scheduler" status --db "$DEMO/scheduler.db" --endpoints http)
((mismatch == 0)) || { echo "demo: the observer and the address table disagree on $mismatch addresses"; failures=$((failures + mismatch)); }

say "the demo is running"
cat <<TXT
  $OBSERVER
  logs:        $DEMO/logs/
  status:      $BIN/dewar-scheduler status --db $DEMO/scheduler.db
  serversets:  nsenter --net=/run/netns/$NS $BIN/dewar-serverset watch --zk 127.0.0.1:$ZK_PORT /aurora/root/devel/hello@green
  kill one:    nsenter --net=/run/netns/$NS $BIN/dewar-scheduler kill --db $DEMO/scheduler.db --instance 1
Press Ctrl-C to stop and clean up (or run: make demo-stop).
TXT
if [[ -n ${DEWAR_DEMO_NO_WAIT:-} ]]; then
  trap - INT TERM
  exit $((failures > 0))
fi
while pid_alive agent; do sleep 1; done
echo "dewar-agent exited; cleaning up"
stop
