"""kcat 1.7.1, once with Debian's librdkafka 2.0.2 and once with librdkafka 2.16 (the `kcat`
fixture is parametrized over both builds): metadata, produce with keys and headers, consume,
offsets, timestamps, JSON output."""

from __future__ import annotations

import json
import time

import pytest

import interop_common as ic


LATEST_GAP = ("ListOffsets LATEST answers the last batch's base offset + 1, not the log end offset "
              "(12 records in one batch -> 1)")


def kcat_produce(kcat: ic.Kcat, topic: str, lines: list[str], tmp_path, *extra: str,
                 partition: int | None = None, headers: list[str] = ()) -> None:
    """Produce `key:value` lines from a file with acks=all (-K: splits key and value)."""
    path = tmp_path / f"records-{time.monotonic_ns()}.txt"
    path.write_text("".join(line + "\n" for line in lines))
    args = ["-P", "-t", topic, "-K:", "-X", "acks=all", "-X", "linger.ms=5", "-m", "10", "-l", str(path)]
    if partition is not None:
        args += ["-p", str(partition)]
    for h in headers:
        args += ["-H", h]
    kcat.run(args + list(extra))


def expected(lines: list[str], partition: int, first_offset: int = 0,
             headers: tuple = ()) -> list[ic.Rec]:
    out = []
    for i, line in enumerate(lines):
        k, v = line.split(":", 1)
        out.append(ic.Rec(partition, first_offset + i, k.encode(), v.encode(), headers))
    return out


def test_librdkafka_build(kcat):
    """The fixture really loads the librdkafka it claims to (LD_LIBRARY_PATH trick works)."""
    v = kcat.librdkafka_version
    if kcat.name == "librdkafka-2.16":
        import confluent_kafka
        assert v == confluent_kafka.libversion()[0], v
        assert tuple(int(x) for x in v.split(".")[:2]) >= (2, 16)
    else:
        assert v.startswith("2.0."), f"expected Debian's librdkafka 2.0.x, kcat reports {v}"


def test_metadata(kcat, new_topic):
    topic = new_topic(partitions=3)

    def listing():
        md = json.loads(kcat.run(["-L", "-J", "-m", "10"]).stdout)
        return md if any(t["topic"] == topic for t in md["topics"]) else None
    md = ic.wait_until(listing, 20, f"{topic} in kcat -L")
    broker_ids = {b["id"] for b in md["brokers"]}
    assert ic.BOOTSTRAP in {b["name"] for b in md["brokers"]}, f"bootstrap {ic.BOOTSTRAP} not advertised: {md['brokers']}"
    assert md["controllerid"] in broker_ids, md
    [t] = [t for t in md["topics"] if t["topic"] == topic]
    assert "error" not in t, t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2], t
    for p in t["partitions"]:
        assert p["leader"] in broker_ids, p
        assert [r["id"] for r in p["replicas"]] and p["leader"] in [r["id"] for r in p["replicas"]], p
        assert p["leader"] in [r["id"] for r in p["isrs"]], p
    # single-topic form
    one = json.loads(kcat.run(["-L", "-J", "-t", topic, "-m", "10"]).stdout)
    assert [t["topic"] for t in one["topics"]] == [topic]
    assert len(one["topics"][0]["partitions"]) == 3


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_produce_consume_keys_headers(kcat, new_topic, tmp_path, compression):
    """40 keyed records with two headers into partition 1 of a 3-partition topic; read back
    through -J: the same keys, values, headers, partition and offsets 0..39, nothing elsewhere."""
    topic = new_topic(partitions=3)
    lines = [f"k{i:03d}:value {i} {compression} " + "x" * (i * 7) for i in range(40)]
    kcat_produce(kcat, topic, lines, tmp_path, "-z", compression, partition=1,
                 headers=["trace-id=t-123", "source=kcat " + kcat.name])
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", "beginning")]
    hdrs = (("trace-id", b"t-123"), ("source", ("kcat " + kcat.name).encode()))
    ic.assert_same_records(got, expected(lines, 1, 0, hdrs), what="kcat -C -J")
    js = kcat.consume_json(topic, "-o", "beginning", partition=1)
    assert all(j["topic"] == topic and j["tstype"] == "create" and abs(j["ts"] - ic.now_ms()) < 120_000
               for j in js), js[:3]


