"""The ClickHouse schema (docker/clickhouse/schema.sql) and the Metabase cards' SQL
(docker/metabase/provision.py) against a real ClickHouse server: Debian's clickhouse-server
18.16, the oldest version the contract supports, started here on loopback with random ports.

The data are real Collatz chains, some inserted twice (as an at-least-once sink replays them),
including one whose values exceed 2^64; every card must give the exact answer anyway.
Skips (or fails under PETREL_CI=1) when no clickhouse-server binary is installed.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DOCKER / "metabase"))
import provision  # noqa: E402

SERVER = shutil.which("clickhouse-server") or next(
    (p for p in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server") if os.path.exists(p)), None)
BIG_START = 12_327_829_503  # the first start number whose chain peaks above 2^64 (issue 7)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chain(n):
    values = [n]
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        values.append(n)
    return values


class ClickHouse:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"

    def query(self, sql, data=None):
        url = self.url + "?" + urllib.parse.urlencode({"query": sql}) if data is not None else self.url
        body = data if data is not None else sql.encode()
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"ClickHouse rejected:\n{sql}\n{e.read().decode()[:1000]}") from None

    def rows(self, sql):
        text = self.query(sql + "\nFORMAT TabSeparated")
        return [line.split("\t") for line in text.splitlines()]


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    if SERVER is None:
        reason = "clickhouse-server is not installed (apt-get install -y clickhouse-server)"
        if os.environ.get("PETREL_CI") == "1":
            pytest.fail(f"PETREL_CI=1: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("clickhouse")
    http_port, tcp_port = free_port(), free_port()
    (root / "users.xml").write_text("""<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
