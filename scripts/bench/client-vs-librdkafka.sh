#!/usr/bin/env bash
# The Swift client (`petrel perf produce|consume`) vs librdkafka (kcat 1.7.1 on librdkafka 2.16,
# from the confluent-kafka wheel) against the same Petrel broker, same run (issue 6's benchmark).
#
#   scripts/bench/client-vs-librdkafka.sh                      # 1,000,000 x 100 B, 3 runs
#   scripts/bench/client-vs-librdkafka.sh --records 200000 --runs 1 --partitions 3
#
# One Petrel broker (release build; its argv from scripts/interop/broker.sh, data in a temporary
# directory).  Per run (order of the two clients alternates between runs):
#   produce: --records records of --size bytes to a fresh topic, acks=1, linger.ms=5,
#            batch.size=1000000 (both clients' default), no compression, no keys;
#            Swift: petrel perf produce;  librdkafka: kcat -P -l FILE (one line per record)
#   consume: the Swift-produced topic from the beginning to its end
#            Swift: petrel perf consume --messages N;  librdkafka: kcat -C -o beginning -e
#            (fetch.wait.max.ms 50 for both; kcat's fetch.queue.backoff.ms=10, see
#            produce-consume-vs-tansu.sh for why)
# Records/s are from wall time, process start to exit, for both clients (so both pay their
# start-up, connection and metadata); every phase checks the record count.  Prints the medians,
# the Swift/librdkafka ratio (> 1: Swift faster) and petrel perf's own latency summary.
#
# Environment: PETREL_BIN (skip the build), PETREL_SCRATCH_PATH (default <repo>/.build-release),
#   BENCH_PHASE_TIMEOUT (s, 600), BENCH_TMPDIR.  Exit status 1 if any phase failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../interop/broker.sh
source "$HERE/../interop/broker.sh" || exit 1
unblock_signals_or_reexec "$0" "$@"
export PETREL_BUILD_CONFIG=${PETREL_BUILD_CONFIG:-release}
export PETREL_SCRATCH_PATH=${PETREL_SCRATCH_PATH:-$REPO_ROOT/.build-release}

