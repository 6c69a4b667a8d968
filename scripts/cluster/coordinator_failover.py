#!/usr/bin/env python3
"""kill -9 of a consumer group's coordinator in a three-node cluster (issue 5).

A confluent-kafka consumer group (manual, synchronous commits after processing) reads a
4-partition topic (RF 3, min.insync.replicas 2) of numbered records. Midway, the node that
coordinates the group (the leader of its `__consumer_offsets` partition) is killed with
SIGKILL. The group must find the new coordinator by itself and resume from the last
committed offsets: every record is processed at least once, nothing committed is processed
again except the records after the last commit (at-least-once), and the committed offsets
read back after the failover equal the ones committed before it.

    scripts/cluster/coordinator_failover.py [--rounds N] [--records N] [--timeout S]

Prints per round: time from the kill to the first record processed after it, records
processed twice, and the result. Exits 1 on a failed check. Bounded by --timeout per round.
"""
import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402


def commit(consumer) -> None:
    """A synchronous commit of the consumed positions; nothing new to commit is fine."""
    from confluent_kafka import KafkaError, KafkaException
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as e:
        if e.args[0].code() != KafkaError._NO_OFFSET:
            raise


def run_round(records: int, timeout: float) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout
    with cl.Cluster(nodes=3) as c:
        c.start()
        c.wait_formed()
        topic = f"cf-{uuid.uuid4().hex[:6]}"
        c.create_topic(topic, 4, replication=3, configs={"min.insync.replicas": "2"})
        c.wait_leaders(topic, 4)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True})
        for i in range(records):
            p.produce(topic, key=str(i), value=str(i))
            if i % 1000 == 0:
                p.poll(0)
        if p.flush(60) != 0:
            return False, "the producer could not deliver every record"

        group = f"cf-group-{uuid.uuid4().hex[:6]}"
        conf = {"bootstrap.servers": c.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
        seen: dict[int, int] = {}
        consumer = Consumer(conf)
        consumer.subscribe([topic])
        committed_before: dict[int, int] = {}
        # Phase 1: process half, committing after each batch of 100.
        batch: list = []
        while sum(seen.values()) < records // 2 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            v = int(m.value())
            seen[v] = seen.get(v, 0) + 1
            batch.append(m)
            if len(batch) >= 100:
                commit(consumer)
                batch = []
        commit(consumer)
        for tp in consumer.committed([TopicPartition(topic, i) for i in range(4)], timeout=10):
            committed_before[tp.partition] = tp.offset
        coordinator = c.admin().describe_consumer_groups([group])[group].result(10).coordinator.id
        cl.log(f"coordinator of {group} is node {coordinator}; committed {committed_before}; kill -9")
        c.node(coordinator).kill9()
        killed_at = time.monotonic()
        consumer.close()

        # Phase 2: a new member of the same group resumes from the commits.
        consumer = Consumer(conf | {"bootstrap.servers": c.live_bootstrap()})
        consumer.subscribe([topic])
        first_after = None
        while len(seen) < records and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            if first_after is None:
                first_after = time.monotonic() - killed_at
            v = int(m.value())
            seen[v] = seen.get(v, 0) + 1
            if len(seen) % 200 == 0:
                commit(consumer)
        commit(consumer)
        after = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, i) for i in range(4)], timeout=15)}
        new_coordinator = c.admin().describe_consumer_groups([group])[group].result(10).coordinator.id
        consumer.close()

        missing = records - len(seen)
        twice = sum(1 for n in seen.values() if n > 1)
        regressed = {p: (committed_before[p], after.get(p)) for p in committed_before
                     if committed_before[p] >= 0 and (after.get(p) or -1) < committed_before[p]}
        figures = (f"coordinator {coordinator} -> {new_coordinator}; first record {first_after if first_after is None else round(first_after, 2)} s "
                   f"after the kill; processed twice {twice} (at-least-once allows the uncommitted tail); missing {missing}")
        if missing or regressed or new_coordinator == coordinator:
            return False, figures + f"; committed offsets went back: {regressed}" if regressed else figures
        # Twice-processed records must come only from after the last commit before the kill:
        # at most one commit interval (100) per partition.
        if twice > 4 * 100:
            return False, figures + " (more than one commit interval per partition reprocessed)"
        return True, figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--timeout", type=float, default=150)
    args = ap.parse_args()
    failed = 0
    for r in range(args.rounds):
        try:
            ok, figures = run_round(args.records, args.timeout)
        except Exception as e:  # noqa: BLE001 - report and count
            ok, figures = False, f"error: {e}"
        print(f"coordinator-failover round {r + 1}: {'ok' if ok else 'FAILED'}: {figures}", flush=True)
        failed += 0 if ok else 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
