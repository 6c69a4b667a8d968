#!/usr/bin/env python3
"""Cluster benchmarks: failover time, and throughput/latency of acks=all vs acks=1.  Prints figures;
no pass/fail on timings (exit status 1 only when a run could not be completed).

    scripts/cluster/bench.py failover --rounds 5
        kill -9 the leader of partition 0 of an RF=3 topic while an idempotent acks=all producer
        sends --rate records/s; failover = kill -> first acknowledgement of a record sent after the
        kill on that partition.  Restart, wait for the ISR, repeat.  Min/median/max over rounds.

    scripts/cluster/bench.py throughput --records 200000 --size 100
        on a 3-node cluster, RF=3, min.insync.replicas=2: as fast as the producer goes with
        acks=all, then acks=1; then acks=all at half the acks=all rate (latency at moderate load);
        then the same acks=all load on a 1-node cluster with RF=1 (the ratio the issue asks for).
        records/s, MB/s, produce latency p50/p99 (send -> delivery callback, client queueing
        included).  The client is confluent-kafka from Python: at high rates the client's own
        per-record work may be the limit, so compare rows, not absolute figures.

Both start their own clusters on free ports (command lines from scripts/interop/broker.sh) and
stop them at the end; every wait is bounded (--timeout per round / per run).
--override key=value goes to every node.  PETREL_BUILD_CONFIG=release for release figures
(scripts/interop/broker.sh builds petrel unless PETREL_BIN is set).
"""

from __future__ import annotations

import argparse
import signal
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, log, petrel_bin  # noqa: E402
from workload import NumberedProducer  # noqa: E402


class Timeout(Exception):
    pass


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q / 100 * len(v)))]


def failover(args) -> int:
    times: list[float] = []
    with Cluster(nodes=3, overrides=args.override, keep=args.keep) as c:
        try:
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            c.start()
            c.wait_formed(30)
            signal.setitimer(signal.ITIMER_REAL, 0)
            for n in range(1, args.rounds + 1):
                signal.setitimer(signal.ITIMER_REAL, args.timeout)
                topic = f"bench-failover-{n}-{int(time.time())}"
                for node in c.members.values():
                    if not node.alive:
                        node.start()
                c.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
                c.wait_isr(topic, timeout=60)
                p = NumberedProducer(c.bootstrap, topic, 1, rate=args.rate).start()
                try:
                    if not p.wait_acks(200, 20):
                        raise ClusterError(f"only {p.acked_count} acks before the kill")
                    victim = c.leader(topic, 0)
                    t = time.monotonic()
                    c.node(victim).kill9()
                    f = None
                    while f is None and time.monotonic() - t < 60:
                        time.sleep(0.02)
                        f = p.first_ack_after(t, [0])
                    new = c.leader(topic, 0, exclude={victim}, timeout=30)
                finally:
                    p.stop(flush_timeout=10)
                if f is None:
                    print(f"round {n}: no acknowledgement within 60 s after kill -9 of node {victim}", flush=True)
                    return 1
                times.append(f)
                print(f"round {n}: kill -9 of leader {victim} -> new leader {new}; failover {f:.3f} s", flush=True)
                c.node(victim).start()
                c.wait_isr(topic, timeout=60)
                signal.setitimer(signal.ITIMER_REAL, 0)
        except (ClusterError, Timeout) as e:
            print(f"failover bench aborted: {e}", flush=True)
            print(c.logs(60))
            return 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    print(f"\nfailover over {len(times)} rounds (kill -9 of the partition leader -> first acks=all "
          f"acknowledgement of a record sent after it): min {min(times):.3f} s, median "
          f"{statistics.median(times):.3f} s, max {max(times):.3f} s", flush=True)
    return 0


