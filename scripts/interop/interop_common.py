"""Shared helpers for the interop suite: the broker under test, kcat builds, topics, records.

Environment:
  KAFKA_BOOTSTRAP       host:port of the broker under test (required)
  BROKER_KIND           petrel | tansu | (empty).  `tansu` skips the checks Tansu 0.6.0 is known
                        to fail (marked `tansu_gap`); `petrel` turns every skip into a failure.
  KCAT                  kcat binary (default: `kcat` on PATH, Debian's 1.7.1 + librdkafka 2.0.2)
  KCAT_LIBRDKAFKA_DIR   directory holding a `librdkafka.so.1` for the "new" kcat build
                        (default: a symlink to the librdkafka bundled in the confluent-kafka wheel)
  INTEROP_TEST_TIMEOUT  seconds allowed per test (default 90)
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from typing import Iterable

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "")
BROKER_KIND = os.environ.get("BROKER_KIND", "").strip().lower()
TEST_TIMEOUT = float(os.environ.get("INTEROP_TEST_TIMEOUT", "90"))

# Per-call bounds, well inside TEST_TIMEOUT.
REQUEST_TIMEOUT = 15.0   # one admin request / one flush
KCAT_TIMEOUT = 30.0      # one kcat process


# --------------------------------------------------------------------------------------------
# Unique names


def unique_name(prefix: str) -> str:
    prefix = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-")[:80]
    return f"interop-{prefix}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# Records


@dataclasses.dataclass(frozen=True)
class Rec:
    """One record as a client saw it; `None` for a field the check does not compare."""

    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int | None = None

    def short(self) -> str:
        return (f"p{self.partition}@{self.offset} key={self.key!r} value={self.value!r} "
                f"headers={list(self.headers)} ts={self.timestamp}")


def make_records(n: int, tag: str, *, ts_base: int | None = None, nulls: bool = True,
                 partition: int | None = None) -> list[Rec]:
    """N distinct records: binary-safe values, some null keys and values, 0-3 headers
    (including an empty value and a repeated key, both legal in Kafka), explicit timestamps."""
    out = []
    for i in range(n):
        key = None if nulls and i % 7 == 3 else f"{tag}-key-{i}".encode()
        if nulls and i % 11 == 5 and key is not None:  # null value (tombstone); never both null
            value = None
        else:
            value = f"{tag}-value-{i}-".encode() + bytes([i % 256, 0, 255]) + "é🙂".encode() + b"x" * (i % 50)
        headers: list[tuple[str, bytes]] = []
        if i % 4 >= 1:
            headers.append(("seq", str(i).encode()))
        if i % 4 >= 2:
            headers.append(("empty", b""))
        if i % 4 >= 3:
            headers += [("dup", b"first"), ("dup", b"second")]
        ts = None if ts_base is None else ts_base + i
        out.append(Rec(partition, None, key, value, tuple(headers), ts))
    return out


def normalize_headers(headers) -> tuple[tuple[str, bytes], ...]:
    if not headers:
        return ()
    out = []
    for k, v in headers:
        if isinstance(k, bytes):
            k = k.decode()
        if isinstance(v, str):
            v = v.encode()
        out.append((k, b"" if v is None else v))
    return tuple(out)


def assert_same_records(got: list[Rec], expected: list[Rec], *, what: str = "") -> None:
    """Exact comparison, field by field, with a readable first difference."""
    prefix = f"{what}: " if what else ""
    for i, (g, e) in enumerate(zip(got, expected)):
        for field in ("partition", "offset", "key", "value", "headers", "timestamp"):
            ev = getattr(e, field)
            if ev is None and field in ("partition", "offset", "timestamp"):
                continue
            gv = getattr(g, field)
            assert gv == ev, f"{prefix}record #{i} differs in {field}: got {gv!r}, expected {ev!r}\n  got: {g.short()}\n  exp: {e.short()}"
    assert len(got) == len(expected), (
        f"{prefix}got {len(got)} records, expected {len(expected)}; "
        f"extra/missing starts at: {(got[len(expected)] if len(got) > len(expected) else expected[len(got)]).short()}")


def with_offsets(records: Iterable[Rec], first_offset: int = 0, partition: int | None = None) -> list[Rec]:
    return [dataclasses.replace(r, offset=first_offset + i, partition=partition if partition is not None else r.partition)
            for i, r in enumerate(records)]


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - report the last one
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Topics (through confluent-kafka's AdminClient; the admin checks themselves are in the tests)


def confluent_admin():
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000})


def wait_topic_ready(admin, topic: str, partitions: int, timeout: float = 30.0):
    """Until metadata shows the topic with exactly `partitions` partitions, each with a leader."""
    def ready():
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None or len(t.partitions) != partitions:
            return None
        if any(p.leader < 0 or p.error is not None for p in t.partitions.values()):
            return None
        return md
    return wait_until(ready, timeout, f"topic {topic} with {partitions} partitions and leaders")


def create_topic(admin, topic: str, partitions: int = 1, config: dict | None = None) -> str:
    from confluent_kafka.admin import NewTopic
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=REQUEST_TIMEOUT, operation_timeout=REQUEST_TIMEOUT)
    futures[topic].result(REQUEST_TIMEOUT + 5)
    wait_topic_ready(admin, topic, partitions)
    return topic


# --------------------------------------------------------------------------------------------
# kcat builds


class Kcat:
    """One kcat build: the same Debian kcat 1.7.1 binary, with its own librdkafka (2.0.2) or
    with the librdkafka 2.16 from the confluent-kafka wheel via LD_LIBRARY_PATH."""

    def __init__(self, name: str, binary: str, libdir: str | None):
        self.name = name
        self.binary = binary
        self.libdir = libdir
        self.env = dict(os.environ)
        if libdir:
            self.env["LD_LIBRARY_PATH"] = libdir + (":" + self.env["LD_LIBRARY_PATH"] if self.env.get("LD_LIBRARY_PATH") else "")
        self._version: str | None = None

    @property
    def librdkafka_version(self) -> str:
        if self._version is None:
            out = subprocess.run([self.binary, "-V"], env=self.env, capture_output=True, text=True, timeout=10)
            m = re.search(r"librdkafka (\d+\.\d+\.\d+)", out.stdout + out.stderr)
            self._version = m.group(1) if m else "unknown"
        return self._version

    def run(self, args: list[str], *, input: bytes | None = None, timeout: float = KCAT_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.binary, "-b", BOOTSTRAP, *args]
        try:
            proc = subprocess.run(cmd, input=input, env=self.env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"kcat ({self.name}) timed out after {timeout:.0f}s: {' '.join(cmd)}\n"
                f"stdout: {(e.stdout or b'')[-2000:]!r}\nstderr: {(e.stderr or b'')[-4000:].decode(errors='replace')}") from None
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kcat ({self.name}) exited {proc.returncode}: {' '.join(cmd)}\n"
                f"stderr: {proc.stderr[-4000:].decode(errors='replace')}")
        return proc

    def consume_json(self, topic: str, *extra: str, partition: int | None = None,
                     timeout: float = KCAT_TIMEOUT) -> list[dict]:
        args = ["-C", "-t", topic, "-e", "-J", "-q", "-m", "10"]
        if partition is not None:
            args += ["-p", str(partition)]
        proc = self.run(args + list(extra), timeout=timeout)
        return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


def system_kcat_binary() -> str | None:
    return os.environ.get("KCAT") or shutil.which("kcat")


def wheel_librdkafka_dir(workdir: str) -> str | None:
    """A directory with `librdkafka.so.1` -> the librdkafka bundled with confluent-kafka."""
    if os.environ.get("KCAT_LIBRDKAFKA_DIR"):
        return os.environ["KCAT_LIBRDKAFKA_DIR"]
    try:
        import confluent_kafka
    except ImportError:
        return None
    site = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    libs = sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka*.so*")))
    if not libs:
        return None
    d = os.path.join(workdir, "librdkafka-wheel")
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "librdkafka.so.1")
    if not os.path.lexists(link):
        os.symlink(libs[0], link)
    return d


def kcat_record(j: dict) -> Rec:
    """A kcat -J line as a Rec (kcat prints keys/payloads as strings, headers as a flat list)."""
    h = j.get("headers") or []
    headers = tuple((h[i], (h[i + 1] or "").encode()) for i in range(0, len(h), 2))
    key = j.get("key")
    payload = j.get("payload")
    return Rec(j["partition"], j["offset"], None if key is None else key.encode(),
               None if payload is None else payload.encode(), headers, j.get("ts"))


def make_tempdir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)
