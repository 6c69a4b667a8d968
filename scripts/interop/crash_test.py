#!/usr/bin/env python3
"""Crash test: no acknowledged acks=all write is lost when the broker is killed with SIGKILL.

    scripts/interop/crash_test.py                 # petrel (built unless PETREL_BIN is set)
    scripts/interop/crash_test.py --seconds 3 --max-acks 20000
    scripts/interop/crash_test.py --broker tansu --no-kill   # self-check of the harness
    scripts/interop/crash_test.py --self-test                # the verifier on synthetic logs

1. Start petrel with `log.flush.interval.messages=1` on a temporary data directory (command line
   from scripts/interop/broker.sh) and create a 1-partition topic.
2. An idempotent confluent-kafka producer (acks=all) sends records numbered 0, 1, 2, ...
   (key = the number, value derived from it) and records every acknowledged (number, offset).
3. After --seconds or --max-acks acknowledgements, SIGKILL the broker.  Acknowledgements the
   client receives after that point were still sent by the broker before it died and count too.
4. Restart the broker on the same data directory and port, read the whole partition and check:
   - every acknowledged record is present at exactly its acknowledged offset, same key and value;
   - the log has no hole and no duplicate: the record at offset o is number o for every offset
     (the producer is the only writer and sends in order), up to the end of the log, which is at
     least the highest acknowledged offset + 1;
   - a new producer appends after the recovered end (offsets continue, nothing overwritten).
Everything is bounded (--timeout, default 120 s).  Exit status 0 = pass.

--no-kill skips the crash and restart (checks the harness against any broker); against Tansu's
memory storage the full test must FAIL (everything is lost), which checks the detection.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_SH = os.path.join(HERE, "broker.sh")
TOPIC = "crash-test"


class Failure(Exception):
    pass


class Timeout(Exception):
    pass


def log(msg: str) -> None:
    print(f"crash_test: {msg}", flush=True)


def value_for(seq: int) -> bytes:
    return f"crash-record-{seq:08d}|".encode() + bytes((seq * 7 + i) % 251 for i in range(64 + seq % 64))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"broker exited with status {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise Failure(f"broker not listening on 127.0.0.1:{port} after {timeout:.0f}s "
                  "(after a restart: is SO_REUSEADDR set on the listener?)")


class Broker:
    def __init__(self, kind: str, port: int, datadir: str, logdir: str, overrides: list[str]):
        self.kind, self.port, self.datadir, self.logdir, self.overrides = kind, port, datadir, logdir, overrides
        self.proc: subprocess.Popen | None = None
        self.logs: list[str] = []

    def argv(self) -> list[str]:
        out = subprocess.run(["bash", BROKER_SH, "argv", self.kind, str(self.port), self.datadir, *self.overrides],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise Failure(f"broker.sh argv failed: {out.stderr}")
        return out.stdout.splitlines()

    def start(self, timeout: float = 60) -> None:
        path = os.path.join(self.logdir, f"broker-{len(self.logs) + 1}.log")
        self.logs.append(path)
        argv = self.argv()
        log(f"starting {self.kind}: {' '.join(argv)}")
        with open(path, "wb") as f:
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, timeout, self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log("broker still running 10 s after SIGTERM: SIGKILL")
            self.proc.kill()
            self.proc.wait(10)

    def print_logs(self) -> None:
        for path in self.logs:
            print(f"===== {path} (last 200 lines) =====")
            try:
                with open(path, errors="replace") as f:
                    print("".join(f.readlines()[-200:]), end="")
            except OSError as e:
                print(e)
        print("===== end of broker logs =====", flush=True)


def create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)],
                        request_timeout=15)[TOPIC].result(20)
    wait_topic(bootstrap, "after creating it")


def wait_topic(bootstrap: str, when: str, timeout: float = 30) -> None:
    """Until metadata shows the topic with one partition that has a leader."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            t = admin.list_topics(topic=TOPIC, timeout=5).topics.get(TOPIC)
            last = "absent" if t is None else f"error={t.error}, {len(t.partitions)} partitions"
            if t is not None and t.error is None and len(t.partitions) == 1 and t.partitions[0].leader >= 0:
                return
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.2)
    raise Failure(f"topic {TOPIC} has no partition leader {timeout:.0f}s {when} (last metadata: {last})")