def produce_run(c: Cluster, label: str, topic: str, partitions: int, acks: str, records: int, size: int,
                rate: float, timeout: float) -> dict:
    p = NumberedProducer(c.bootstrap, topic, partitions, acks=acks, idempotence=(acks == "all"), rate=rate,
                         value_size=size, config={"linger.ms": 5, "batch.size": 1000000,
                                                  "queue.buffering.max.messages": 1000000,
                                                  "queue.buffering.max.kbytes": 1048576})
    # warm-up (metadata, connections, producer id): not measured
    warm = 100
    for i in range(warm * partitions):
        while not p.send(i % partitions):
            pass
    if p.producer.flush(30) or p.acked_count < warm * partitions:
        raise ClusterError(f"{label}: warm-up records not acknowledged within 30 s "
                           f"(errors: {dict(p.failure_kinds())})")
    start = time.monotonic()
    i = 0
    deadline = start + timeout
    # driven from this thread (no pacing thread) so that the send loop is as fast as possible
    while i < records and time.monotonic() < deadline:
        if rate > 0 and i >= rate * (time.monotonic() - start):
            p.producer.poll(0.0005)
            continue
        if p.send(i % partitions):
            i += 1
        if i % 1000 == 0:
            p.producer.poll(0)
    left = p.producer.flush(max(1.0, deadline - time.monotonic()))
    acks = [t for q in range(partitions) for t in p.ack_time[q].values() if t >= start]
    elapsed = max(acks) - start if acks else 0
    lat = p.latencies(from_seq=warm)
    acked = p.acked_count - warm * partitions
    failed = p.failed_count()
    p.stop(flush_timeout=1)
    row = {"run": label, "acks": acks, "records": acked, "failed": failed, "undelivered": left,
           "seconds": elapsed, "rec_s": acked / elapsed if elapsed else 0,
           "mb_s": acked * size / elapsed / 1e6 if elapsed else 0,
           "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
    print(f"{label}: {acked} records acked ({failed} failed, {left} undelivered) in {elapsed:.2f} s: "
          f"{row['rec_s']:,.0f} rec/s, {row['mb_s']:.1f} MB/s, latency p50 {row['p50_ms']:.2f} ms, "
          f"p99 {row['p99_ms']:.2f} ms", flush=True)
    return row


def throughput(args) -> int:
    rows = []
    try:
        with Cluster(nodes=3, overrides=args.override, keep=args.keep) as c:
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            c.start()
            c.wait_formed(30)
            for acks in ("all", "1"):
                topic = f"bench-acks-{acks}-{int(time.time())}"
                c.create_topic(topic, args.partitions, 3, {"min.insync.replicas": "2"})
                c.wait_isr(topic, timeout=60)
                rows.append(produce_run(c, f"3 nodes RF=3 acks={acks} max", topic, args.partitions, acks,
                                        args.records, args.size, 0, args.timeout / 4))
            half = rows[0]["rec_s"] / 2
            topic = f"bench-half-{int(time.time())}"
            c.create_topic(topic, args.partitions, 3, {"min.insync.replicas": "2"})
            c.wait_isr(topic, timeout=60)
            n = int(min(args.records, half * 10))  # about 10 s
            rows.append(produce_run(c, f"3 nodes RF=3 acks=all at {half:,.0f} rec/s", topic, args.partitions, "all",
                                    n, args.size, half, args.timeout / 4))
        if not args.no_single:
            with Cluster(nodes=1, overrides=args.override, keep=args.keep) as c:
                c.start()
                topic = f"bench-single-{int(time.time())}"
                c.create_topic(topic, args.partitions, 1)
                rows.append(produce_run(c, "1 node RF=1 acks=all max", topic, args.partitions, "all",
                                        args.records, args.size, 0, args.timeout / 4))
    except (ClusterError, Timeout) as e:
        print(f"throughput bench aborted: {e}", flush=True)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print(f"\n{args.records} records x {args.size} B, {args.partitions} partition(s), confluent-kafka "
          f"(linger.ms=5, batch.size=1000000)\n")
    print("| run | records/s | MB/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['rec_s']:,.0f} | {r['mb_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['failed'] + r['undelivered']} |")
    single = [r for r in rows if r["run"].startswith("1 node")]
    if single and rows[0]["rec_s"] and single[0]["rec_s"]:
        print(f"\nRF=3 acks=all / single node RF=1: {rows[0]['rec_s'] / single[0]['rec_s']:.2f}")
    print(flush=True)
    return 0


def main() -> int:
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("failover", help="failover time over rounds of kill -9 of the partition leader")
    f.add_argument("--rounds", type=int, default=5)
    f.add_argument("--rate", type=float, default=1000, help="records/s during the measurement (1000)")
    f.add_argument("--timeout", type=float, default=120, help="bound per round in seconds (120)")
    t = sub.add_parser("throughput", help="acks=all vs acks=1 records/s and latency; single node RF=1")
    t.add_argument("--records", type=int, default=200000)
    t.add_argument("--size", type=int, default=100, help="value bytes (100)")
    t.add_argument("--partitions", type=int, default=1)
    t.add_argument("--no-single", action="store_true", help="skip the 1-node RF=1 run")
    t.add_argument("--timeout", type=float, default=600, help="bound of the whole run in seconds (600)")
    for p in (f, t):
        p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args()

    def on_alarm(signum, frame):
        raise Timeout(f"exceeded --timeout {args.timeout:.0f}s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    log(f"petrel: {petrel_bin()}")
    return failover(args) if args.cmd == "failover" else throughput(args)


if __name__ == "__main__":
    sys.exit(main())
