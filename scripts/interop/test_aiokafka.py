"""aiokafka: AIOKafkaProducer (acks=all, plain and gzip) and AIOKafkaConsumer without a group,
with manual assignment and with a group-less subscription."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import interop_common as ic

RT_MS = int(ic.REQUEST_TIMEOUT * 1000)


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def produce(records: list[ic.Rec], topic: str, partition: int | None,
                  compression: str | None) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=ic.BOOTSTRAP, acks="all", compression_type=compression,
                                linger_ms=5, request_timeout_ms=RT_MS, client_id="interop-aiokafka")
    await producer.start()
    try:
        # send() queues; awaiting the futures afterwards lets records share batches
        futures = [await producer.send(topic, key=r.key, value=r.value, partition=partition,
                                       timestamp_ms=r.timestamp, headers=list(r.headers)) for r in records]
        metas = await asyncio.gather(*futures)
        return [(m.partition, m.offset) for m in metas]
    finally:
        await producer.stop()


async def consume(topic: str, count: int, *, partition: int | None, settle: float = 0.5) -> list[ic.Rec]:
    consumer = AIOKafkaConsumer(bootstrap_servers=ic.BOOTSTRAP, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, request_timeout_ms=RT_MS + 5000,
                                client_id="interop-aiokafka")
    if partition is not None:
        consumer.assign([TopicPartition(topic, partition)])
    else:
        consumer.subscribe([topic])  # no group: every partition, offsets from auto_offset_reset
    await consumer.start()
    try:
        got: list[ic.Rec] = []
        deadline = time.monotonic() + 30
        settle_until = None
        while time.monotonic() < deadline:
            if len(got) >= count and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                got += [ic.Rec(m.partition, m.offset, m.key, m.value, ic.normalize_headers(m.headers), m.timestamp)
                        for m in batch]
        return got
    finally:
        await consumer.stop()


@pytest.mark.parametrize("compression", [None, "gzip"], ids=["none", "gzip"])
def test_produce_consume_assigned(new_topic, compression):
    topic = new_topic(partitions=2)
    records = ic.make_records(200, f"aio-{compression}", ts_base=ic.now_ms() - 45_000)
    acks = run(produce(records, topic, 1, compression))
    assert acks == [(1, i) for i in range(len(records))], acks[:5]
    got = run(consume(topic, len(records), partition=1))
    ic.assert_same_records(got, ic.with_offsets(records, 0, partition=1), what="aiokafka consume (assigned)")


def test_subscribe_without_group(new_topic):
    """Keyed records over 3 partitions; a group-less subscription reads them all, each
    partition in offset order, each key in one partition, in send order."""
    topic = new_topic(partitions=3)
    records = [ic.Rec(None, None, f"key-{i % 9}".encode(), f"value-{i}".encode(), (("i", str(i).encode()),))
               for i in range(90)]
    acks = run(produce(records, topic, None, "gzip"))
    got = run(consume(topic, len(records), partition=None))
    assert len(got) == len(records), len(got)
    placed = {(p, o): r for (p, o), r in zip(acks, records)}
    assert len(placed) == len(records), "two records acknowledged at the same partition/offset"
    for g in got:
        e = placed[(g.partition, g.offset)]
        assert (g.key, g.value, g.headers) == (e.key, e.value, e.headers), (g.short(), e.short())
    for p in {g.partition for g in got}:
        offsets = [g.offset for g in got if g.partition == p]
        assert offsets == list(range(len(offsets))), (p, offsets)
    key_partitions = {}
    for g in got:
        key_partitions.setdefault(g.key, set()).add(g.partition)
    assert all(len(s) == 1 for s in key_partitions.values()), key_partitions
