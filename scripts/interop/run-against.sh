#!/usr/bin/env bash
# Run the interop suite (kcat x2, kafka-python, confluent-kafka, aiokafka) against a fresh broker.
#
#   scripts/interop/run-against.sh petrel|tansu [pytest args...]
#   e.g. scripts/interop/run-against.sh tansu -k kcat
#
# Starts the broker on a free 127.0.0.1 port with a temporary data directory (command lines in
# scripts/interop/broker.sh), waits until the port accepts connections, runs the suite with
# KAFKA_BOOTSTRAP and BROKER_KIND set, stops the broker (SIGTERM, SIGKILL after 10 s) and exits
# with the suite's status.  The broker's log is printed when anything fails.
#
# Environment: PETREL_BIN, PETREL_SCRATCH_PATH, TANSU_BIN (see broker.sh);
#   INTEROP_SUITE_TIMEOUT (s, default 900) bounds the whole suite,
#   INTEROP_START_TIMEOUT (s, default 60) bounds the broker's start,
#   INTEROP_KEEP=1 keeps the temporary directory.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=broker.sh
source "$HERE/broker.sh" || exit 1
unblock_signals_or_reexec "$0" "$@"

KIND=${1:-}
case "$KIND" in
  petrel|tansu) shift ;;
  *) echo "usage: $0 petrel|tansu [pytest args...]" >&2; exit 2 ;;
esac

SUITE_TIMEOUT=${INTEROP_SUITE_TIMEOUT:-900}
START_TIMEOUT=${INTEROP_START_TIMEOUT:-60}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/petrel-interop-$KIND.XXXXXX")
DATA="$WORK/data"
LOG="$WORK/broker.log"
mkdir -p "$DATA"
BROKER_PID=

print_log() {
  echo "===== $KIND broker log ($LOG, last 400 lines) ====="
  tail -n 400 "$LOG" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g'
  echo "===== end of broker log ====="
}

cleanup() {
  if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID" 10 || true; fi
  if [ "${INTEROP_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$KIND" = petrel ] && [ -z "${PETREL_BIN:-}" ]; then
  echo "run-against: building petrel"
  PETREL_BIN=$(petrel_bin) || { echo "run-against: petrel build failed" >&2; exit 1; }
  export PETREL_BIN
fi

PORT=$(free_port)
broker_argv "$KIND" "$PORT" "$DATA" || exit 1
echo "run-against: starting $KIND on 127.0.0.1:$PORT: ${BROKER_ARGV[*]}"
"${BROKER_ARGV[@]}" >"$LOG" 2>&1 &
BROKER_PID=$!

if ! wait_port "$PORT" "$START_TIMEOUT" "$BROKER_PID"; then
  echo "run-against: $KIND is not listening (start timeout ${START_TIMEOUT}s); its log follows" >&2
  print_log
  exit 1
fi
echo "run-against: $KIND (pid $BROKER_PID) is listening"

export KAFKA_BOOTSTRAP="127.0.0.1:$PORT" BROKER_KIND="$KIND" PYTHONDONTWRITEBYTECODE=1
rc=0
(cd "$HERE" && timeout -k 10 "$SUITE_TIMEOUT" python3 -m pytest --basetemp="$WORK/pytest" "$@") || rc=$?
[ $rc -eq 124 ] && echo "run-against: the suite exceeded INTEROP_SUITE_TIMEOUT=${SUITE_TIMEOUT}s" >&2

alive=1
kill -0 "$BROKER_PID" 2>/dev/null || alive=0
if [ $alive = 0 ]; then
  echo "run-against: the $KIND broker died during the suite" >&2
  [ $rc -eq 0 ] && rc=1
fi
if [ $alive = 1 ]; then
  stop_pid "$BROKER_PID" 10 || echo "run-against: warning: $KIND did not stop within 10 s of SIGTERM" >&2
  BROKER_PID=
fi
[ $rc -ne 0 ] && print_log
echo "run-against: $KIND suite exit status $rc"
exit $rc
