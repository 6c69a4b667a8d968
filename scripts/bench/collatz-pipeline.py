#!/usr/bin/env python3
"""End-to-end Collatz pipeline benchmark (a command, not a test).

    scripts/bench/collatz-pipeline.py                          # 60 s, 2 producers, 2 sinks
    scripts/bench/collatz-pipeline.py --seconds 30 --producers 1 --sinks 1
    scripts/bench/collatz-pipeline.py --row-at-a-time 0        # without the row-at-a-time phase
    PETREL_BIN=.build/release/petrel scripts/bench/collatz-pipeline.py

Starts, each on free 127.0.0.1 ports and under one temporary directory:
  - a three-node cluster: `petrel cluster --nodes 3` (RF 3, min.insync.replicas 2);
  - a private clickhouse-server (Debian's; the same config as `petrel demo`), or uses
    --clickhouse-url if given;
then creates a fresh topic (4 partitions, RF 3), starts the sinks (`petrel clickhouse-sink`, one
consumer group, a fresh database), and runs the producers (`petrel collatz-producer`, unlimited
rate) for --seconds. Then it waits (at most --drain-timeout) until ClickHouse holds every record.

Prints: producer records/s (records in the topic / producing time), rows/s landed in ClickHouse
while producing and end to end (every produced row in ClickHouse / time from the first produce to
the last row landed), and the sink group's lag when the producers stop and at the end.

Then, unless --row-at-a-time 0, the old design's approach on the same cluster, topic and ClickHouse
(the sinks stopped, at most 30 s allowed for ClickHouse's background merges to finish first): a
Python consumer (--row-at-a-time-client: kafka-python, as the Python pipeline used, default; or
confluent-kafka) in a group of its own (`matine-rowwise-<run id>`, auto.offset.reset=earliest,
auto-commit) that inserts each record with an HTTP POST of its own, `INSERT INTO
<db>.data_series_rowwise VALUES (...)`, on one keep-alive connection. That table has the sink's
data_series columns (number UInt64, step UInt32, value Float64, value_text String, timestamp
DateTime) on a plain MergeTree without the sink's materialized views, so each insert does less
work than the sink's. It runs for --row-at-a-time seconds from the first record received (the
topic holds millions of records: it never runs dry), then prints: the group join time (not
counted), records consumed, HTTP inserts (failed, reconnects, share of the time spent in them: near
100% means the Kafka client is not the limit), the inserts ClickHouse delayed for too many parts
(system.events DelayedInserts during the phase) and the table's active parts, rows landed (SELECT count()), row-at-a-time rows/s
(rows landed / time from the first record to the last insert), and the ratio of the sinks'
end-to-end rows/s to that, with whether the issue's target (>= 300,000 rows/s end to end and
>= 100x the row-at-a-time approach) is met.

Everything it started is stopped at the end (SIGTERM, SIGKILL after a grace period), also on
Ctrl-C or an error; the row-at-a-time consumer runs in this process and is closed (it leaves its
group) before that.

The petrel binary: PETREL_BIN, else .build/release/petrel, else `swift build -c release --product
petrel` is run first (that takes a while).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def petrel_bin() -> str:
    if os.environ.get("PETREL_BIN"):
        return os.environ["PETREL_BIN"]
    path = os.path.join(REPO, ".build", "release", "petrel")
    if not os.path.exists(path):
        log("building petrel (release): swift build -c release --product petrel")
        subprocess.run(["swift", "build", "-c", "release", "--product", "petrel"], cwd=REPO, check=True)
    return path


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_range(count: int, avoid: set) -> int:
    import random
    for _ in range(500):
        base = random.randint(20000, 40000)
        ports = set(range(base, base + count))
        if not ports & avoid and all(port_free(p) for p in ports):
            return base
    sys.exit("no free port range")


def clickhouse_query(url: str, sql: str, timeout: float = 10) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def clickhouse_server_binary() -> str:
    """Debian's clickhouse-server, or exits the script saying what to install."""
    binary = shutil.which("clickhouse-server") or next(
        (p for p in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server") if os.path.exists(p)), None)
    if not binary:
        sys.exit("clickhouse-server is not installed (apt-get install -y clickhouse-server), or pass --clickhouse-url")
    return binary


def report_stopped(children: "Children", work: str, keep: bool) -> None:
    """After the children were stopped: says whether any survived, then keeps or removes work."""
    left = [f"{n} (pid {p.pid})" for n, p, _ in children.procs if p.poll() is None]
    log("stopped everything" + (f"; STILL RUNNING: {left}" if left else ""))
    if keep:
        log(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def wait_clickhouse(url: str, timeout: float = 60) -> str:
    """Waits until ClickHouse answers at url (exits the script after timeout); its version."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            clickhouse_query(url, "SELECT 1", timeout=2)
            return clickhouse_query(url, "SELECT version()").strip()
        except Exception:
            if time.monotonic() > deadline:
                sys.exit(f"ClickHouse does not answer at {url}")
            time.sleep(0.2)


class Children:
    """Child processes in sessions of their own (a Ctrl-C reaches only this script), stopped in
    reverse start order."""

    def __init__(self, work: str):
        self.work = work
        self.procs = []  # (name, Popen, log file)

    def start(self, name: str, argv: list, env=None) -> subprocess.Popen:
        path = os.path.join(self.work, f"{name}.log")
        out = open(path, "ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        self.procs.append((name, proc, path))
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 30) -> None:
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            name = next((n for n, p, _ in self.procs if p is proc), "?")
            log(f"{name} (pid {proc.pid}) still running {grace:.0f} s after SIGTERM: SIGKILL")
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for _, proc, _ in reversed(self.procs):
            self.stop(proc)

    def output(self, name: str) -> str:
        for n, _, path in self.procs:
            if n == name:
                with open(path, errors="replace") as f:
                    return f.read()
        return ""


def clickhouse_config(directory: str, port: int) -> str:
    os.makedirs(directory, exist_ok=True)
    d = directory
    with open(os.path.join(d, "config.xml"), "w") as f:
        f.write(f"""<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
    <http_port>{port}</http_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <timezone>UTC</timezone>
</yandex>
""")
    with open(os.path.join(d, "users.xml"), "w") as f:
        f.write("""<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
""")
    return os.path.join(d, "config.xml")


def group_offsets(petrel: str, bootstrap: str, group: str, topic: str):
    """(sum of log-end offsets, sum of lag) of `group` on `topic`, from `petrel groups --describe`."""
    out = subprocess.run([petrel, "groups", "--bootstrap-server", bootstrap, "--describe", "--group", group],
                         capture_output=True, text=True, timeout=60).stdout
    end = lag = 0
    rows = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == group and f[1] == topic:
            rows += 1
            end += int(f[4]) if f[4].isdigit() else 0
            lag += int(f[5]) if f[5].isdigit() else int(f[4]) if f[4].isdigit() else 0
    return (end, lag) if rows else (None, None)


# The old design's approach, for comparison: one HTTP request per row ---------------------------

ROWWISE_CLIENTS = ("kafka-python", "confluent-kafka")


def rowwise_table_sql(table: str) -> str:
    """The sink's data_series columns (Sources/Collatz/ClickHouseSchema.swift: exact value as text
    next to a Float64, since 18.16 has no UInt128), on a plain MergeTree, without the views."""
    return (f"CREATE TABLE IF NOT EXISTS {table} (number UInt64, step UInt32, value Float64, "
            f"value_text String, timestamp DateTime) ENGINE = MergeTree() ORDER BY (number, step)")


class _KafkaPythonSource:
    """kafka-python, as the Python pipeline used: KafkaConsumer with its default auto-commit."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        from kafka import KafkaConsumer
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), group_id=group,
                                      auto_offset_reset="earliest", enable_auto_commit=True,
                                      client_id="collatz-bench-rowwise")

    def poll(self):
        """A list of (value bytes, timestamp ms)."""
        out = []
        for records in self.consumer.poll(timeout_ms=100).values():
            out.extend((r.value, r.timestamp) for r in records)
        return out

    def close(self) -> None:
        self.consumer.close()


