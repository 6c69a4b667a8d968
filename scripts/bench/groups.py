#!/usr/bin/env python3
"""Consumer-group benchmark, Petrel vs Tansu 0.6.0 in the same run (a command, not a test).

    scripts/bench/groups.py                 # both brokers
    scripts/bench/groups.py --only petrel   # one broker (petrel | tansu)

For each broker, started fresh on a free 127.0.0.1 port (scripts/interop/broker.sh):
  1. rebalance: 4 confluent-kafka consumers in one group over a 4-partition topic reach a stable
     assignment; a 5th joins; the time until all 5 have been assigned again (eager protocol,
     heartbeat.interval.ms=500 so that the clients' own wait is small and equal for both).
  2. commits: --committers consumers of one group, one partition each, commit synchronously in a
     loop for --seconds; prints commits per second.  --client python (default): confluent-kafka,
     one thread each; --client c: scripts/bench/commit_bench.c, librdkafka from C, one thread
     each (compiled here with cc and Debian's librdkafka-dev), so the client is not the limit.
Bounded: every wait has a timeout; brokers are stopped at the end (TERM, then KILL).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_SH = os.path.join(HERE, "..", "interop", "broker.sh")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(kind: str):
    port = free_port()
    data = tempfile.mkdtemp(prefix=f"petrel-groups-bench-{kind}-")
    argv = subprocess.check_output(["bash", BROKER_SH, "argv", kind, str(port), data], text=True).splitlines()
    if kind == "petrel":
        argv += ["--override", "group.initial.rebalance.delay.ms=0"]
    log = open(os.path.join(data, "broker.log"), "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            return proc, bootstrap
        except Exception:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"{kind} did not start; see {data}/broker.log")


def stop_broker(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def create_topic(bootstrap: str, partitions: int) -> str:
    topic = f"groups-bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(400):
        producer.produce(topic, value=b"x" * 100, partition=i % partitions)
    producer.flush(30)
    return topic


class Member(threading.Thread):
    def __init__(self, bootstrap, group, topic, extra=None):
        super().__init__(daemon=True)
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "heartbeat.interval.ms": 500, "session.timeout.ms": 10000,
                "max.poll.interval.ms": 60000}
        conf.update(extra or {})
        self.consumer = Consumer(conf)
        self.topic = topic
        self.assigned = []
        self.assigned_at = None
        self.stop = threading.Event()

    def on_assign(self, consumer, partitions):
        self.assigned = [p.partition for p in partitions]
        self.assigned_at = time.monotonic()

    def on_revoke(self, consumer, partitions):
        self.assigned = []

    def run(self):
        self.consumer.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while not self.stop.is_set():
            self.consumer.poll(0.05)
        self.consumer.close()


def stable(members, partitions):
    owned = [p for m in members for p in m.assigned]
    return sorted(owned) == list(range(partitions)) and all(m.assigned_at for m in members)


def rebalance_time(bootstrap: str) -> float:
    topic = create_topic(bootstrap, 4)
    group = f"bench-{uuid.uuid4().hex[:8]}"
    members = [Member(bootstrap, group, topic) for _ in range(4)]
    for m in members:
        m.start()
    deadline = time.monotonic() + 60
    while not (stable(members, 4) and all(m.assigned for m in members)):
        if time.monotonic() > deadline:
            raise SystemExit("the first 4 members never reached a stable assignment")
        time.sleep(0.01)
    time.sleep(1.0)
    fifth = Member(bootstrap, group, topic)
    t0 = time.monotonic()
    fifth.start()
    everyone = members + [fifth]
    deadline = t0 + 60
    while not (stable(everyone, 4) and all(m.assigned_at and m.assigned_at > t0 for m in everyone)):
        if time.monotonic() > deadline:
            raise SystemExit("the group never rebalanced to 5 members")
        time.sleep(0.005)
    elapsed = max(m.assigned_at for m in everyone) - t0
    for m in everyone:
        m.stop.set()
    for m in everyone:
        m.join(15)
    return elapsed


def commit_bench_binary() -> str:
    out = os.path.join(tempfile.mkdtemp(prefix="petrel-commit-bench-"), "commit_bench")
    subprocess.run(["cc", "-O2", "-o", out, os.path.join(HERE, "commit_bench.c"), "-lrdkafka", "-lpthread"], check=True)
    return out


def wheel_librdkafka_env() -> dict:
    """The newer librdkafka inside the confluent-kafka wheel (the one the Python clients use;
    Debian's 2.0.2 never finds Tansu's coordinator), through LD_LIBRARY_PATH: same ABI."""
    import glob
    import confluent_kafka
    env = dict(os.environ)
    site = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    libs = sorted(glob.glob(site + "/confluent_kafka.libs/librdkafka*.so*"))
    if libs:
        libdir = tempfile.mkdtemp(prefix="petrel-commit-bench-lib-")
        os.symlink(libs[0], os.path.join(libdir, "librdkafka.so.1"))
        env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def commit_rate_c(binary: str, bootstrap: str, seconds: float, committers: int) -> float:
    topic = create_topic(bootstrap, committers)
    group = f"bench-commit-{uuid.uuid4().hex[:8]}"
    out = subprocess.run([binary, bootstrap, topic, group, str(committers), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 120, env=wheel_librdkafka_env())
    print(f"groups-bench: commit_bench: {out.stdout.strip()} {out.stderr.strip()[-300:]}", flush=True)
    return float(out.stdout.split()[0]) if out.stdout.strip() else 0.0


def commit_rate(bootstrap: str, seconds: float, committers: int = 4) -> float:
    topic = create_topic(bootstrap, committers)
    group = f"bench-commit-{uuid.uuid4().hex[:8]}"
    counts = [0] * committers
    start = threading.Barrier(committers)

    def worker(i):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        c.assign([TopicPartition(topic, i, 0)])
        start.wait()
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            c.commit(offsets=[TopicPartition(topic, i, n + 1)], asynchronous=False)
            n += 1
        counts[i] = n
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(committers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return sum(counts) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["petrel", "tansu"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--committers", type=int, default=8, help="consumers committing synchronously, one thread each")
    parser.add_argument("--client", choices=["python", "c"], default="python",
                        help="the committers: confluent-kafka threads (python) or librdkafka from C (c)")
    args = parser.parse_args()
    binary = commit_bench_binary() if args.client == "c" else None
    kinds = [args.only] if args.only else ["tansu", "petrel"]
    results = {}
    for kind in kinds:
        proc, bootstrap = start_broker(kind)
        try:
            times = sorted(rebalance_time(bootstrap) for _ in range(args.runs))
            rate = (commit_rate_c(binary, bootstrap, args.seconds, args.committers) if binary
                    else commit_rate(bootstrap, args.seconds, args.committers))
            results[kind] = (times[len(times) // 2], times, rate)
            print(f"groups-bench: {kind}: rebalance to 5 members {times[len(times)//2]:.3f} s (runs {', '.join(f'{t:.3f}' for t in times)}), "
                  f"{rate:,.0f} synchronous commits/s from {args.committers} consumers", flush=True)
        finally:
            stop_broker(proc)
    if len(results) == 2:
        t, p = results["tansu"], results["petrel"]
        print(f"groups-bench: rebalance petrel/tansu time ratio {p[0] / t[0]:.2f} (lower is better); "
              f"commits petrel/tansu {p[2] / max(t[2], 1):.2f}")


if __name__ == "__main__":
    main()
