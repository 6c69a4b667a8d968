#!/usr/bin/env python3
"""Cluster benchmarks: failover time, and throughput/latency of acks=all vs acks=1.  Prints figures;
no pass/fail on timings (exit status 1 only when a run could not be completed).

    scripts/cluster/bench.py failover --rounds 5
        kill -9 the leader of partition 0 of an RF=3 topic while an idempotent acks=all producer
        sends --rate records/s; failover = kill -> first acknowledgement of a record sent after the
        kill on that partition.  Restart, wait for the ISR, repeat.  Min/median/max over rounds.

    scripts/cluster/bench.py latency --rates 100000,500000,1000000 --linger-ms 5
        `petrel perf produce` (acks=all, every 10th record timed) at each rate in turn on one fresh
        RF=3 topic of a fresh 3-node cluster: reached rate, p50/p99 per rate.

    scripts/cluster/bench.py formation --rounds 5
        start a fresh 3-node cluster --rounds times: seconds until every node lists all three
        brokers and an active controller (min/median/max).

    scripts/cluster/bench.py throughput --records 200000 --size 100
        on a 3-node cluster, RF=3, min.insync.replicas=2: kcat (librdkafka 2.16 from the
        confluent-kafka wheel, as scripts/bench/*.sh) writes --records records as fast as it goes
        with acks=all, then acks=1 (records/s, MB/s; the count checked against the high
        watermark); then a confluent-kafka producer paced at half the acks=all rate gives the
        produce latency p50/p99 (send -> delivery callback), and `petrel perf produce` (the Swift client,
        which keeps up at rates Python cannot) at the same rate; then the acks=all kcat run on a 1-node
        cluster with RF=1 and the ratio (the paced petrel perf run uses --latency-linger-ms, default 5);
        then the same kcat run against Tansu 0.6.0 (one node, its
        memory storage: the peer broker) and the ratios.  --client python uses confluent-kafka for the max runs
        too (then Python's per-record work is usually the limit).

Both start their own clusters on free ports (command lines from scripts/interop/broker.sh) and
stop them at the end; every wait is bounded (--timeout per round / per run).
--override key=value goes to every node.  PETREL_BUILD_CONFIG=release for release figures
(scripts/interop/broker.sh builds petrel unless PETREL_BIN is set).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, accepts, free_base_ports, log, petrel_bin  # noqa: E402
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


def kcat_env() -> dict:
    """kcat with librdkafka 2.16 from the confluent-kafka wheel, as scripts/bench/*.sh run it."""
    import glob
    import confluent_kafka
    d = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    libs = sorted(glob.glob(d + "/confluent_kafka.libs/librdkafka*.so*"))
    env = dict(os.environ)
    if libs:
        libdir = tempfile.mkdtemp(prefix="petrel-bench-lib.")
        atexit.register(shutil.rmtree, libdir, True)
        os.symlink(libs[0], os.path.join(libdir, "librdkafka.so.1"))
        env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def record_file(records: int, size: int) -> str:
    fd, path = tempfile.mkstemp(prefix="petrel-bench-records.", suffix=".txt")
    filler = bytes(ord("a") + (i * 7) % 26 for i in range(4096))
    with os.fdopen(fd, "wb", buffering=1 << 22) as f:
        for i in range(records):
            head = b"%012d:" % i
            f.write(head + filler[i % 1024:i % 1024 + size - len(head)] + b"\n")
    return path


def high_watermark(bootstrap: str, topic: str, partitions: int) -> int:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "petrel-bench", "log_level": 2})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions))
    finally:
        c.close()


def kcat_run(c: Cluster, label: str, topic: str, partitions: int, acks: str, path: str, records: int, size: int,
             timeout: float, env: dict) -> dict:
    t0 = time.monotonic()
    out = subprocess.run(["kcat", "-P", "-b", c.bootstrap, "-t", topic, "-X", f"acks={acks}", "-X", "linger.ms=5",
                          "-X", "batch.size=1000000", "-l", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    elapsed = time.monotonic() - t0
    failed = out.returncode != 0 or "delivery failed" in out.stderr.lower()
    written = high_watermark(c.bootstrap, topic, partitions)
    deadline = time.monotonic() + 15
    while written < records and time.monotonic() < deadline:  # acks=1: followers may still be catching up
        time.sleep(0.2)
        written = high_watermark(c.bootstrap, topic, partitions)
    row = {"run": label, "client": "kcat", "records": written, "failed": 0 if written >= records else records - written,
           "undelivered": 0, "seconds": elapsed, "rec_s": written / elapsed, "mb_s": written * size / elapsed / 1e6,
           "p50_ms": float("nan"), "p99_ms": float("nan")}
    print(f"{label}: kcat wrote {written} of {records} records in {elapsed:.2f} s: {row['rec_s']:,.0f} rec/s, "
          f"{row['mb_s']:.1f} MB/s" + (f"; kcat exited {out.returncode}: {out.stderr[-300:]}" if failed else ""),
          flush=True)
    return row


class Tansu:
    """Tansu 0.6.0 (the peer broker), one node, memory storage, started with scripts/interop/broker.sh's
    command line; stopped on exit."""

    def __init__(self):
        port, _ = free_base_ports(1)
        self.bootstrap = f"127.0.0.1:{port}"
        self.dir = tempfile.mkdtemp(prefix="petrel-bench-tansu.")
        here = os.path.dirname(os.path.abspath(__file__))
        argv = subprocess.run(["bash", os.path.join(here, "..", "interop", "broker.sh"), "argv", "tansu", str(port), self.dir],
                              check=True, capture_output=True, text=True).stdout.splitlines()
        self.log = open(os.path.join(self.dir, "tansu.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not accepts(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise ClusterError(f"tansu did not start (see {self.dir}/tansu.log)")
            time.sleep(0.1)

    def create_topic(self, topic: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def perf_run(c: Cluster, label: str, topic: str, acks: str, records: int, size: int, rate: float, timeout: float,
             linger_ms: int = 5) -> dict:
    """The Swift client (`petrel perf produce`, HdrHistogram) at a fixed rate: records/s and the
    latency from send to acknowledgement, every 10th record timed."""
    argv = [petrel_bin(), "perf", "produce", "--bootstrap-server", c.bootstrap, "--topic", topic,
            "--num-records", str(records), "--record-size", str(size), "--throughput", f"{rate:.0f}",
            "--latency-every", "10", "--report-interval-ms", "0", "--producer-props", f"acks={acks}", f"linger.ms={linger_ms}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    row = {"run": label, "client": "petrel perf", "records": records, "failed": 0 if out.returncode == 0 else records,
           "undelivered": 0, "seconds": float("nan"), "rec_s": 0.0, "mb_s": 0.0, "p50_ms": float("nan"),
           "p99_ms": float("nan")}
    import re
    m = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\).*?([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th", out.stdout)
    if m:
        row.update(rec_s=float(m.group(1)), mb_s=float(m.group(2)), p50_ms=float(m.group(3)), p99_ms=float(m.group(4)))
    print(f"{label}: " + (out.stdout.strip().splitlines()[0] if out.stdout.strip() else f"petrel perf failed: {out.stderr[-300:]}"),
          flush=True)
    return row


def new_topic(c: Cluster, name: str, partitions: int, rf: int) -> str:
    topic = f"bench-{name}-{int(time.time() * 1000) % 10**8}"
    c.create_topic(topic, partitions, rf, {"min.insync.replicas": str(min(2, rf))})
    c.wait_isr(topic, timeout=60)
    return topic


def throughput(args) -> int:
    rows = []
    use_kcat = args.client == "kcat"
    env = kcat_env() if use_kcat else {}
    path = record_file(args.records, args.size) if use_kcat else ""
    try:
        def max_run(c, label, acks, rf):
            topic = new_topic(c, f"acks{acks}-rf{rf}", args.partitions, rf)
            if use_kcat:
                return kcat_run(c, label, topic, args.partitions, acks, path, args.records, args.size,
                                args.timeout / 4, env)
            return produce_run(c, label, topic, args.partitions, acks, args.records, args.size, 0, args.timeout / 4)

        with Cluster(nodes=3, overrides=args.override, keep=args.keep) as c:
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            c.start()
            c.wait_formed(30)
            rows.append(max_run(c, "3 nodes RF=3 acks=all max", "all", 3))
            rows.append(max_run(c, "3 nodes RF=3 acks=1 max", "1", 3))
            half = rows[0]["rec_s"] / 2
            topic = new_topic(c, "half", args.partitions, 3)
            n = int(min(args.records, half * 10))  # about 10 s
            rows.append(produce_run(c, f"3 nodes RF=3 acks=all paced at {half:,.0f} rec/s (half of max)", topic,
                                    args.partitions, "all", n, args.size, half, args.timeout / 4))
            topic = new_topic(c, "half-swift", args.partitions, 3)
            rows.append(perf_run(c, f"3 nodes RF=3 acks=all paced at {half:,.0f} rec/s (half of max), petrel perf linger.ms={args.latency_linger_ms}",
                                 topic, "all", n, args.size, half, args.timeout / 4, args.latency_linger_ms))
        if not args.no_single:
            with Cluster(nodes=1, overrides=args.override, keep=args.keep) as c:
                c.start()
                rows.append(max_run(c, "1 node RF=1 acks=all max", "all", 1))
        if not args.no_tansu and use_kcat:
            with Tansu() as t:
                topic = f"bench-tansu-{int(time.time() * 1000) % 10**8}"
                t.create_topic(topic, args.partitions)
                rows.append(kcat_run(t, "Tansu 0.6.0 1 node (memory storage) acks=all max", topic, args.partitions, "all",
                                     path, args.records, args.size, args.timeout / 4, env))
    except (ClusterError, Timeout, subprocess.TimeoutExpired) as e:
        print(f"throughput bench aborted: {e}", flush=True)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if path:
            os.unlink(path)
    print(f"\n{args.records} records x {args.size} B, {args.partitions} partition(s); max runs with "
          f"{'kcat' if use_kcat else 'confluent-kafka'} (linger.ms=5, batch.size=1000000); the paced run and "
          f"latencies (send -> delivery callback) with confluent-kafka\n")
    print("| run | records/s | MB/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        lat = "-" if r["p50_ms"] != r["p50_ms"] else f"{r['p50_ms']:.2f}"
        lat99 = "-" if r["p99_ms"] != r["p99_ms"] else f"{r['p99_ms']:.2f}"
        print(f"| {r['run']} | {r['rec_s']:,.0f} | {r['mb_s']:.1f} | {lat} | {lat99} | "
              f"{r['failed'] + r['undelivered']} |")
    single = [r for r in rows if r["run"].startswith("1 node")]
    if single and rows[0]["rec_s"] and single[0]["rec_s"]:
        print(f"\nRF=3 acks=all / single node RF=1: {rows[0]['rec_s'] / single[0]['rec_s']:.2f}")
    tansu = [r for r in rows if r["run"].startswith("Tansu")]
    if tansu and tansu[0]["rec_s"]:
        print(f"Petrel 3 nodes RF=3 acks=all / Tansu 1 node: {rows[0]['rec_s'] / tansu[0]['rec_s']:.2f}")
        if single and single[0]["rec_s"]:
            print(f"Petrel 1 node RF=1 acks=all / Tansu 1 node: {single[0]['rec_s'] / tansu[0]['rec_s']:.2f}")
    paced = rows[2]
    if paced["rec_s"] < 0.9 * rows[0]["rec_s"] / 2:
        print(f"note: the paced run reached {paced['rec_s']:,.0f} rec/s, below half of the max: the Python "
              f"client is the limit there")
    print(flush=True)
    return 0


def formation(args) -> int:
    """Start a fresh 3-node cluster --rounds times; seconds until every node lists all three
    brokers and an active controller."""
    times, failed = [], 0
    for i in range(args.rounds):
        with Cluster(nodes=3, overrides=args.override, keep=args.keep) as c:
            c.start()
            try:
                t = c.wait_formed(args.timeout)
                times.append(t)
                print(f"round {i + 1}: formed in {t:.2f} s", flush=True)
            except ClusterError as e:
                failed += 1
                print(f"round {i + 1}: did not form within {args.timeout:.0f} s: {str(e)[:300]}", flush=True)
    if times:
        print(f"\nformation over {len(times)} round(s): min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s; {failed} round(s) did not form", flush=True)
    return 1 if failed else 0


def latency(args) -> int:
    """`petrel perf produce` at each of --rates on one fresh RF=3 topic of a fresh 3-node cluster,
    acks=all, every 10th record timed: p50/p99/max per rate (runs in the order given; the first
    run also pays for the topic's and the client's first seconds)."""
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    rows = []
    with Cluster(nodes=3, overrides=args.override, keep=args.keep) as c:
        c.start()
        c.wait_formed(30)
        topic = new_topic(c, "latency", args.partitions, 3)
        for rate in rates:
            n = int(max(200_000, rate * args.seconds))
            row = perf_run(c, f"acks=all paced at {rate:,.0f} rec/s, linger.ms={args.linger_ms}", topic, "all", n, args.size,
                           rate, args.timeout, args.linger_ms)
            rows.append(row)
    print()
    print(f"3 nodes, RF=3, min.insync.replicas=2, acks=all, {args.size} B records, {args.partitions} partition(s), "
          f"petrel perf (Swift client), linger.ms={args.linger_ms}; latency = send -> acknowledgement")
    print()
    print("| target rate | reached rec/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for rate, r in zip(rates, rows):
        print(f"| {rate:,.0f} | {r['rec_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    return 0 if all(r["failed"] == 0 for r in rows) else 1


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
    t.add_argument("--latency-linger-ms", type=int, default=5,
                   help="linger.ms of the paced petrel perf run (default 5, as the max runs)")
    t.add_argument("--size", type=int, default=100, help="value bytes (100)")
    t.add_argument("--partitions", type=int, default=1)
    t.add_argument("--no-single", action="store_true", help="skip the 1-node RF=1 run")
    t.add_argument("--no-tansu", action="store_true", help="skip the Tansu 0.6.0 run (the peer broker, kcat client)")
    t.add_argument("--client", choices=["kcat", "python"], default="kcat" if shutil.which("kcat") else "python",
                   help="client of the max-rate runs (kcat when installed)")
    t.add_argument("--timeout", type=float, default=600, help="bound of the whole run in seconds (600)")
    fo = sub.add_parser("formation", help="seconds from start to a formed cluster, over fresh clusters")
    fo.add_argument("--rounds", type=int, default=5)
    fo.add_argument("--timeout", type=float, default=30, help="bound per round in seconds (30)")
    la = sub.add_parser("latency", help="acks=all produce latency p50/p99 at given rates (petrel perf)")
    la.add_argument("--rates", default="100000,250000,500000,750000,1000000", help="records/s, comma-separated")
    la.add_argument("--seconds", type=float, default=4, help="seconds per rate (4)")
    la.add_argument("--linger-ms", type=int, default=5)
    la.add_argument("--size", type=int, default=100, help="value bytes (100)")
    la.add_argument("--partitions", type=int, default=1)
    la.add_argument("--timeout", type=float, default=120, help="bound per rate in seconds (120)")
    for p in (f, t, fo, la):
        p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args()

    def on_alarm(signum, frame):
        raise Timeout(f"exceeded --timeout {args.timeout:.0f}s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    log(f"petrel: {petrel_bin()}")
    if args.cmd == "formation":
        return formation(args)
    if args.cmd == "latency":
        return latency(args)
    return failover(args) if args.cmd == "failover" else throughput(args)


if __name__ == "__main__":
    sys.exit(main())
