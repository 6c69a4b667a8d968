"""confluent-kafka (librdkafka 2.16): AdminClient (cluster, topics, configs, partitions,
offsets, delete_records), the idempotent producer, plain and gzip produce/consume."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   OffsetSpec, ResourceType)

import interop_common as ic

RT = ic.REQUEST_TIMEOUT


def result(future):
    return future.result(RT + 5)


def broker_ids(admin) -> set[int]:
    return set(admin.list_topics(timeout=RT).brokers)


def produce(records: list[ic.Rec], topic: str, partition: int | None, **config) -> list[tuple[int, int]]:
    """Produce in order with delivery reports; returns (partition, offset) per record, in order."""
    conf = {"bootstrap.servers": ic.BOOTSTRAP, "acks": "all", "linger.ms": 5,
            "message.timeout.ms": int(RT * 1000 * 2), "client.id": "interop-confluent"}
    conf.update(config)
    producer = Producer(conf)
    reports: list = [None] * len(records)

    def report(i):
        def cb(err, msg):
            reports[i] = err if err is not None else (msg.partition(), msg.offset())
        return cb

    for i, r in enumerate(records):
        kwargs = dict(key=r.key, value=r.value, headers=list(r.headers) or None, on_delivery=report(i))
        if partition is not None:
            kwargs["partition"] = partition
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(RT * 2)
    assert left == 0, f"{left} records still undelivered after flush"
    errors = [e for e in reports if not isinstance(e, tuple)]
    assert not errors, f"delivery failures: {errors[:3]}"
    return reports


def consume(topic: str, partition: int, count: int, start: int = 0, settle: float = 0.5,
            reset: str = "latest") -> list[ic.Rec]:
    """Read from `start` (assign, no group membership) until `count` records, then a short
    settle period to catch anything extra."""
    consumer = Consumer({"bootstrap.servers": ic.BOOTSTRAP, "group.id": ic.unique_name("unused-group"),
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": reset, "client.id": "interop-confluent"})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        got: list[ic.Rec] = []
        deadline = time.monotonic() + 30
        settle_until = None
        while time.monotonic() < deadline:
            if len(got) >= count and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() > settle_until:
                break
            m = consumer.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    continue
                raise KafkaException(m.error())
            got.append(ic.Rec(m.partition(), m.offset(), m.key(), m.value(), ic.normalize_headers(m.headers()),
                              m.timestamp()[1]))
        return got
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------
# Admin


def test_describe_cluster(admin):
    d = result(admin.describe_cluster(request_timeout=RT))
    assert d.cluster_id, d.cluster_id
    host, port = ic.BOOTSTRAP.rsplit(":", 1)
    assert any(n.host == host and n.port == int(port) for n in d.nodes), [(n.id, n.host, n.port) for n in d.nodes]
    assert d.controller is not None and d.controller.id in {n.id for n in d.nodes}


def test_list_topics(admin, new_topic):
    topic = new_topic(partitions=3)
    md = admin.list_topics(timeout=RT)
    assert topic in md.topics
    t = md.topics[topic]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader in md.brokers and p.leader in p.replicas and p.leader in p.isrs, p
    assert md.cluster_id
    assert md.controller_id in md.brokers


def describe(admin, resource: ConfigResource) -> dict:
    [(_, future)] = admin.describe_configs([resource], request_timeout=RT).items()
    return result(future)


@pytest.mark.tansu_gap("DescribeConfigs for a topic lists only explicitly set keys, none of Kafka's defaults")
def test_describe_configs_topic(admin, new_topic):
    topic = new_topic(config={"retention.ms": "86400000"})
    configs = describe(admin, ConfigResource(ResourceType.TOPIC, topic))
    for key in ("cleanup.policy", "retention.ms", "segment.bytes", "max.message.bytes", "retention.bytes"):
        assert key in configs, f"{key} missing from topic configs: {sorted(configs)}"
    assert configs["retention.ms"].value == "86400000"
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].is_default
    assert int(configs["segment.bytes"].value) > 0


@pytest.mark.tansu_gap("DescribeConfigs for a broker returns no entries")
def test_describe_configs_broker(admin):
    node = min(broker_ids(admin))
    configs = describe(admin, ConfigResource(ResourceType.BROKER, str(node)))
    for key in ("num.partitions", "log.segment.bytes", "log.dirs", "default.replication.factor"):
        assert key in configs, f"{key} missing from broker configs: {sorted(configs)}"
    assert int(configs["num.partitions"].value) >= 1


def test_incremental_alter_configs_set(admin, new_topic):
    topic = new_topic()
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])
    [(_, future)] = admin.incremental_alter_configs([res], request_timeout=RT).items()
    result(future)
    configs = describe(admin, ConfigResource(ResourceType.TOPIC, topic))
    assert configs["retention.ms"].value == "123456"
    assert configs["max.message.bytes"].value == "2000000"


@pytest.mark.tansu_gap("after IncrementalAlterConfigs DELETE the key is gone from DescribeConfigs (no defaults reported)")
def test_incremental_alter_configs_delete(admin, new_topic):
    topic = new_topic(config={"retention.ms": "123456"})
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    [(_, future)] = admin.incremental_alter_configs([res], request_timeout=RT).items()
    result(future)
    configs = describe(admin, ConfigResource(ResourceType.TOPIC, topic))
    assert "retention.ms" in configs and configs["retention.ms"].value != "123456", configs.get("retention.ms")
    assert configs["retention.ms"].is_default


@pytest.mark.tansu_gap("CreatePartitions is not implemented")
def test_create_partitions(admin, new_topic):
    topic = new_topic(partitions=1)
    [(_, future)] = admin.create_partitions([NewPartitions(topic, 4)], request_timeout=RT).items()
    result(future)
    ic.wait_topic_ready(admin, topic, 4)
    assert produce([ic.Rec(None, None, b"k", b"into partition 3")], topic, 3) == [(3, 0)]


# ---------------------------------------------------------------------------------------------
# ListOffsets, DeleteRecords


def list_offset(admin, topic: str, partition: int, spec) -> tuple[int, int]:
    tp = TopicPartition(topic, partition)
    info = result(admin.list_offsets({tp: spec}, request_timeout=RT)[tp])
    return info.offset, info.timestamp


def ten_records_one_batch(admin, new_topic, timestamps: list[int]) -> str:
    topic = new_topic()
    recs = [ic.Rec(None, None, f"k{i}".encode(), f"v{i}".encode(), (), ts) for i, ts in enumerate(timestamps)]
    assert produce(recs, topic, 0, **{"linger.ms": 50}) == [(0, i) for i in range(len(recs))]
    return topic


def test_list_offsets_earliest(admin, new_topic):
    base = ic.now_ms() - 100_000
    topic = ten_records_one_batch(admin, new_topic, [base + i * 1000 for i in range(10)])
    assert list_offset(admin, topic, 0, OffsetSpec.earliest())[0] == 0


@pytest.mark.tansu_gap("ListOffsets LATEST answers the last batch's base offset + 1, not the log end offset")
def test_list_offsets_latest(admin, new_topic):
    base = ic.now_ms() - 100_000
    topic = ten_records_one_batch(admin, new_topic, [base + i * 1000 for i in range(10)])
    assert list_offset(admin, topic, 0, OffsetSpec.latest())[0] == 10
    empty = new_topic()
    assert list_offset(admin, empty, 0, OffsetSpec.latest())[0] == 0


@pytest.mark.tansu_gap("ListOffsets by timestamp ignores the records' CreateTime (answers offset 0 and a "
                       "time close to now for timestamps in the past)")
def test_list_offsets_by_timestamp_across_batches(admin, new_topic):
    """Two separately flushed batches: a timestamp between them finds the second batch."""
    topic = new_topic()
    base = ic.now_ms() - 100_000
    first = [ic.Rec(None, None, f"a{i}".encode(), b"first", (), base + i) for i in range(5)]
    second = [ic.Rec(None, None, f"b{i}".encode(), b"second", (), base + 50_000 + i) for i in range(5)]
    assert produce(first, topic, 0) == [(0, i) for i in range(5)]
    assert produce(second, topic, 0) == [(0, 5 + i) for i in range(5)]
    assert list_offset(admin, topic, 0, OffsetSpec.for_timestamp(base + 10_000)) == (5, base + 50_000)
    assert list_offset(admin, topic, 0, OffsetSpec.for_timestamp(base - 5))[0] == 0
    # after every timestamp: -1 (no such offset)
    assert list_offset(admin, topic, 0, OffsetSpec.for_timestamp(base + 3_600_000))[0] == -1


@pytest.mark.tansu_gap("ListOffsets by timestamp ignores the records' CreateTime (answers offset 0)")
def test_list_offsets_by_timestamp_within_batch(admin, new_topic):
    base = ic.now_ms() - 100_000
    topic = ten_records_one_batch(admin, new_topic, [base + i * 1000 for i in range(10)])
    assert list_offset(admin, topic, 0, OffsetSpec.for_timestamp(base + 3500)) == (4, base + 4000)
    assert list_offset(admin, topic, 0, OffsetSpec.for_timestamp(base + 9000)) == (9, base + 9000)


@pytest.mark.tansu_gap("ListOffsets MAX_TIMESTAMP (-3) fails: the broker logs TryFromIntError, answers offset -1001")
def test_list_offsets_max_timestamp(admin, new_topic):
    base = ic.now_ms() - 100_000
    stamps = [base + i * 1000 for i in range(10)]
    stamps[6] = base + 60_000  # the largest timestamp is not the last record
    topic = ten_records_one_batch(admin, new_topic, stamps)
    assert list_offset(admin, topic, 0, OffsetSpec.max_timestamp()) == (6, base + 60_000)


@pytest.mark.tansu_gap("DeleteRecords is not implemented (memory storage panics 'not yet implemented' in "
                       "dynostore.rs, the connection drops)")
def test_delete_records(admin, new_topic):
    base = ic.now_ms() - 100_000
    topic = ten_records_one_batch(admin, new_topic, [base + i for i in range(10)])
    tp = TopicPartition(topic, 0, 4)
    deleted = result(admin.delete_records([tp], request_timeout=RT, operation_timeout=RT)[tp])
    assert deleted.low_watermark == 4, deleted
    assert list_offset(admin, topic, 0, OffsetSpec.earliest())[0] == 4
    # From 0, now below the log start: OFFSET_OUT_OF_RANGE, and the consumer resets as configured.
    got = consume(topic, 0, 6, start=0, reset="earliest")
    assert [r.offset for r in got] == list(range(4, 10)), [r.offset for r in got]
    assert [r.key for r in got] == [f"k{i}".encode() for i in range(4, 10)]


# ---------------------------------------------------------------------------------------------
# Producing and consuming


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_produce_consume(new_topic, compression):
    topic = new_topic(partitions=2)
    records = ic.make_records(200, f"ck-{compression}", ts_base=ic.now_ms() - 30_000)
    acks = produce(records, topic, 0, **{"compression.type": compression})
    assert acks == [(0, i) for i in range(len(records))], acks[:5]
    expected = ic.with_offsets(records, 0, partition=0)
    ic.assert_same_records(consume(topic, 0, len(records)), expected, what="confluent consume")
    ic.assert_same_records(consume(topic, 0, 50, start=150), expected[150:], what="confluent consume from 150")


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_idempotent_producer_exactly_once_in_order(new_topic, compression):
    """enable.idempotence with several batches in flight: every record acknowledged once, at
    offsets 0..N-1 in send order, and the log holds exactly those N records."""
    topic = new_topic()
    n = 3000
    records = [ic.Rec(None, None, f"{i:06d}".encode(), f"idempotent-{i}-".encode() + b"." * (i % 97), ())
               for i in range(n)]
    acks = produce(records, topic, 0, **{"enable.idempotence": True, "max.in.flight.requests.per.connection": 5,
                                         "batch.num.messages": 100, "linger.ms": 1, "compression.type": compression})
    assert acks == [(0, i) for i in range(n)], [a for i, a in enumerate(acks) if a != (0, i)][:5]
    got = consume(topic, 0, n, settle=1.0)
    ic.assert_same_records(got, ic.with_offsets(records, 0, partition=0), what="idempotent read-back")
