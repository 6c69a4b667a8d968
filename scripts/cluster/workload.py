"""Numbered records through a real librdkafka producer, reading them back, and the verifier.

Records are numbered per partition: the n-th record sent to partition p has key str(n) and the
value `crash_test.value_for(n)` (scripts/interop/crash_test.py), so that a partition written only
by this producer, with nothing lost or repeated, holds record n at offset n -- exactly what
crash_test.verify() checks, and it is called for such partitions.  `verify_partition` is the
general check for logs after faults, where records the client saw fail may be missing:
  - every acknowledged record is in the log, at its acknowledged offset (when the acknowledgement
    carried one: offset -1 = acknowledged without an offset, counted apart), with its content;
  - offsets are contiguous from 0 (a fresh topic);
  - records are in send order; duplicates are counted (with idempotence, any duplicate or
    reordering fails).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop"))
import crash_test  # noqa: E402  (value_for, verify, Failure)

value_for = crash_test.value_for


class VerifyFailure(Exception):
    pass


class NumberedProducer:
    """Sends numbered records round-robin over `partitions` from a thread, at most `rate`/s
    (0: as fast as the client takes them), recording send and acknowledgement times."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, *, acks: str = "all",
                 idempotence: bool = True, rate: float = 2000, value_size: int | None = None,
                 config: dict | None = None, name: str = "petrel-fault-test"):
        from confluent_kafka import Producer
        self.topic, self.partitions, self.rate, self.idempotence = topic, partitions, rate, idempotence
        self.value_size = value_size
        conf = {
            "bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": idempotence,
            "linger.ms": 5, "message.timeout.ms": 60000, "request.timeout.ms": 5000,
            "retry.backoff.ms": 50, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000, "client.id": name,
            "error_cb": self._on_error, "log_level": 2,  # connection errors are expected: counted by error_cb
        }
        conf.update(config or {})
        self.producer = Producer(conf)
        self.lock = threading.Lock()
        self.next_seq = [0] * partitions
        self.send_time: list[list[float]] = [[] for _ in range(partitions)]
        self.acked: list[dict[int, int]] = [{} for _ in range(partitions)]
        self.ack_time: list[dict[int, float]] = [{} for _ in range(partitions)]
        self.failed: list[dict[int, str]] = [{} for _ in range(partitions)]
        self.double_acks: list[str] = []
        self.acked_without_offset: list[tuple[int, int]] = []  # (partition, number)
        self.client_errors: Counter = Counter()
        self.fatal: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = 0.0

    # -- callbacks (called from poll/flush) ---------------------------------------------------
    def _on_error(self, err) -> None:
        self.client_errors[err.name()] += 1
        if err.fatal():
            self.fatal = f"{err.name()}: {err.str()}"

    def _on_delivery(self, err, msg) -> None:
        now = time.monotonic()
        p, seq = msg.partition(), int(msg.key())
        with self.lock:
            if err is None:
                offset = msg.offset()
                if offset is None or offset < 0:  # acknowledged, but the answer carried no offset
                    offset = -1
                    self.acked_without_offset.append((p, seq))
                if seq in self.acked[p]:
                    self.double_acks.append(f"partition {p} record {seq} acknowledged twice "
                                            f"({self.acked[p][seq]}, {offset})")
                self.acked[p][seq] = offset
                self.ack_time[p][seq] = now
            else:
                self.failed[p][seq] = err.name()

    # -- producing ---------------------------------------------------------------------------
    def value(self, seq: int) -> bytes:
        v = value_for(seq)
        if self.value_size is None:
            return v
        return (v * (self.value_size // len(v) + 1))[:self.value_size]

    def send(self, partition: int) -> bool:
        seq = self.next_seq[partition]
        try:
            with self.lock:
                self.send_time[partition].append(time.monotonic())
            self.producer.produce(self.topic, key=str(seq).encode(), value=self.value(seq),
                                  partition=partition, on_delivery=self._on_delivery)
        except BufferError:
            with self.lock:
                self.send_time[partition].pop()
            self.producer.poll(0.01)
            return False
        self.next_seq[partition] += 1
        return True

    def _run(self) -> None:
        sent = 0
        p = 0
        while not self._stop.is_set() and self.fatal is None:
            if self.rate > 0 and sent >= self.rate * (time.monotonic() - self.started_at):
                self.producer.poll(0.001)
                continue
            if self.send(p):
                sent += 1
                p = (p + 1) % self.partitions
            self.producer.poll(0)

    def start(self) -> "NumberedProducer":
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="numbered-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush_timeout: float = 30) -> int:
        """Stops sending, waits up to `flush_timeout` s for outstanding acks, purges the rest.
        Returns how many records were still undelivered (they count as neither acked nor failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.producer is None:
            return 0
        left = self.producer.flush(flush_timeout)
        if left:
            self.producer.purge(in_queue=True, in_flight=True)
            self.producer.flush(5)
        self.producer = None  # drop the client: no reconnect attempts to stopped clusters
        return left

    # -- figures -----------------------------------------------------------------------------
    @property
    def acked_count(self) -> int:
        with self.lock:
            return sum(len(a) for a in self.acked)

    @property
    def sent_count(self) -> int:
        return sum(self.next_seq)

    def failed_count(self) -> int:
        with self.lock:
            return sum(len(f) for f in self.failed)

    def failure_kinds(self) -> Counter:
        with self.lock:
            return Counter(e for f in self.failed for e in f.values())

    def first_ack_after(self, t: float, partitions=None) -> float | None:
        """Seconds from `t` to the first acknowledgement of a record *sent* at or after `t` on one of
        `partitions` (default all), or None."""
        best = None
        with self.lock:
            for p in (partitions if partitions is not None else range(self.partitions)):
                times = self.send_time[p]
                # send times are increasing: binary search for the first record sent at/after t
                lo, hi = 0, len(times)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if times[mid] < t:
                        lo = mid + 1
                    else:
                        hi = mid
                for seq, at in self.ack_time[p].items():
                    if seq >= lo and (best is None or at < best):
                        best = at
        return None if best is None else best - t

    def acks_of_records_sent_after(self, t: float) -> list[tuple[int, int, int]]:
        """[(partition, seq, offset)] acknowledged although sent at or after `t`."""
        out = []
        with self.lock:
            for p in range(self.partitions):
                times = self.send_time[p]
                for seq, off in self.acked[p].items():
                    if seq < len(times) and times[seq] >= t:
                        out.append((p, seq, off))
        return out

    def latencies(self, from_seq: int = 0) -> list[float]:
        """Send -> delivery callback, in seconds, of the acknowledged records numbered >= from_seq."""
        with self.lock:
            return [self.ack_time[p][s] - self.send_time[p][s]
                    for p in range(self.partitions) for s in self.ack_time[p] if s >= from_seq]

    def wait_acks(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acked_count >= n:
                return True
            if self.fatal:
                return False
            time.sleep(0.02)
        return False


def read_partitions(bootstrap: str, topic: str, partitions: int, want_end: dict[int, int] | None = None,
                    timeout: float = 60) -> dict[int, list[tuple[int, bytes | None, bytes | None]]]:
    """Every record of every partition from offset 0: {partition: [(offset, key, value)]}.
    Reads until end-of-partition on each, and at least up to want_end[p] (exclusive)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "petrel-fault-test-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest", "client.id": "petrel-fault-test-reader",
                         "fetch.queue.backoff.ms": 10, "log_level": 2})
    out: dict[int, list] = {p: [] for p in range(partitions)}
    eof: set[int] = set()
    want_end = want_end or {}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    p = m.partition()
                    last = out[p][-1][0] + 1 if out[p] else 0
                    if last >= want_end.get(p, 0):
                        eof.add(p)
                    if len(eof) == partitions:
                        return out
                    continue
                if m.error().retriable() or not m.error().fatal():
                    continue
                raise VerifyFailure(f"consumer: {m.error()}")
            out[m.partition()].append((m.offset(), m.key(), m.value()))
        missing = sorted(set(range(partitions)) - eof)
        print(f"read_partitions: partitions {missing} did not reach their end within {timeout:.0f}s "
              f"(read {[len(out[p]) for p in range(partitions)]})", flush=True)
        return out
    finally:
        consumer.close()