RECORDS=1000000
SIZE=100
RUNS=3
PARTITIONS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
PHASE_TIMEOUT=${BENCH_PHASE_TIMEOUT:-600}

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/petrel-client-bench.XXXXXX")
BROKER_PID=
cleanup() {
  if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID" 10 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FAILED=0
fail() { echo "bench: FAIL: $*" >&2; FAILED=1; }

# --- kcat with librdkafka 2.16 from the confluent-kafka wheel (as produce-consume-vs-tansu.sh) ---
use_wheel_librdkafka "$WORK" || exit 1

# --- petrel (release) --------------------------------------------------------------------------
if [ -z "${PETREL_BIN:-}" ]; then
  if pgrep -f "swift-build.*-c release.*--scratch-path $PETREL_SCRATCH_PATH" >/dev/null; then
    echo "bench: a release build in $PETREL_SCRATCH_PATH is running; waiting for it (SwiftPM's lock)"
  fi
  echo "bench: building petrel ($PETREL_BUILD_CONFIG, $PETREL_SCRATCH_PATH)"
  PETREL_BIN=$(petrel_bin) || { echo "bench: petrel build failed" >&2; exit 1; }
  export PETREL_BIN
fi

# --- the records kcat produces: one line each, SIZE bytes of letters -----------------------------
python3 - "$WORK/records.txt" "$RECORDS" "$SIZE" <<'EOF' || exit 1
import sys
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
filler = bytes(ord("A") + (i * 7) % 26 for i in range(size + 1024))
with open(path, "wb", buffering=1 << 22) as f:
    for i in range(count):
        f.write(filler[i % 1024:i % 1024 + size] + b"\n")
EOF

port=$(free_port)
mkdir -p "$WORK/data"
broker_argv petrel "$port" "$WORK/data" || { echo "bench: no broker command line" >&2; exit 1; }
echo "bench: starting ${BROKER_ARGV[*]}"
"${BROKER_ARGV[@]}" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
wait_port "$port" 60 "$BROKER_PID" || { tail -n 40 "$WORK/broker.log"; exit 1; }
B="127.0.0.1:$port"

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rps() { awk -v n="$RECORDS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
declare -A R

create() { "$PETREL_BIN" topics -b "$B" --create --topic "$1" --partitions "$PARTITIONS" --replication-factor 1 >/dev/null || fail "create $1"; }

# high watermark sum of a topic, via a kcat query of the end offsets
hwm() {
  kcatn -Q -b "$B" $(for ((p = 0; p < PARTITIONS; p++)); do printf -- '-t %s:%d:-1 ' "$1" "$p"; done) 2>/dev/null |
    awk '$3 == "offset" { s += $4 } END { print s + 0 }'
}

produce_swift() {  # RUN
  local t=bench-swift-$1 t0 t1 rc=0
  create "$t"
  t0=$(now)
  timeout -k 5 "$PHASE_TIMEOUT" "$PETREL_BIN" perf produce -b "$B" --topic "$t" --num-records "$RECORDS" --record-size "$SIZE" \
    --acks 1 --linger-ms 5 --batch-size 1000000 --report-interval-ms 0 >"$WORK/swift-produce-$1.out" 2>&1 || rc=$?
  t1=$(now)
  R[swift.produce.$1]=$(secs "$t0" "$t1")
  local got; got=$(hwm "$t")
  [ $rc -eq 0 ] && [ "$got" -eq "$RECORDS" ] || fail "swift produce run $1: exit $rc, $got of $RECORDS records: $(tail -c 400 "$WORK/swift-produce-$1.out")"
  echo "bench: run $1: swift produce: ${R[swift.produce.$1]} s, $(rps "${R[swift.produce.$1]}") records/s  ($(grep -o '[0-9.]* records/sec' "$WORK/swift-produce-$1.out" | tail -1) measured inside)"
}

produce_rdkafka() {  # RUN
  local t=bench-rdkafka-$1 t0 t1 rc=0
  create "$t"
  t0=$(now)
  timeout -k 5 "$PHASE_TIMEOUT" env LD_LIBRARY_PATH="$WORK/lib" kcat -P -b "$B" -t "$t" \
    -X acks=1 -X linger.ms=5 -X batch.size=1000000 -l "$WORK/records.txt" 2>"$WORK/rdkafka-produce-$1.err" || rc=$?
  t1=$(now)
  R[rdkafka.produce.$1]=$(secs "$t0" "$t1")
  local got; got=$(hwm "$t")
  [ $rc -eq 0 ] && [ "$got" -eq "$RECORDS" ] || fail "librdkafka produce run $1: exit $rc, $got of $RECORDS records: $(tail -c 400 "$WORK/rdkafka-produce-$1.err")"
  echo "bench: run $1: librdkafka produce: ${R[rdkafka.produce.$1]} s, $(rps "${R[rdkafka.produce.$1]}") records/s"
}

consume_swift() {  # RUN
  local t0 t1 rc=0
  t0=$(now)
  timeout -k 5 "$PHASE_TIMEOUT" "$PETREL_BIN" perf consume -b "$B" --topic bench-swift-1 --messages "$RECORDS" \
    --fetch-max-wait-ms 50 >"$WORK/swift-consume-$1.out" 2>&1 || rc=$?
  t1=$(now)
  R[swift.consume.$1]=$(secs "$t0" "$t1")
  grep -q "^$RECORDS records consumed" "$WORK/swift-consume-$1.out" && [ $rc -eq 0 ] ||
    fail "swift consume run $1: exit $rc: $(tail -c 400 "$WORK/swift-consume-$1.out")"
  echo "bench: run $1: swift consume: ${R[swift.consume.$1]} s, $(rps "${R[swift.consume.$1]}") records/s"
}

consume_rdkafka() {  # RUN
  local t0 t1 rc=0 got
  t0=$(now)
  got=$(timeout -k 5 "$PHASE_TIMEOUT" env LD_LIBRARY_PATH="$WORK/lib" kcat -C -b "$B" -t bench-swift-1 -o beginning -e -q \
    -X fetch.wait.max.ms=50 -X fetch.queue.backoff.ms=10 -f '\n' 2>"$WORK/rdkafka-consume-$1.err" | wc -l) || rc=$?
  t1=$(now)
  R[rdkafka.consume.$1]=$(secs "$t0" "$t1")
  [ $rc -eq 0 ] && [ "$got" -eq "$RECORDS" ] || fail "librdkafka consume run $1: exit $rc, $got of $RECORDS records: $(tail -c 400 "$WORK/rdkafka-consume-$1.err")"
  echo "bench: run $1: librdkafka consume: ${R[rdkafka.consume.$1]} s, $(rps "${R[rdkafka.consume.$1]}") records/s"
}

for ((run = 1; run <= RUNS; run++)); do
  if ((run % 2)); then produce_swift $run; produce_rdkafka $run; else produce_rdkafka $run; produce_swift $run; fi
done
for ((run = 1; run <= RUNS; run++)); do
  if ((run % 2)); then consume_swift $run; consume_rdkafka $run; else consume_rdkafka $run; consume_swift $run; fi
done
kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker died during the run"

median() { printf '%s\n' "$@" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Swift client vs librdkafka, Petrel $("$PETREL_BIN" --version) ($PETREL_BUILD_CONFIG), $RECORDS x $SIZE B, $PARTITIONS partition(s), acks=1, linger.ms=5,"
echo "kcat 1.7.1 + $KCAT_VERSION, $(nproc) cores, median of $RUNS runs, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-10s %16s %16s %16s %10s\n' phase "swift rec/s" "librdkafka rec/s" "swift MB/s" "ratio"
for phase in produce consume; do
  s=(); l=()
  for ((run = 1; run <= RUNS; run++)); do s+=("${R[swift.$phase.$run]:-}"); l+=("${R[rdkafka.$phase.$run]:-}"); done
  ms=$(median "${s[@]}"); ml=$(median "${l[@]}")
  if [ -n "$ms" ] && [ -n "$ml" ]; then
    printf '%-10s %16s %16s %16s %10s\n' "$phase" "$(rps "$ms")" "$(rps "$ml")" \
      "$(awk -v n="$RECORDS" -v z="$SIZE" -v s="$ms" 'BEGIN { printf "%.1f", n * z / s / 1e6 }')" \
      "$(awk -v a="$ms" -v b="$ml" 'BEGIN { printf "%.2f", b / a }')"
  fi
  echo "  wall times (s): swift ${s[*]}; librdkafka ${l[*]}"
done
echo "(ratio = Swift records/s / librdkafka records/s; > 1: the Swift client is faster)"
echo "petrel perf produce, run 1 (measured inside the process; latency of every 100th record):"
sed 's/^/  /' "$WORK/swift-produce-1.out"
echo "petrel perf consume, run 1:"
sed 's/^/  /' "$WORK/swift-consume-1.out"
if [ $FAILED -ne 0 ]; then echo "bench: some phases FAILED (see above)" >&2; tail -n 30 "$WORK/broker.log"; exit 1; fi
exit 0