def test_consume_from_offset(kcat, new_topic, tmp_path):
    topic = new_topic()
    lines = [f"key{i}:value {i}" for i in range(12)]
    kcat_produce(kcat, topic, lines, tmp_path, partition=0)
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", "5", partition=0)]
    ic.assert_same_records(got, expected(lines, 0)[5:], what="kcat -o 5")
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", "2", "-c", "4", partition=0)]
    ic.assert_same_records(got, expected(lines, 0)[2:6], what="kcat -o 2 -c 4")


@pytest.mark.tansu_gap(LATEST_GAP)
def test_consume_relative_to_end(kcat, new_topic, tmp_path):
    """-o -3 (librdkafka asks ListOffsets for the log end, then goes back 3) and -o end."""
    topic = new_topic()
    lines = [f"key{i}:value {i}" for i in range(12)]
    kcat_produce(kcat, topic, lines, tmp_path, partition=0)
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", "-3", partition=0)]
    ic.assert_same_records(got, expected(lines, 0)[9:], what="kcat -o -3")
    assert kcat.consume_json(topic, "-o", "end", partition=0) == []


def test_consume_by_timestamp(kcat, new_topic, tmp_path):
    """Two produce runs 1.2 s apart: -o s@<ts between them> starts exactly at the second run,
    -Q gives its first offset, and e@<ts> stops before it."""
    topic = new_topic()
    first = [f"early{i}:first run {i}" for i in range(6)]
    second = [f"late{i}:second run {i}" for i in range(4)]
    kcat_produce(kcat, topic, first, tmp_path, partition=0)
    time.sleep(0.6)
    boundary = ic.now_ms()
    time.sleep(0.6)
    kcat_produce(kcat, topic, second, tmp_path, partition=0)
    all_json = kcat.consume_json(topic, "-o", "beginning", partition=0)
    assert all(j["ts"] < boundary for j in all_json[:6]) and all(j["ts"] > boundary for j in all_json[6:]), \
        [(j["offset"], j["ts"]) for j in all_json]
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", f"s@{boundary}", partition=0)]
    ic.assert_same_records(got, expected(second, 0, 6), what=f"kcat -o s@{boundary}")
    q = kcat.run(["-Q", "-t", f"{topic}:0:{boundary}", "-m", "10"]).stdout.decode()
    assert f"{topic} [0] offset 6" in q, q


def test_keyed_partitioning(kcat, new_topic, tmp_path):
    """Keys without -p: librdkafka's partitioner spreads them; every key stays in one partition,
    each partition's offsets are 0..n-1 in produce order, nothing is lost or duplicated."""
    topic = new_topic(partitions=3)
    lines = [f"key-{i % 12}:value {i}" for i in range(60)]
    kcat_produce(kcat, topic, lines, tmp_path)
    got = [ic.kcat_record(j) for j in kcat.consume_json(topic, "-o", "beginning")]
    assert len(got) == 60, len(got)
    by_key: dict[bytes, set[int]] = {}
    by_partition: dict[int, list[ic.Rec]] = {}
    for r in got:
        by_key.setdefault(r.key, set()).add(r.partition)
        by_partition.setdefault(r.partition, []).append(r)
    assert all(len(ps) == 1 for ps in by_key.values()), by_key
    assert len(by_partition) >= 2, f"12 keys all landed in one partition: {sorted(by_partition)}"
    sent_order = [line.split(":", 1)[1].encode() for line in lines]
    for p, recs in by_partition.items():
        assert [r.offset for r in recs] == list(range(len(recs))), (p, [r.offset for r in recs])
        values = [r.value for r in recs]
        assert values == sorted(values, key=sent_order.index), (p, values)
    assert sorted(r.value for r in got) == sorted(sent_order)
