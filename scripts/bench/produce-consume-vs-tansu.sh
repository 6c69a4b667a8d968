#!/usr/bin/env bash
# Produce/consume throughput and memory: Petrel (disk, temporary directory) vs Tansu 0.6.0
# (memory storage), same machine, same client (kcat 1.7.1 on librdkafka 2.16), same run.
#
#   scripts/bench/produce-consume-vs-tansu.sh                 # both brokers
#   scripts/bench/produce-consume-vs-tansu.sh --only tansu    # one broker (tansu|petrel)
#   scripts/bench/produce-consume-vs-tansu.sh --small 100000 --large 20000   # smaller run
#   scripts/bench/produce-consume-vs-tansu.sh --runs 5                       # median of 5 (3)
#
# --runs times, alternating brokers (tansu, petrel, tansu, ...; never both running), a fresh
# broker on a free 127.0.0.1 port and a fresh data directory, two 1-partition topics, then
#   1. produce --small records of 100 bytes     (acks=all, linger.ms=5, batch.size=1000000)
#   2. produce --large records of 1,000 bytes   (same settings)
#   3. consume the 100-byte topic from the beginning to its end
#   4. consume the 1,000-byte topic from the beginning to its end
# timing each phase (wall clock), checking every phase delivered exactly the expected records
# (count and last offset), and reading the broker's peak RSS (VmHWM) after each phase.
# Prints the median over the runs of each figure (per-run wall times below the table), with
# Petrel/Tansu ratios when both ran.  Exit status 1 if any phase of any run failed.
#
# Environment: PETREL_BIN (skip the build), PETREL_BUILD_CONFIG (default release here),
#   PETREL_SCRATCH_PATH, TANSU_BIN (see scripts/interop/broker.sh); BENCH_PHASE_TIMEOUT (s, 600);
#   BENCH_TMPDIR (where data and record files go, default $TMPDIR or /tmp).
# MB = 10^6 bytes of record values (keys: none, headers: none, compression: none).
# The consumer runs with fetch.wait.max.ms=50 (default 500): -e needs one fetch at the end of the
# log, which both brokers hold for fetch.wait.max.ms; 500 ms would be a fixed cost per phase.
# It also runs with fetch.queue.backoff.ms=10 (default 1000): when a broker delivers faster than
# kcat's output pipeline drains librdkafka's local queue (queued.min.messages), librdkafka stops
# fetching for fetch.queue.backoff.ms; with 1 s the faster broker is the one that gets paused
# (seen: Petrel 100-byte consume 0.47 s with 10 ms, 1.6-3.4 s with 1000 ms, same broker).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../interop/broker.sh
source "$HERE/../interop/broker.sh" || exit 1
unblock_signals_or_reexec "$0" "$@"
export PETREL_BUILD_CONFIG=${PETREL_BUILD_CONFIG:-release}

BROKERS=(tansu petrel)
SMALL=1000000
LARGE=200000
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --only) BROKERS=("$2"); shift 2 ;;
    --small) SMALL=$2; shift 2 ;;
    --large) LARGE=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for b in "${BROKERS[@]}"; do
  case "$b" in tansu|petrel) ;; *) echo "--only takes tansu or petrel" >&2; exit 2 ;; esac
done
PHASE_TIMEOUT=${BENCH_PHASE_TIMEOUT:-600}

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/petrel-bench.XXXXXX")
BROKER_PID=
cleanup() {
  if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID" 10 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "bench: FAIL: $*" >&2; FAILED=1; }
FAILED=0

# --- kcat with librdkafka 2.16 from the confluent-kafka wheel ---------------------------------
use_wheel_librdkafka "$WORK" || exit 1
case "$KCAT_VERSION" in "librdkafka 2.16"*) ;; *) echo "bench: kcat loads $KCAT_VERSION, expected 2.16" >&2; exit 1 ;; esac

# --- record files ----------------------------------------------------------------------------
echo "bench: generating $SMALL x 100 B and $LARGE x 1000 B records in $WORK"
python3 - "$WORK" "$SMALL" "$LARGE" <<'EOF' || exit 1
import sys
work, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
filler = bytes(ord("a") + (i * 7) % 26 for i in range(4096))
for name, count, size in (("small", small, 100), ("large", large, 1000)):
    with open(f"{work}/{name}.txt", "wb", buffering=1 << 22) as f:
        for i in range(count):
            head = b"%012d:" % i
            f.write(head + filler[i % 1024:i % 1024 + size - len(head)] + b"\n")
EOF

if [[ " ${BROKERS[*]} " == *" petrel "* ]] && [ -z "${PETREL_BIN:-}" ]; then
  echo "bench: building petrel ($PETREL_BUILD_CONFIG)"
  PETREL_BIN=$(petrel_bin) || { echo "bench: petrel build failed" >&2; exit 1; }
  export PETREL_BIN