""")
    (root / "config.xml").write_text(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709120</mark_cache_size>
  <timezone>UTC</timezone>
</yandex>
""")
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([SERVER, f"--config-file={root}/config.xml"], stdout=log,
                            stderr=subprocess.STDOUT, cwd=root)
    ch = ClickHouse(http_port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if ch.query("SELECT 1").strip() == "1":
                break
        except (OSError, AssertionError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("clickhouse-server did not start:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.2)
    yield ch
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def schema_statements():
    text = (DOCKER / "clickhouse" / "schema.sql").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def metabase_sql(card, **values):
    """The card's SQL with its template tags filled in the way Metabase does it."""
    sql = card["query"]
    for name, spec in card["tags"].items():
        value = values.get(name, spec["default"])
        literal = "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'" \
            if spec["type"] == "text" else str(int(value))
        sql = sql.replace("{{" + name + "}}", literal)
    assert "{{" not in sql
    return sql


@pytest.fixture(scope="module")
def loaded(clickhouse):
    for statement in schema_statements() * 2:  # twice: IF NOT EXISTS everywhere
        clickhouse.query(statement)
    starts = list(range(1, 301)) + [27, 837_799, BIG_START]
    chains = {n: chain(n) for n in starts}
    now = int(time.time())

    def insert(numbers):
        lines = []
        for n in numbers:
            for step, v in enumerate(chains[n]):
                lines.append(f"{n}\t{step}\t{float(v)!r}\t{v}\t{now}")
        clickhouse.query("INSERT INTO collatz.data_series (number, step, value, value_text, timestamp) "
                         "FORMAT TabSeparated", ("\n".join(lines) + "\n").encode())

    insert(range(1, 301))
    insert([27, 837_799, BIG_START])
    insert([27, 97, 837_799, BIG_START])      # a replay: the same rows again
    insert(range(250, 301))                  # and another, overlapping the first batch
    return chains


def cards():
    return {c["key"]: c for c in provision.cards_spec("collatz")}


def test_schema_has_the_contract_columns(clickhouse, loaded):
    cols = [r[:2] for r in clickhouse.rows("DESCRIBE TABLE collatz.data_series")]
    assert cols == [["number", "UInt64"], ["step", "UInt32"], ["value", "Float64"],
                    ["value_text", "String"], ["timestamp", "DateTime"]]
    tables = {r[0] for r in clickhouse.rows("SELECT name FROM system.tables WHERE database = 'collatz'")}
    assert {"data_series", "chains", "chains_mv", "passes_through", "passes_through_mv"} <= tables


def test_longest_chain_card(clickhouse, loaded):
    rows = clickhouse.rows(metabase_sql(cards()["longest"]))
    expected = sorted(((len(c) - 1, n) for n, c in loaded.items()), key=lambda t: (-t[0], t[1]))
    assert [(int(s), int(n)) for n, s in rows] == expected[:10]
    assert ["837799", "524"] in rows  # the longest chain below one million


def test_highest_value_card_is_exact_above_2_64(clickhouse, loaded):
    rows = clickhouse.rows(metabase_sql(cards()["highest"]))
    peaks = sorted(((max(c), n) for n, c in loaded.items()), key=lambda t: (-t[0], t[1]))
    top_value, top_number = peaks[0]
    assert top_number == BIG_START and top_value > 2**64
    assert rows[0][:2] == [str(BIG_START), str(top_value)]
    assert [int(r[1]) for r in rows] == [p for p, _ in peaks[:10]]


def test_passes_through_x_card(clickhouse, loaded):
    card = cards()["passes"]
    for x in (9232, 16, 2**64 + 1):
        rows = clickhouse.rows(metabase_sql(card, x=x))
        expected = sorted(n for n, c in loaded.items() if x in c and n != x)[:1000]
        assert [int(r[0]) for r in rows] == expected, x
    big = max(loaded[BIG_START])
    assert [int(r[0]) for r in clickhouse.rows(metabase_sql(card, x=big))] == [BIG_START]
    # Every value above 2^53 in that chain is found exactly, despite Float64 rounding.
    for v in loaded[BIG_START]:
        if v > 2**53:
            rows = clickhouse.rows(metabase_sql(card, x=v))
            assert [int(r[0]) for r in rows] == sorted(n for n, c in loaded.items() if v in c and n != v), v


def test_steps_of_n_card(clickhouse, loaded):
    rows = clickhouse.rows(metabase_sql(cards()["steps"], n=27))
    assert [int(r[0]) for r in rows] == list(range(112))  # 27 takes 111 steps
    assert [float(r[1]) for r in rows] == [float(v) for v in loaded[27]]
    assert max(float(r[1]) for r in rows) == 9232


def test_throughput_card_counts_each_row_once(clickhouse, loaded):
    rows = clickhouse.rows(metabase_sql(cards()["throughput"]))
    assert rows, "no minute in the last day"
    distinct = sum(len(c) for c in loaded.values())
    total = sum(int(r[1]) for r in rows)
    # uniq() is approximate (within a few percent); replays must not be counted.
    assert abs(total - distinct) <= distinct * 0.03, (total, distinct)
    for r in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:00", r[0])


def test_answers_unchanged_after_merges(clickhouse, loaded):
    before = {k: clickhouse.rows(metabase_sql(c)) for k, c in cards().items() if k != "throughput"}
    clickhouse.query("OPTIMIZE TABLE collatz.data_series FINAL")
    clickhouse.query("OPTIMIZE TABLE collatz.chains FINAL")
    after = {k: clickhouse.rows(metabase_sql(c)) for k, c in cards().items() if k != "throughput"}
    assert after == before
    n_rows = int(clickhouse.rows("SELECT count() FROM collatz.data_series")[0][0])
    assert n_rows == sum(len(c) for c in loaded.values())  # ReplacingMergeTree folded the replays


def test_schema_sql_matches_the_sinks_ddl():
    """docker/clickhouse/schema.sql is the contract; the sink's DDL (ClickHouseSchema.swift)
    must create the same tables and columns (compared by table and column names and types)."""
    swift = DOCKER.parent / "Sources" / "Collatz" / "ClickHouseSchema.swift"
    if not swift.exists():
        pytest.skip("Sources/Collatz/ClickHouseSchema.swift does not exist yet")

    def shape(text):
        tables = {}
        for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS \S*?(\w+)\s*\((.*?)\)\s*ENGINE", text, re.S):
            cols = re.findall(r"^\s*(\w+)\s+([A-Za-z]\w*(?:\([^\n]*\))?),?\s*$", body, re.M)
            tables[name] = [(c, t.rstrip(",")) for c, t in cols]
        views = set(re.findall(r"CREATE MATERIALIZED VIEW IF NOT EXISTS \S*?(\w+) TO", text))
        return tables, views

    text = swift.read_text()
    # Fill in the Swift string interpolations: \(database) and the `var x: String { "\(database).t" }`.
    names = {"database": "collatz"}
    for var, table in re.findall(r'var (\w+): String \{ "\\\(database\)\.(\w+)" \}', text):
        names[var] = f"collatz.{table}"
    text = re.sub(r"\\\((\w+)\)", lambda m: names.get(m.group(1), m.group(0)), text)
    ours, theirs = shape((DOCKER / "clickhouse" / "schema.sql").read_text()), shape(text)
    assert ours[0] and ours == theirs
