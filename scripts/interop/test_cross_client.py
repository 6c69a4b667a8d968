"""Batches written by one client are read by every other: each producer (kcat, kafka-python,
confluent-kafka, aiokafka; gzip) fills its own partition, then each consumer reads all four
partitions and must see exactly the same records. The broker stores batches as the producers
built them, so this catches any client's batch that another client's decoder would not take."""

from __future__ import annotations

import pytest

import interop_common as ic
import test_aiokafka as aio
import test_confluent_kafka as ck
import test_kafka_python as kp

N = 25
PRODUCERS = ["kcat", "kafka-python", "confluent-kafka", "aiokafka"]


def records_for(producer: str) -> list[ic.Rec]:
    # text only (kcat reads lines), one header pair like kcat -H gives every record
    return [ic.Rec(None, None, f"{producer}-k{i}".encode(), f"{producer} value {i} " .encode() + b"z" * i,
                   (("origin", producer.encode()),)) for i in range(N)]


@pytest.fixture(scope="module")
def cross_topic(admin, workdir, tmp_path_factory):
    """A 4-partition topic: partition i written by PRODUCERS[i] with gzip."""
    topic = ic.create_topic(admin, ic.unique_name("cross-client"), partitions=4)
    kcat = ic.Kcat("librdkafka-2.16", ic.system_kcat_binary() or "kcat", ic.wheel_librdkafka_dir(workdir))
    path = tmp_path_factory.mktemp("cross") / "kcat.txt"
    path.write_text("".join(f"{r.key.decode()}:{r.value.decode()}\n" for r in records_for("kcat")))
    kcat.run(["-P", "-t", topic, "-p", "0", "-K:", "-H", "origin=kcat", "-z", "gzip", "-X", "acks=all",
              "-m", "10", "-l", str(path)])
    assert kp.produce(records_for("kafka-python"), topic, 1, "gzip") == [(1, i) for i in range(N)]
    assert ck.produce(records_for("confluent-kafka"), topic, 2, **{"compression.type": "gzip"}) == [(2, i) for i in range(N)]
    assert aio.run(aio.produce(records_for("aiokafka"), topic, 3, "gzip")) == [(3, i) for i in range(N)]
    return topic


def expected(p: int) -> list[ic.Rec]:
    return ic.with_offsets(records_for(PRODUCERS[p]), 0, partition=p)


def test_kcat_reads_every_clients_batches(cross_topic, kcat):
    for p in range(4):
        got = [ic.kcat_record(j) for j in kcat.consume_json(cross_topic, "-o", "beginning", partition=p)]
        ic.assert_same_records(got, expected(p), what=f"kcat ({kcat.name}) reading {PRODUCERS[p]}'s gzip batches")


@pytest.mark.parametrize("consumer", ["kafka-python", "confluent-kafka", "aiokafka"])
def test_python_clients_read_every_clients_batches(cross_topic, consumer):
    for p in range(4):
        if consumer == "kafka-python":
            got = kp.consume(cross_topic, p, N)
        elif consumer == "confluent-kafka":
            got = ck.consume(cross_topic, p, N)
        else:
            got = aio.run(aio.consume(cross_topic, N, partition=p))
        ic.assert_same_records(got, expected(p), what=f"{consumer} reading {PRODUCERS[p]}'s gzip batches")