fi

declare -A R  # R[broker.phase.metric]

now() { echo "$EPOCHREALTIME"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.0f", kb / 1024 }'; }

create_topic() {  # create_topic BOOTSTRAP TOPIC
  timeout 60 python3 - "$1" "$2" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
b, t = sys.argv[1], sys.argv[2]
a = AdminClient({"bootstrap.servers": b})
a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)], request_timeout=15)[t].result(20)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    md = a.list_topics(topic=t, timeout=5).topics.get(t)
    if md is not None and md.error is None and len(md.partitions) == 1 and md.partitions[0].leader >= 0:
        sys.exit(0)
    time.sleep(0.2)
sys.exit(f"topic {t} not ready")
EOF
}

produce_phase() {  # produce_phase BROKER NAME BOOTSTRAP TOPIC FILE COUNT SIZE
  local broker=$1 name=$2 b=$3 topic=$4 file=$5 count=$6 size=$7 t0 t1 rc=0
  t0=$(now)
  timeout -k 5 "$PHASE_TIMEOUT" env LD_LIBRARY_PATH="$WORK/lib" kcat -P -b "$b" -t "$topic" \
    -X acks=all -X linger.ms=5 -X batch.size=1000000 -l "$file" 2>"$WORK/$broker.$name.err" || rc=$?
  t1=$(now)
  record_phase "$broker" "$name" "$t0" "$t1" "$count" "$size"
  if [ $rc -ne 0 ] || grep -qi "delivery failed" "$WORK/$broker.$name.err"; then
    fail "$broker $name: kcat exited $rc: $(tail -c 600 "$WORK/$broker.$name.err")"
  fi
}

consume_phase() {  # consume_phase BROKER NAME BOOTSTRAP TOPIC COUNT SIZE
  local broker=$1 name=$2 b=$3 topic=$4 count=$5 size=$6 t0 t1 rc=0 out got last bytes
  t0=$(now)
  out=$(timeout -k 5 "$PHASE_TIMEOUT" env LD_LIBRARY_PATH="$WORK/lib" kcat -C -b "$b" -t "$topic" -p 0 \
    -o beginning -e -q -X fetch.wait.max.ms=50 -X fetch.queue.backoff.ms=10 -f '%o %S\n' 2>"$WORK/$broker.$name.err" |
    awk '{ n++; bytes += $2; last = $1 } END { printf "%d %d %d", n, last, bytes }') || rc=$?
  t1=$(now)
  record_phase "$broker" "$name" "$t0" "$t1" "$count" "$size"
  read -r got last bytes <<<"$out"
  if [ $rc -ne 0 ] || [ "${got:-0}" -ne "$count" ] || [ "${last:-0}" -ne $((count - 1)) ] || [ "${bytes:-0}" -ne $((count * size)) ]; then
    fail "$broker $name: expected $count records (offsets 0..$((count - 1)), $((count * size)) bytes), got ${got:-0} (last offset ${last:--}, ${bytes:-0} bytes), exit $rc: $(tail -c 600 "$WORK/$broker.$name.err")"
  fi
}

record_phase() {  # record_phase KEY NAME T0 T1 COUNT SIZE   (KEY = broker.run)
  local secs
  secs=$(awk -v a="$3" -v b="$4" 'BEGIN { printf "%.3f", b - a }')
  R[$1.$2.secs]=$secs
  R[$1.$2.rss]=$(mb "$(peak_rss_kb "$BROKER_PID")")
  echo "bench: $1 $2: ${secs}s, $(awk -v n="$5" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') records/s, peak RSS ${R[$1.$2.rss]} MiB"
}

run_broker() {  # run_broker BROKER RUN
  local broker=$1 key="$1.$2" port data b
  port=$(free_port)
  data="$WORK/$key-data"
  mkdir -p "$data"
  broker_argv "$broker" "$port" "$data" || { fail "$broker: no command line"; return; }
  echo "bench: run $2: starting $broker: ${BROKER_ARGV[*]}"
  "${BROKER_ARGV[@]}" >"$WORK/$key.log" 2>&1 &
  BROKER_PID=$!
  if ! wait_port "$port" 60 "$BROKER_PID"; then
    fail "$broker did not start"; tail -n 50 "$WORK/$key.log"; BROKER_PID=; return
  fi
  b="127.0.0.1:$port"
  R[$key.start.rss]=$(mb "$(peak_rss_kb "$BROKER_PID")")
  create_topic "$b" bench-100b && create_topic "$b" bench-1000b || { fail "$broker: topic creation failed"; }
  R[$broker.version]=$("${BROKER_ARGV[0]}" --version 2>/dev/null | head -1)
  produce_phase "$key" produce-100b "$b" bench-100b "$WORK/small.txt" "$SMALL" 100
  produce_phase "$key" produce-1000b "$b" bench-1000b "$WORK/large.txt" "$LARGE" 1000
  consume_phase "$key" consume-100b "$b" bench-100b "$SMALL" 100
  consume_phase "$key" consume-1000b "$b" bench-1000b "$LARGE" 1000
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then fail "$broker died during the run"; fi
  [ "$broker" = petrel ] && R[$key.disk]=$(du -sm "$data" 2>/dev/null | cut -f1)
  stop_pid "$BROKER_PID" 10 || true
  BROKER_PID=
  if [ $FAILED -ne 0 ]; then echo "----- $broker log (last 50 lines)"; tail -n 50 "$WORK/$key.log" | sed 's/\x1b\[[0-9;]*m//g'; fi
  rm -rf "$data"
}

