"""Consumer groups with real clients: confluent-kafka (eager and cooperative-sticky rebalances,
members joining and leaving, commits after processing, every record counted), kafka-python and
aiokafka groups, kcat -G, and the AdminClient group APIs (list, describe, offsets, alter/delete
offsets, delete group).

The broker keeps Kafka's default group.initial.rebalance.delay.ms (3 s): a new group's first
rebalance waits that long, so the timeouts below allow for it."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition

import interop_common as ic

GROUP_TIMEOUT = 45.0  # one rebalance round to settle


def produce_values(topic: str, partitions: int, per_partition: int, tag: str) -> set[bytes]:
    p = Producer({"bootstrap.servers": ic.BOOTSTRAP, "acks": "all", "linger.ms": 5})
    values = set()
    for part in range(partitions):
        for i in range(per_partition):
            v = f"{tag}-{part}-{i}".encode()
            values.add(v)
            p.produce(topic, value=v, partition=part)
    assert p.flush(ic.REQUEST_TIMEOUT) == 0, "produce did not complete"
    return values


class Member:
    """One confluent-kafka consumer; processes (records) each message, then commits it synchronously."""

    def __init__(self, name: str, group: str, topic: str, strategy: str = "range", seen: list | None = None):
        self.name = name
        self.assign_calls = 0
        self.commit_failures = 0
        self.seen = seen if seen is not None else []
        self.c = Consumer({
            "bootstrap.servers": ic.BOOTSTRAP, "group.id": group, "client.id": name,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": strategy,
        })
        self.c.subscribe([topic], on_assign=self._on_assign)
        self.closed = False

    def _on_assign(self, consumer, partitions):
        self.assign_calls += 1

    def poll_once(self, timeout: float = 0.05):
        if self.closed:
            return
        m = self.c.poll(timeout)
        if m is None:
            return
        if m.error():
            return
        self.seen.append((m.partition(), m.offset(), m.value()))
        try:
            self.c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            # As in Kafka: a commit during CompletingRebalance gets REBALANCE_IN_PROGRESS (the
            # cooperative protocol keeps consuming through rebalances); the next commit covers it.
            if e.args[0].code() not in (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID):
                raise
            self.commit_failures += 1

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close()


def poll_until(members: list[Member], predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll_once()
        if predicate():
            return
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; assignments: "
                         + ", ".join(f"{m.name}={sorted(m.assignment())}" for m in members if not m.closed))


def owned_exactly_once(members: list[Member], partitions: int) -> bool:
    owned = [p for m in members if not m.closed for p in m.assignment()]
    return sorted(owned) == list(range(partitions))


def committed(group: str, topic: str, partitions: int, admin) -> dict[int, int]:
    r = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])])
    return {tp.partition: tp.offset for tp in r[group].result(ic.REQUEST_TIMEOUT).topic_partitions}


def test_groups_confluent_four_members_then_join_and_leave(new_topic, admin):
    topic = new_topic(4)
    group = ic.unique_name("g4")
    expected = produce_values(topic, 4, 50, "a")
    seen: list = []
    members = [Member(f"m{i}", group, topic, seen=seen) for i in range(4)]
    try:
        poll_until(members, lambda: all(len(m.assignment()) == 1 for m in members) and owned_exactly_once(members, 4),
                   GROUP_TIMEOUT, "4 members with one partition each")
        poll_until(members, lambda: {v for _, _, v in seen} >= expected, GROUP_TIMEOUT, "the first 200 records")

        # A fifth member joins: a rebalance, after which every partition has exactly one owner.
        fifth = Member("m4", group, topic, seen=seen)
        members.append(fifth)
        expected |= produce_values(topic, 4, 25, "b")
        poll_until(members, lambda: fifth.assign_calls > 0 and owned_exactly_once(members, 4),
                   GROUP_TIMEOUT, "the rebalance after a fifth member joined")

        # One leaves (LeaveGroup on close): the remaining four own one partition each.
        members[0].close()
        expected |= produce_values(topic, 4, 25, "c")
        live = [m for m in members if not m.closed]
        poll_until(live, lambda: all(len(m.assignment()) == 1 for m in live) and owned_exactly_once(live, 4),
                   GROUP_TIMEOUT, "the rebalance after a member left")
        poll_until(live, lambda: {v for _, _, v in seen} >= expected, GROUP_TIMEOUT, "every record")
    finally:
        for m in members:
            m.close()
    values = [v for _, _, v in seen]
    assert set(values) == expected, f"lost {len(expected - set(values))} records"
    duplicates = len(values) - len(set(values))
    # Commits are synchronous after each record and eager rebalances revoke before reassigning: a
    # record is processed twice only if its commit was refused during a rebalance.
    failures = sum(m.commit_failures for m in members)
    assert duplicates <= failures, f"{duplicates} records processed twice, {failures} commits refused"
    offsets = committed(group, topic, 4, admin)
    assert offsets == {p: 100 for p in range(4)}, offsets


def test_groups_confluent_cooperative_sticky(new_topic):
    topic = new_topic(4)
    group = ic.unique_name("coop")
    expected = produce_values(topic, 4, 20, "x")
    seen: list = []
    members = [Member(f"c{i}", group, topic, strategy="cooperative-sticky", seen=seen) for i in range(2)]
    try:
        poll_until(members, lambda: all(len(m.assignment()) == 2 for m in members) and owned_exactly_once(members, 4),
                   GROUP_TIMEOUT, "2 cooperative members with two partitions each")
        third = Member("c2", group, topic, strategy="cooperative-sticky", seen=seen)
        members.append(third)
        poll_until(members, lambda: len(third.assignment()) >= 1 and owned_exactly_once(members, 4),
                   GROUP_TIMEOUT, "the incremental rebalance giving the third member a partition")
        expected |= produce_values(topic, 4, 10, "y")
        poll_until(members, lambda: {v for _, _, v in seen} >= expected, GROUP_TIMEOUT, "every record")
    finally:
        for m in members:
            m.close()
    assert {v for _, _, v in seen} == expected


def test_groups_kafka_python(new_topic, admin):
    from kafka import KafkaConsumer
    topic = new_topic(2)
    group = ic.unique_name("kp")
    expected = produce_values(topic, 2, 20, "kp")

    def consume_all(want: set[bytes]) -> set[bytes]:
        c = KafkaConsumer(topic, bootstrap_servers=ic.BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=1000, session_timeout_ms=10000,
                          heartbeat_interval_ms=500, request_timeout_ms=30000)
        got: set[bytes] = set()
        deadline = time.monotonic() + GROUP_TIMEOUT
        try:
            while not got >= want and time.monotonic() < deadline:
                for msg in c:
                    got.add(msg.value)
                c.commit()
        finally:
            c.close()
        return got

    assert consume_all(expected) >= expected
    assert committed(group, topic, 2, admin) == {0: 20, 1: 20}
    more = produce_values(topic, 2, 5, "kp2")
    # A new consumer in the same group resumes from the committed offsets: only the new records.
    assert consume_all(more) == more


def test_groups_aiokafka(new_topic, admin):
    from aiokafka import AIOKafkaConsumer
    topic = new_topic(2)
    group = ic.unique_name("aio")
    expected = produce_values(topic, 2, 20, "aio")

    async def consume() -> set[bytes]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=ic.BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500)
        await c.start()
        got: set[bytes] = set()
        try:
            deadline = time.monotonic() + GROUP_TIMEOUT
            while not got >= expected and time.monotonic() < deadline:
                for batch in (await c.getmany(timeout_ms=500)).values():
                    got |= {m.value for m in batch}
                await c.commit()
        finally:
            await c.stop()
        return got

    got = asyncio.run(asyncio.wait_for(consume(), GROUP_TIMEOUT + 15))
    assert got == expected
    assert committed(group, topic, 2, admin) == {0: 20, 1: 20}


def test_groups_kcat_balanced_consumer(new_topic, admin, kcat):
    topic = new_topic(2)
    group = ic.unique_name("kcat")
    expected = produce_values(topic, 2, 10, "k")
    # -G: balanced consumer; -e exits once every assigned partition reached its end (librdkafka
    # auto-commits the consumed offsets on close).
    proc = kcat.run(["-G", group, "-o", "beginning", "-e", "-q", "-f", "%s\\n",
                     "-X", "auto.offset.reset=earliest", topic], timeout=60)
    got = {line.encode() for line in proc.stdout.decode().splitlines() if line}
    assert got == expected
    assert committed(group, topic, 2, admin) == {0: 10, 1: 10}


@pytest.mark.tansu_gap("DescribeGroups answers a Stable group with no members")
def test_groups_admin_list_describe_offsets_delete(new_topic, admin):
    from confluent_kafka import ConsumerGroupState
    topic = new_topic(2)
    group = ic.unique_name("adm")
    produce_values(topic, 2, 10, "adm")
    m = Member("adm0", group, topic)
    try:
        poll_until([m], lambda: len(m.assignment()) == 2, GROUP_TIMEOUT, "the member's assignment")
        m.c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 3)], asynchronous=False)

        listed = admin.list_consumer_groups(request_timeout=ic.REQUEST_TIMEOUT).result(ic.REQUEST_TIMEOUT)
        assert group in {g.group_id for g in listed.valid}
        stable = admin.list_consumer_groups(request_timeout=ic.REQUEST_TIMEOUT, states={ConsumerGroupState.STABLE}).result(ic.REQUEST_TIMEOUT)
        assert group in {g.group_id for g in stable.valid}

        d = admin.describe_consumer_groups([group], request_timeout=ic.REQUEST_TIMEOUT)[group].result(ic.REQUEST_TIMEOUT)
        assert d.state == ConsumerGroupState.STABLE
        assert len(d.members) == 1 and d.members[0].client_id == "adm0"
        assert {tp.partition for tp in d.members[0].assignment.topic_partitions} == {0, 1}
        assert committed(group, topic, 2, admin) == {0: 7, 1: 3}

        # A non-empty group cannot be deleted.
        r = admin.delete_consumer_groups([group], request_timeout=ic.REQUEST_TIMEOUT)[group]
        with pytest.raises(Exception, match="NON_EMPTY_GROUP"):
            r.result(ic.REQUEST_TIMEOUT)
    finally:
        m.close()

    ic.wait_until(lambda: admin.describe_consumer_groups([group])[group].result(ic.REQUEST_TIMEOUT).state == ConsumerGroupState.EMPTY,
                  GROUP_TIMEOUT, "the group to become Empty")
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])])[group].result(ic.REQUEST_TIMEOUT)
    assert committed(group, topic, 2, admin) == {0: 1, 1: 3}
    admin.delete_consumer_groups([group], request_timeout=ic.REQUEST_TIMEOUT)[group].result(ic.REQUEST_TIMEOUT)
    assert committed(group, topic, 2, admin) == {0: -1001, 1: -1001}


def test_groups_confluent_static_member_rejoins_without_rebalance(new_topic):
    topic = new_topic(2)
    group = ic.unique_name("static")

    def member(name: str, instance: str) -> Member:
        m = Member.__new__(Member)
        m.name, m.assign_calls, m.commit_failures, m.seen, m.closed = name, 0, 0, [], False
        m.c = Consumer({
            "bootstrap.servers": ic.BOOTSTRAP, "group.id": group, "client.id": name, "group.instance.id": instance,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 30000, "heartbeat.interval.ms": 500,
        })
        m.c.subscribe([topic], on_assign=m._on_assign)
        return m

    a, b = member("sa", "instance-a"), member("sb", "instance-b")
    members = [a, b]
    try:
        poll_until(members, lambda: len(a.assignment()) == 1 and owned_exactly_once(members, 2), GROUP_TIMEOUT, "two static members")
        before = b.assignment()
        calls = a.assign_calls
        # A static member closes without LeaveGroup and comes back with the same group.instance.id
        # within the session timeout: it gets its partition back and the other member sees no rebalance.
        b.close()
        b2 = member("sb2", "instance-b")
        members = [a, b2]
        poll_until(members, lambda: b2.assignment() == before, GROUP_TIMEOUT, "the static member's partition back")
        for _ in range(20):
            for m in members:
                m.poll_once()
        assert a.assign_calls == calls, "the other member was rebalanced"
        assert owned_exactly_once(members, 2)
    finally:
        for m in members:
            m.close()


def test_groups_mixed_clients_share_a_group(new_topic):
    """A confluent-kafka member and a kafka-python member in one group (both offer "range")."""
    from kafka import KafkaConsumer
    topic = new_topic(2)
    group = ic.unique_name("mixed")
    expected = produce_values(topic, 2, 10, "mx")
    seen: list = []
    cm = Member("mixed-confluent", group, topic, seen=seen)
    kp = KafkaConsumer(topic, bootstrap_servers=ic.BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500,
                       client_id="mixed-kafka-python")

    def kp_partitions() -> set[int]:
        return {tp.partition for tp in kp.assignment()}

    def step():
        cm.poll_once()
        for records in kp.poll(timeout_ms=50).values():
            for r in records:
                seen.append((r.partition, r.offset, r.value))
        kp.commit()

    try:
        deadline = time.monotonic() + GROUP_TIMEOUT
        while time.monotonic() < deadline:
            step()
            if len(cm.assignment()) == 1 and len(kp_partitions()) == 1 and cm.assignment() | kp_partitions() == {0, 1} \
                    and {v for _, _, v in seen} >= expected:
                break
        assert len(cm.assignment()) == 1 and kp_partitions() | cm.assignment() == {0, 1}, \
            f"confluent {cm.assignment()}, kafka-python {kp_partitions()}"
        assert {v for _, _, v in seen} == expected
    finally:
        cm.close()
        kp.close()