@dataclass
class PartitionCheck:
    partition: int
    acked: int = 0
    in_log: int = 0
    lost: int = 0
    duplicates: int = 0
    reordered: int = 0
    unacked_present: int = 0
    problems: list = field(default_factory=list)


def verify_partition(partition: int, acked: dict[int, int], records: list[tuple[int, bytes | None, bytes | None]],
                     idempotent: bool, failed: dict[int, str] | None = None,
                     value=value_for) -> PartitionCheck:
    """See the module docstring.  Problems are listed in the result (empty: pass)."""
    r = PartitionCheck(partition, acked=len(acked), in_log=len(records))
    by_offset: dict[int, tuple] = {}
    where: dict[int, list[int]] = {}
    order: list[int] = []
    for off, key, val in records:
        if off in by_offset:
            r.problems.append(f"offset {off} read twice")
            continue
        by_offset[off] = (key, val)
        try:
            seq = int(key)
        except (TypeError, ValueError):
            r.problems.append(f"offset {off}: key {key!r} is not a record number")
            continue
        if val != value(seq):
            r.problems.append(f"offset {off}: record {seq} has other content than was sent")
        where.setdefault(seq, []).append(off)
        order.append(seq)
    offsets = sorted(by_offset)
    if offsets and offsets != list(range(len(offsets))):
        holes = sorted(set(range(offsets[-1] + 1)) - set(offsets))
        r.problems.append(f"offsets not contiguous from 0: {len(holes)} missing, first {holes[:5]}")
    lost = [(s, o) for s, o in sorted(acked.items()) if s not in where]
    misplaced = [(s, o, where[s]) for s, o in sorted(acked.items()) if s in where and o >= 0 and o not in where[s]]
    r.lost = len(lost)
    if lost:
        r.problems.append(f"{len(lost)} acknowledged records lost, first (number, acked offset): {lost[:5]}")
    if misplaced:
        r.problems.append(f"{len(misplaced)} acknowledged records not at their acknowledged offset, first "
                          f"(number, acked offset, offsets in log): {misplaced[:5]}")
    r.duplicates = sum(len(v) - 1 for v in where.values())
    r.reordered = sum(1 for a, b in zip(order, order[1:]) if b < a)
    r.unacked_present = sum(1 for s in where if s not in acked)
    if idempotent and r.duplicates:
        dup = sorted((s, v) for s, v in where.items() if len(v) > 1)[:5]
        r.problems.append(f"{r.duplicates} duplicates with idempotence on, first (number, offsets): {dup}")
    if idempotent and r.reordered:
        r.problems.append(f"{r.reordered} records out of send order with idempotence on")
    # The exact check of the crash test applies when nothing failed on this partition:
    # then record n must sit at offset n, nothing missing, nothing repeated.
    if idempotent and not failed and acked and not r.problems and value is value_for and min(acked.values()) >= 0:
        try:
            crash_test.verify(acked, records)
        except crash_test.Failure as e:
            r.problems.append(f"crash_test.verify: {e}")
    return r