for ((run = 1; run <= RUNS; run++)); do
  for broker in "${BROKERS[@]}"; do run_broker "$broker" "$run"; done
done

# --- medians ---------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for broker in "${BROKERS[@]}"; do
  for metric in start.rss disk; do
    vals=(); for ((run = 1; run <= RUNS; run++)); do vals+=("${R[$broker.$run.$metric]:-}"); done
    R[$broker.$metric]=$(median "${vals[@]}")
  done
  for phase in produce-100b produce-1000b consume-100b consume-1000b; do
    case $phase in *-100b) count=$SMALL size=100 ;; *) count=$LARGE size=1000 ;; esac
    secs=(); rss=(); for ((run = 1; run <= RUNS; run++)); do secs+=("${R[$broker.$run.$phase.secs]:-}"); rss+=("${R[$broker.$run.$phase.rss]:-}"); done
    m=$(median "${secs[@]}")
    R[$broker.$phase.allsecs]="${secs[*]}"
    R[$broker.$phase.rss]=$(median "${rss[@]}")
    if [ -n "$m" ]; then
      R[$broker.$phase.secs]=$(awk -v s="$m" 'BEGIN { printf "%.3f", s }')
      R[$broker.$phase.rps]=$(awk -v n="$count" -v s="$m" 'BEGIN { printf "%.0f", n / s }')
      R[$broker.$phase.mbps]=$(awk -v n="$count" -v z="$size" -v s="$m" 'BEGIN { printf "%.1f", n * z / s / 1e6 }')
    fi
  done
done

# --- table -----------------------------------------------------------------------------------
both=0; [ ${#BROKERS[@]} -eq 2 ] && both=1
ratio() { awk -v p="$1" -v t="$2" 'BEGIN { if (p == "" || t == "" || t + 0 == 0) print "-"; else printf "%.2f", p / t }'; }
echo
echo "Produce/consume, 1 partition, acks=all, kcat 1.7.1 + $KCAT_VERSION, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "median of $RUNS runs; tansu: ${R[tansu.version]:-not run} (memory storage); petrel: ${R[petrel.version]:-not run} (${PETREL_BUILD_CONFIG} build, log.dirs on $(df -P "$WORK" | awk 'NR == 2 { print $1 }'))"
printf '%-34s' "phase / metric"
for broker in "${BROKERS[@]}"; do printf '%16s' "$broker"; done
[ $both = 1 ] && printf '%16s' "petrel/tansu"
echo
row() {  # row LABEL KEY
  printf '%-34s' "$1"
  for broker in "${BROKERS[@]}"; do printf '%16s' "${R[$broker.$2]:--}"; done
  [ $both = 1 ] && printf '%16s' "$(ratio "${R[petrel.$2]:-}" "${R[tansu.$2]:-}")"
  echo
}
row "peak RSS after start (MiB)" start.rss
for phase in produce-100b produce-1000b consume-100b consume-1000b; do
  case $phase in
    produce-100b) label="produce $SMALL x 100 B" ;;
    produce-1000b) label="produce $LARGE x 1000 B" ;;
    consume-100b) label="consume $SMALL x 100 B" ;;
    consume-1000b) label="consume $LARGE x 1000 B" ;;
  esac
  echo "$label"
  row "  wall time (s)" "$phase.secs"
  row "  records/s" "$phase.rps"
  row "  MB/s" "$phase.mbps"
  row "  peak RSS after phase (MiB)" "$phase.rss"
done
[[ " ${BROKERS[*]} " == *" petrel "* ]] && row "data directory after the run (MiB)" disk
[ $both = 1 ] && echo "(ratio > 1: Petrel is faster for records/s and MB/s, slower for wall time, uses more memory for RSS)"
echo "wall times per run (s):"
for broker in "${BROKERS[@]}"; do
  for phase in produce-100b produce-1000b consume-100b consume-1000b; do
    printf '  %-8s %-14s %s\n' "$broker" "$phase" "${R[$broker.$phase.allsecs]:-}"
  done
done
if [ $FAILED -ne 0 ]; then echo "bench: some phases FAILED (see above)" >&2; exit 1; fi
exit 0