def produce_until_kill(bootstrap: str, broker: Broker | None, seconds: float, max_acks: int) -> dict[int, int]:
    """Produce numbered records; SIGKILL `broker` after `seconds` or `max_acks` acks.
    Returns {number: acknowledged offset}."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 1, "batch.num.messages": 200, "message.timeout.ms": 30000,
                         "client.id": "petrel-crash-test"})
    acked: dict[int, int] = {}
    errors: list[str] = []

    def on_delivery(err, msg):
        seq = int(msg.key())
        if err is None:
            if seq in acked:
                errors.append(f"record {seq} acknowledged twice ({acked[seq]}, {msg.offset()})")
            acked[seq] = msg.offset()
        elif broker is None:
            errors.append(f"record {seq}: {err}")

    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < seconds and len(acked) < max_acks:
        try:
            producer.produce(TOPIC, key=str(seq).encode(), value=value_for(seq), partition=0,
                             on_delivery=on_delivery)
            seq += 1
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    sent = seq
    if broker is not None:
        broker.kill9()
        log(f"SIGKILL after {time.monotonic() - start:.2f}s: {sent} sent, {len(acked)} acknowledged so far")
        # responses already read by the client: the broker acknowledged them before dying
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            producer.poll(0.1)
        producer.purge(in_queue=True, in_flight=True)
        producer.flush(5)
        log(f"{len(acked)} acknowledged in total")
    else:
        left = producer.flush(30)
        if left:
            raise Failure(f"{left} records undelivered without a crash")
        log(f"no kill: {sent} sent, {len(acked)} acknowledged")
    if errors:
        raise Failure("; ".join(errors[:5]))
    if not acked:
        raise Failure("no record was acknowledged before the kill")
    return acked


def read_all(bootstrap: str, timeout: float = 60) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record of partition 0 from offset 0 to the end: [(offset, key, value)]."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "petrel-crash-test-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "error", "client.id": "petrel-crash-test"})
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF: caught up with the high watermark
                    return out
                raise KafkaException(m.error())
            out.append((m.offset(), m.key(), m.value()))
        raise Failure(f"reading the partition did not reach its end within {timeout:.0f}s ({len(out)} read)")
    finally:
        consumer.close()


def verify(acked: dict[int, int], records: list[tuple[int, bytes | None, bytes | None]]) -> None:
    problems = []
    by_offset = {}
    for off, key, value in records:
        if off in by_offset:
            problems.append(f"offset {off} read twice")
        by_offset[off] = (key, value)
    max_acked = max(acked.values())
    # every acknowledged record at its offset
    lost = [(s, o) for s, o in sorted(acked.items()) if o not in by_offset]
    wrong = [(s, o, by_offset[o][0]) for s, o in sorted(acked.items())
             if o in by_offset and by_offset[o] != (str(s).encode(), value_for(s))]
    if lost:
        problems.append(f"{len(lost)} acknowledged records missing, first (number, offset): {lost[:5]}")
    if wrong:
        problems.append(f"{len(wrong)} acknowledged offsets hold other content, first (number, offset, key there): {wrong[:5]}")
    # a hole-free, duplicate-free log: offset o holds record number o
    offsets = [o for o, _, _ in records]
    if offsets != list(range(len(offsets))):
        holes = sorted(set(range(max(offsets, default=-1) + 1)) - set(offsets))
        problems.append(f"offsets not contiguous from 0: {len(holes)} holes, first {holes[:5]}")
    if len(offsets) < max_acked + 1:
        problems.append(f"log ends at {len(offsets)}, below the highest acknowledged offset {max_acked}")
    misplaced = [(o, k) for o, k, v in records if (k, v) != (str(o).encode(), value_for(o))]
    if misplaced:
        problems.append(f"{len(misplaced)} offsets do not hold record number == offset "
                        f"(duplicate or reordered writes), first (offset, key): {misplaced[:5]}")
    keys = [k for _, k, _ in records]
    if len(set(keys)) != len(keys):
        problems.append(f"{len(keys) - len(set(keys))} duplicate records")
    if problems:
        raise Failure("\n  ".join(["log after recovery is wrong:"] + problems))
    log(f"verified: {len(acked)} acknowledged records all present at their offsets; log holds "
        f"{len(records)} records (offsets 0..{len(records) - 1}, "
        f"{len(records) - (max_acked + 1)} unacknowledged but persisted), no holes, no duplicates")


def self_test() -> None:
    """verify() accepts a good log and rejects each kind of damage."""
    good = [(o, str(o).encode(), value_for(o)) for o in range(10)]
    acked = {s: s for s in range(8)}
    verify(acked, good)
    verify(acked, good[:8])  # nothing unacknowledged persisted: fine
    damaged = {
        "lost tail": good[:6],
        "hole": good[:3] + good[4:],
        "duplicate": good[:5] + [(5, b"4", value_for(4))] + [(o + 1, k, v) for o, k, v in good[5:]],
        "wrong content": good[:2] + [(2, b"2", b"other")] + good[3:],
        "offset read twice": good[:5] + [good[4]] + good[5:],
        "empty": [],
    }
    for name, log_ in damaged.items():
        try:
            verify(acked, log_)
        except Failure:
            continue
        raise AssertionError(f"verify() accepted a damaged log: {name}")
    log("self-test: verify() accepts the good log and rejects all damaged ones")


def append_after_recovery(bootstrap: str, log_end: int) -> None:
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 1, "client.id": "petrel-crash-test-2"})
    offsets: list = []
    for i in range(100):
        seq = log_end + i
        producer.produce(TOPIC, key=str(seq).encode(), value=value_for(seq), partition=0,
                         on_delivery=lambda err, msg: offsets.append(err or msg.offset()))
    left = producer.flush(30)
    if left or offsets != list(range(log_end, log_end + 100)):
        raise Failure(f"appending after recovery: expected offsets {log_end}..{log_end + 99}, got "
                      f"{offsets[:3]}...{offsets[-3:]} ({left} undelivered)")
    log(f"100 records appended after recovery at offsets {log_end}..{log_end + 99}")


def main() -> int:
    # A parent may have spawned us with signals blocked (Foundation's Process on Linux does):
    # SIGALRM (our timeout) and the SIGTERM we send brokers must get through.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", choices=["petrel", "tansu"], default="petrel")
    ap.add_argument("--seconds", type=float, default=2.0, help="produce this long before the kill (2)")
    ap.add_argument("--max-acks", type=int, default=100_000, help="or until this many acks (100000)")
    ap.add_argument("--timeout", type=float, default=120.0, help="overall bound in seconds (120)")
    ap.add_argument("--no-kill", action="store_true", help="no crash/restart: self-check of the harness")
    ap.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    ap.add_argument("--self-test", action="store_true", help="only check the verifier on synthetic logs")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0

    def on_alarm(signum, frame):
        raise Timeout(f"crash test exceeded --timeout {args.timeout:.0f}s")
    signal.signal(signal.SIGALRM, on_alarm)

    work = tempfile.mkdtemp(prefix=f"petrel-crash-{args.broker}.")
    datadir = os.path.join(work, "data")
    os.makedirs(datadir)
    overrides = ["log.flush.interval.messages=1"] if args.broker == "petrel" else []
    broker = None
    ok = False
    try:
        if args.broker == "petrel" and not os.environ.get("PETREL_BIN"):
            log("building petrel")
            out = subprocess.run(["bash", BROKER_SH, "petrel-bin"], stdout=subprocess.PIPE, text=True, timeout=1800)
            if out.returncode != 0:
                raise Failure("petrel build failed")
            os.environ["PETREL_BIN"] = out.stdout.strip().splitlines()[-1]
        signal.setitimer(signal.ITIMER_REAL, args.timeout)  # the build is not counted
        port = free_port()
        bootstrap = f"127.0.0.1:{port}"
        broker = Broker(args.broker, port, datadir, work, overrides)
        broker.start()
        create_topic(bootstrap)
        acked = produce_until_kill(bootstrap, None if args.no_kill else broker, args.seconds, args.max_acks)
        if not args.no_kill:
            broker.start()  # same data directory, same port
            log("restarted")
            wait_topic(bootstrap, "after the restart")
        records = read_all(bootstrap)
        verify(acked, records)
        append_after_recovery(bootstrap, len(records))
        ok = True
        log("PASS")
        return 0
    except (Failure, Timeout) as e:
        log(f"FAIL: {e}")
        return 1
    except Exception as e:  # noqa: BLE001 - any client error is a failure with logs
        log(f"FAIL: {type(e).__name__}: {e}")
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if broker is not None:
            broker.stop()
            if not ok:
                broker.print_logs()
        if args.keep or not ok and os.environ.get("INTEROP_KEEP") == "1":
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