def self_test() -> None:
    """verify_partition() accepts good logs and rejects each kind of damage; then crash_test's own
    self-test of the verifier it reuses."""
    good = [(o, str(o).encode(), value_for(o)) for o in range(10)]
    acked = {s: s for s in range(8)}

    def check(name, records, acked_, idempotent, failed=None, ok=True):
        r = verify_partition(0, acked_, records, idempotent, failed)
        if ok and r.problems:
            raise AssertionError(f"self-test '{name}': a good log was rejected: {r.problems}")
        if not ok and not r.problems:
            raise AssertionError(f"self-test '{name}': a damaged log was accepted")
        return r

    check("good", good, acked, True)
    check("good, unacknowledged tail missing", good[:8], acked, True)
    # record 3 failed (not acked), 4.. were acked at shifted offsets: fine, nothing acked lost
    gap = [(o if o < 3 else o - 1, str(s).encode(), value_for(s)) for o, s in
           [(i, i) for i in range(10) if i != 3]]
    check("failed record absent", gap, {s: (s if s < 3 else s - 1) for s in range(10) if s != 3}, True, {3: "x"})
    lost_one = [(o, k, v) for o, k, v in good if o != 5]
    lost_one = [(i, k, v) for i, (_, k, v) in enumerate(lost_one)]
    check("lost acknowledged record", lost_one, acked, True, ok=False)
    check("lost acknowledged record (no idempotence)", lost_one, acked, False, ok=False)
    check("lost tail", good[:5], acked, False, ok=False)
    check("empty log", [], acked, False, ok=False)
    dup = good[:6] + [(6, b"5", value_for(5))] + [(o + 1, k, v) for o, k, v in good[6:]]
    dup_acked = {s: (s if s < 6 else s + 1) for s in range(8)}
    r = check("duplicate without idempotence", dup, dup_acked, False)
    assert r.duplicates == 1, r
    check("duplicate with idempotence", dup, dup_acked, True, ok=False)
    swapped = good[:3] + [(3, b"4", value_for(4)), (4, b"3", value_for(3))] + good[5:]
    check("reordered with idempotence", swapped, {s: s for s in range(3)} | {3: 4, 4: 3}, True, ok=False)
    check("altered content", good[:2] + [(2, b"2", b"other")] + good[3:], acked, False, ok=False)
    check("hole in offsets", good[:4] + good[5:], {s: s for s in range(4)}, False, ok=False)
    check("acked at another offset", good, acked | {7: 9}, False, ok=False)
    print("workload self-test: verify_partition accepts the good logs and rejects lost, misplaced, altered, "
          "duplicated (idempotent), reordered (idempotent) records and holes", flush=True)
    crash_test.self_test()