class _ConfluentSource:
    """confluent-kafka (librdkafka), auto-commit as librdkafka's default."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        from confluent_kafka import Consumer
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                                  "client.id": "collatz-bench-rowwise"})
        self.consumer.subscribe([topic])

    def poll(self):
        out = []
        for m in self.consumer.consume(num_messages=500, timeout=0.1):
            if m.error() is None:
                out.append((m.value(), m.timestamp()[1]))
        return out

    def close(self) -> None:
        self.consumer.close()


class _RowInserter:
    """One `INSERT INTO table VALUES (...)` per HTTP POST, on one keep-alive connection (reopened
    when ClickHouse closes an idle one)."""

    def __init__(self, ch_url: str, table: str):
        u = urllib.parse.urlsplit(ch_url)
        self.host, self.port, self.table = u.hostname, u.port or 8123, table
        self.conn = None
        self.requests = self.errors = self.reconnects = 0
        self.first_error = None

    def _post(self, body: bytes):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.conn.request("POST", "/", body=body, headers={"Content-Type": "text/plain"})
        r = self.conn.getresponse()
        return r.status, r.read()

    def insert(self, number: int, step: int, value: int, timestamp: int) -> None:
        body = (f"INSERT INTO {self.table} VALUES "
                f"({number},{step},{float(value)!r},'{value}',{timestamp})").encode()
        self.requests += 1
        try:
            status, answer = self._post(body)
        except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError,
                ConnectionResetError):
            # An idle keep-alive connection the server closed before reading this request.
            self.close()
            self.reconnects += 1
            status, answer = self._post(body)
        if status != 200:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"HTTP {status}: {answer.decode(errors='replace').strip()[:300]}"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def row_at_a_time(client: str, bootstrap: str, topic: str, group: str, ch_url: str, table: str,
                  seconds: float, join_timeout: float = 60) -> dict:
    """The original Python pipeline's consumer: each record is decoded and inserted by an HTTP
    request of its own. Runs for `seconds` from the first record received (after at most
    `join_timeout` for the group join and first fetch), then closes the consumer and the
    connection, also on an error or Ctrl-C. Returns counters and times; the rows landed are
    counted by the caller."""
    source = (_KafkaPythonSource if client == "kafka-python" else _ConfluentSource)(bootstrap, topic, group)
    inserter = _RowInserter(ch_url, table)
    t_start = time.monotonic()
    t_first = t_end = None
    records = 0
    http_s = 0.0
    try:
        deadline = t_start + join_timeout
        while time.monotonic() < deadline:
            batch = source.poll()
            if batch and t_first is None:
                t_first = time.monotonic()
                deadline = t_first + seconds
            for value, ts_ms in batch:
                if time.monotonic() >= deadline:
                    break
                rec = json.loads(value)
                records += 1
                h = time.monotonic()
                # int(): the values go into SQL text; anything but an integer is refused here.
                inserter.insert(int(rec["Number"]), int(rec["Step"]), int(rec["Value"]), max(0, ts_ms) // 1000)
                http_s += time.monotonic() - h
        t_end = time.monotonic()
    finally:
        inserter.close()
        source.close()
    return {"records": records, "requests": inserter.requests, "errors": inserter.errors,
            "reconnects": inserter.reconnects, "first_error": inserter.first_error,
            "join_s": (t_first - t_start) if t_first is not None else None,
            "window_s": (t_end - t_first) if t_first is not None else 0.0, "http_s": http_s}


def wait_for_merges(ch_url: str, timeout: float) -> int:
    """Waits (at most `timeout`) until ClickHouse runs no background merge; the merges left."""
    deadline = time.monotonic() + timeout
    while True:
        left = int(clickhouse_query(ch_url, "SELECT count() FROM system.merges").strip())
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="how long the producers run (default 60)")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--sinks", type=int, default=2)
    ap.add_argument("--rate", type=float, default=0, help="records/s per producer, 0 = unlimited (default)")
    ap.add_argument("--batch-rows", type=int, default=100000, help="sink flush size (default 100000)")
    ap.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for ClickHouse to hold every record")
    ap.add_argument("--clickhouse-url", help="use this ClickHouse instead of starting one")
    ap.add_argument("--row-at-a-time", type=float, default=30, metavar="SECONDS",
                    help="then run the old design's consumer (one HTTP INSERT per row) for SECONDS "
                         "(default 30; 0 = skip)")
    ap.add_argument("--row-at-a-time-client", choices=ROWWISE_CLIENTS, default="kafka-python",
                    help="Kafka client of that consumer (default kafka-python, as the Python pipeline)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    args = ap.parse_args()

    petrel = petrel_bin()
    work = tempfile.mkdtemp(prefix="petrel-collatz-bench-")
    children = Children(work)
    interrupted = []

    def on_signal(signo, _frame):
        interrupted.append(signo)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(args, petrel, work, children)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    finally:
        children.stop_all()
        report_stopped(children, work, args.keep)


def run(args, petrel: str, work: str, children: Children) -> int:
    # ClickHouse.
    if args.clickhouse_url:
        ch_url = args.clickhouse_url
    else:
        binary = clickhouse_server_binary()
        port = free_port()
        config = clickhouse_config(os.path.join(work, "clickhouse"), port)
        children.start("clickhouse", [binary, f"--config-file={config}"])
        ch_url = f"http://127.0.0.1:{port}"
    version = wait_clickhouse(ch_url)
    log(f"ClickHouse {version} at {ch_url}")

    # The cluster.
    base = free_range(3, set())
    controller = free_range(3, set(range(base, base + 3)))
    cluster = children.start("cluster", [petrel, "cluster", "--nodes", "3", "--data-dir", os.path.join(work, "cluster"),
                                         "--base-port", str(base), "--controller-base-port", str(controller),
                                         "--log-level", "warning"])
    bootstrap = ",".join(f"127.0.0.1:{base + i}" for i in range(3))
    deadline = time.monotonic() + 90
    while bootstrap not in children.output("cluster"):
        if cluster.poll() is not None or time.monotonic() > deadline:
            sys.exit("the cluster did not start:\n" + children.output("cluster")[-3000:])
        time.sleep(0.2)
    log(f"cluster up: {bootstrap}")

    run_id = uuid.uuid4().hex[:8]
    topic = f"conjecture.bench-{run_id}"
    group = f"collatz-bench-{run_id}"
    database = f"bench_{run_id}"
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run([petrel, "topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
                            "--partitions", "4", "--replication-factor", "3"], capture_output=True, text=True)
        if r.returncode == 0:
            break
        if time.monotonic() > deadline:
            sys.exit(f"cannot create {topic}: {r.stderr}")
        time.sleep(0.5)
    log(f"topic {topic}: 4 partitions, RF 3")

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PETREL_", "CLICKHOUSE_", "SINK_", "COLLATZ_", "KAFKA_"))}
    env["PETREL_LOG_LEVEL"] = "info"
    sinks = []
    for i in range(args.sinks):
        sinks.append(children.start(f"sink-{i + 1}", [
            petrel, "clickhouse-sink", "--bootstrap-server", bootstrap, "--topic", topic, "--group", group,
            "--clickhouse-url", ch_url, "--clickhouse-database", database, "--batch-rows", str(args.batch_rows),
            "--dead-letter-topic", f"{topic}.dead-letter"], env=env))
    # Wait for the sinks to have created the tables and joined the group.
    deadline = time.monotonic() + 60
    while True:
        try:
            clickhouse_query(ch_url, f"SELECT count() FROM {database}.data_series")
            break
        except Exception:
            if time.monotonic() > deadline:
                sys.exit("the sinks did not create their tables:\n" + children.output("sink-1")[-3000:])
            time.sleep(0.2)
    time.sleep(3)

    def rows() -> int:
        return int(clickhouse_query(ch_url, f"SELECT count() FROM {database}.data_series").strip())

    log(f"{args.producers} producer(s) for {args.seconds:.0f} s, {args.sinks} sink(s) (group {group}, database {database})")
    producers = []
    t0 = time.monotonic()
    for i in range(args.producers):
        producers.append(children.start(f"producer-{i + 1}", [
            petrel, "collatz-producer", "--bootstrap-server", bootstrap, "--topic", topic,
            "--rate", str(args.rate)], env=env))
    samples = []
    while time.monotonic() - t0 < args.seconds:
        time.sleep(min(5, max(0.1, args.seconds - (time.monotonic() - t0))))
        samples.append((time.monotonic() - t0, rows()))
        log(f"  t={samples[-1][0]:5.1f} s  rows in ClickHouse: {samples[-1][1]:,}")
    for p in producers:
        children.stop(p)
    t1 = time.monotonic()
    rows_t1 = rows()
    produced = 0
    for i in range(args.producers):
        m = [re.search(r"\brecords=(\d+)", line).group(1) for line in children.output(f"producer-{i + 1}").splitlines()
             if "collatz-producer: stopped" in line and re.search(r"\brecords=(\d+)", line)]
        produced += int(m[-1]) if m else 0
    end_t1, lag_t1 = group_offsets(petrel, bootstrap, group, topic)
    if end_t1 is not None and end_t1 != produced:
        log(f"note: producers report {produced:,} records, the topic holds {end_t1:,}")
        produced = max(produced, end_t1)

    # Drain.
    t2 = None
    deadline = time.monotonic() + args.drain_timeout
    last = rows_t1
    while time.monotonic() < deadline:
        last = rows()
        if last >= produced:
            t2 = time.monotonic()
            break
        time.sleep(0.25)
    final_rows = int(clickhouse_query(ch_url, f"SELECT count() FROM {database}.data_series FINAL").strip())
    time.sleep(2)  # the sinks commit after each acknowledged insert
    _, lag_end = group_offsets(petrel, bootstrap, group, topic)
    for s in sinks:
        children.stop(s)

    produce_s = t1 - t0
    print()
    print(f"Collatz pipeline, {args.producers} producer(s) -> 3-node Petrel cluster (4 partitions, RF 3, acks=all) "
          f"-> {args.sinks} sink(s) -> ClickHouse {version}")
    print(f"  petrel binary                      {petrel}")
    print(f"  producing time                     {produce_s:.1f} s")
    print(f"  records produced                   {produced:,}")
    print(f"  producer records/s                 {produced / produce_s:,.0f}")
    print(f"  rows in ClickHouse when producers stopped  {rows_t1:,}  ({rows_t1 / produce_s:,.0f} rows/s while producing)")
    print(f"  sink lag when producers stopped    {format(lag_t1, ',') if lag_t1 is not None else '?'} records")
    if t2 is not None:
        print(f"  all rows landed after              {t2 - t0:.1f} s (drain {t2 - t1:.1f} s)")
        print(f"  rows/s end to end                  {produced / (t2 - t0):,.0f}")
    else:
        print(f"  NOT DRAINED within {args.drain_timeout:.0f} s: {last:,} of {produced:,} rows")
    print(f"  distinct (number, step) rows       {final_rows:,} (FINAL)")
    print(f"  sink lag at the end                {format(lag_end, ',') if lag_end is not None else '?'} records")
    sys.stdout.flush()
    ok = t2 is not None
    if args.row_at_a_time > 0:
        e2e = produced / (t2 - t0) if t2 is not None else None
        ok = run_row_at_a_time(args, ch_url, bootstrap, topic, database, run_id, e2e) and ok
    return 0 if ok else 1


def run_row_at_a_time(args, ch_url: str, bootstrap: str, topic: str, database: str, run_id: str, e2e) -> bool:
    """The comparison phase: the old design's consumer on the same cluster and topic."""
    table = f"{database}.data_series_rowwise"
    group = f"matine-rowwise-{run_id}"
    clickhouse_query(ch_url, rowwise_table_sql(table))
    left = wait_for_merges(ch_url, 30)
    log(f"row at a time: {args.row_at_a_time_client} consumer (group {group}) for {args.row_at_a_time:.0f} s, "
        f"one HTTP INSERT per record into {table}"
        + (f" ({left} ClickHouse merges still running)" if left else ""))
    def delayed_inserts() -> int:
        out = clickhouse_query(ch_url, "SELECT sum(value) FROM system.events WHERE event = 'DelayedInserts'")
        return int(out.strip() or 0)

    delayed0 = delayed_inserts()
    try:
        r = row_at_a_time(args.row_at_a_time_client, bootstrap, topic, group, ch_url, table, args.row_at_a_time)
    except Exception as e:
        print(f"\nRow at a time: FAILED: {type(e).__name__}: {e}")
        return False
    landed = int(clickhouse_query(ch_url, f"SELECT count() FROM {table}").strip())
    delayed = delayed_inserts() - delayed0
    db, name = table.split(".")
    parts = int(clickhouse_query(ch_url, f"SELECT count() FROM system.parts WHERE database = '{db}' "
                                         f"AND table = '{name}' AND active").strip())
    window = r["window_s"]
    rate = landed / window if window > 0 else 0.0
    print()
    print(f"Row at a time (the old design's approach), same cluster, topic and ClickHouse: "
          f"{args.row_at_a_time_client} consumer -> one HTTP POST per row (keep-alive)")
    if r["join_s"] is None:
        print(f"  NO RECORD received within 60 s")
        return False
    print(f"  group join and first fetch         {r['join_s']:.1f} s (not counted)")
    print(f"  records consumed                   {r['records']:,} in {window:.1f} s")
    print(f"  HTTP inserts                       {r['requests']:,} ({r['errors']:,} failed, "
          f"{r['reconnects']:,} reconnects); {100 * r['http_s'] / window if window else 0:.0f}% of the time in them")
    print(f"  inserts ClickHouse delayed         {delayed:,} (too many parts); {parts:,} active parts at the end")
    if r["first_error"]:
        print(f"  first failed insert                {r['first_error']}")
    print(f"  rows landed                        {landed:,}")
    print(f"  row-at-a-time rows/s               {rate:,.1f}")
    if e2e is not None and rate > 0:
        ratio = e2e / rate
        print(f"  Petrel sink end-to-end rows/s / row-at-a-time rows/s   {e2e:,.0f} / {rate:,.1f} = {ratio:,.0f}x")
        print(f"  target (>= 300,000 rows/s end to end, >= 100x)         "
              f"{'met' if e2e >= 300000 and ratio >= 100 else 'NOT met'}")
    else:
        print(f"  ratio                              ? (the sinks did not drain)" if e2e is None else
              f"  ratio                              ? (no row landed)")
    return landed > 0


if __name__ == "__main__":
    sys.exit(main())
