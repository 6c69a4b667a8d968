"""kafka-python: KafkaAdminClient (create/delete topics, create partitions), KafkaProducer with
acks=all (plain and gzip), KafkaConsumer without a group."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic

import interop_common as ic

TIMEOUT_MS = int(ic.REQUEST_TIMEOUT * 1000)


@pytest.fixture
def kp_admin():
    a = KafkaAdminClient(bootstrap_servers=ic.BOOTSTRAP, client_id="interop-kafka-python",
                         request_timeout_ms=TIMEOUT_MS)
    yield a
    a.close()


def partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    """Partitions of `topic` from a fresh Metadata request, None if the topic is absent."""
    [d] = admin.describe_topics([topic])
    if d.get("error_code", 0) != 0:
        return None
    return len(d["partitions"])


def test_create_and_delete_topics(kp_admin):
    a, b = ic.unique_name("kp-create-a"), ic.unique_name("kp-create-b")
    kp_admin.create_topics([NewTopic(a, num_partitions=2, replication_factor=1),
                            NewTopic(b, num_partitions=1, replication_factor=1)], timeout_ms=TIMEOUT_MS)
    ic.wait_until(lambda: {a, b} <= set(kp_admin.list_topics()), 20, "created topics listed")
    assert ic.wait_until(lambda: partition_count(kp_admin, a) == 2, 20, f"{a} with 2 partitions")
    assert partition_count(kp_admin, b) == 1
    # creating it again is an error (TopicAlreadyExists), not a silent success
    with pytest.raises(Exception) as exc:
        kp_admin.create_topics([NewTopic(a, num_partitions=2, replication_factor=1)], timeout_ms=TIMEOUT_MS)
    assert "TopicAlreadyExists" in repr(exc.value) or "already exists" in str(exc.value).lower(), repr(exc.value)
    kp_admin.delete_topics([a], timeout_ms=TIMEOUT_MS)
    ic.wait_until(lambda: a not in set(kp_admin.list_topics()), 20, f"{a} gone after delete_topics")
    assert b in set(kp_admin.list_topics())
    kp_admin.delete_topics([b], timeout_ms=TIMEOUT_MS)
    ic.wait_until(lambda: b not in set(kp_admin.list_topics()), 20, f"{b} gone after delete_topics")


@pytest.mark.tansu_gap("CreatePartitions is not implemented (librdkafka: 'CreatePartitions (KIP-195) not supported by broker')")
def test_create_partitions(kp_admin, new_topic):
    topic = new_topic(partitions=1)
    kp_admin.create_partitions({topic: NewPartitions(total_count=3)}, timeout_ms=TIMEOUT_MS)
    ic.wait_until(lambda: partition_count(kp_admin, topic) == 3, 20, f"{topic} grown to 3 partitions")
    # the new partitions take writes
    producer = KafkaProducer(bootstrap_servers=ic.BOOTSTRAP, acks="all", request_timeout_ms=TIMEOUT_MS)
    try:
        md = producer.send(topic, b"into partition 2", partition=2).get(timeout=ic.REQUEST_TIMEOUT)
        assert (md.partition, md.offset) == (2, 0)
    finally:
        producer.close(timeout=5)


def produce(records: list[ic.Rec], topic: str, partition: int, compression: str | None) -> list[tuple[int, int]]:
    producer = KafkaProducer(bootstrap_servers=ic.BOOTSTRAP, acks="all", compression_type=compression,
                             linger_ms=5, request_timeout_ms=TIMEOUT_MS, client_id="interop-kafka-python")
    try:
        futures = [producer.send(topic, key=r.key, value=r.value, partition=partition,
                                 headers=list(r.headers), timestamp_ms=r.timestamp) for r in records]
        producer.flush(timeout=ic.REQUEST_TIMEOUT)
        return [(md.partition, md.offset) for md in (f.get(timeout=ic.REQUEST_TIMEOUT) for f in futures)]
    finally:
        producer.close(timeout=5)


def consume(topic: str, partition: int, count: int, *, start: int | None = None) -> list[ic.Rec]:
    consumer = KafkaConsumer(bootstrap_servers=ic.BOOTSTRAP, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, request_timeout_ms=TIMEOUT_MS + 5000,
                             client_id="interop-kafka-python")
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if start is not None:
            consumer.seek(tp, start)
        got: list[ic.Rec] = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got += [ic.Rec(m.partition, m.offset, m.key, m.value, ic.normalize_headers(m.headers), m.timestamp)
                        for m in batch]
        # nothing beyond what was produced
        for batch in consumer.poll(timeout_ms=500).values():
            got += [ic.Rec(m.partition, m.offset, m.key, m.value, ic.normalize_headers(m.headers), m.timestamp)
                    for m in batch]
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("compression", [None, "gzip"], ids=["none", "gzip"])
def test_produce_acks_all_and_consume(new_topic, compression):
    topic = new_topic(partitions=2)
    records = ic.make_records(150, f"kp-{compression}", ts_base=ic.now_ms() - 60_000)
    acks = produce(records, topic, 1, compression)
    assert acks == [(1, i) for i in range(len(records))], acks[:5]
    expected = ic.with_offsets(records, 0, partition=1)
    ic.assert_same_records(consume(topic, 1, len(records)), expected, what="kafka-python consume")
    ic.assert_same_records(consume(topic, 1, len(records) - 100, start=100), expected[100:],
                           what="kafka-python consume from offset 100")
    assert consume(topic, 0, 0) == [], "partition 0 should be empty"
