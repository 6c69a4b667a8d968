"""docker/metabase/provision.py against a local stub of the Metabase endpoints it calls.

No Metabase runs here (no Docker engine), so this checks the provisioning logic only: the calls
made, their payloads, and that a second run changes nothing. The stub: metabase_stub.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metabase_stub import MetabaseStub  # noqa: E402

DOCKER = Path(__file__).resolve().parents[1]
SCRIPT = DOCKER / "metabase" / "provision.py"
ADMIN_EMAIL = "admin@petrel.local"
ADMIN_PASSWORD = "correct-horse-battery-staple-42"
CLICKHOUSE_PASSWORD = "ch-secret-7f3a"


@pytest.fixture
def stub():
    s = MetabaseStub(ready_after=2).start()
    yield s
    s.stop()


@pytest.fixture
def secrets(tmp_path):
    admin = tmp_path / "metabase_admin_password"
    admin.write_text(ADMIN_PASSWORD + "\n")  # a trailing newline, as `echo` would leave
    ch = tmp_path / "clickhouse_password"
    ch.write_text(CLICKHOUSE_PASSWORD)
    return {"admin": admin, "clickhouse": ch}


def run(stub, secrets, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MB_URL": stub.url,
        "MB_ADMIN_EMAIL": ADMIN_EMAIL,
        "MB_ADMIN_PASSWORD_FILE": str(secrets["admin"]),
        "MB_WAIT_SECONDS": "30",
        "MB_POLL_SECONDS": "0.05",
        "CLICKHOUSE_HOST": "clickhouse",
        "CLICKHOUSE_PORT": "8123",
        "CLICKHOUSE_USER": "petrel",
        "CLICKHOUSE_PASSWORD_FILE": str(secrets["clickhouse"]),
        "CLICKHOUSE_DATABASE": "collatz",
        "CLICKHOUSE_URL": stub.url,  # the stub also stands in for ClickHouse's HTTP interface
    }
    env.update(extra)
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=120)
    return done


def bodies(stub, method, path):
    return [b for m, p, b in stub.calls if m == method and p == path]


def test_first_run_sets_up_admin_database_cards_and_dashboard(stub, secrets):
    done = run(stub, secrets)
    assert done.returncode == 0, done.stdout + done.stderr

    # Waited for health, then the setup-token flow.
    assert stub.health_calls >= 3
    setup = bodies(stub, "POST", "/api/setup")
    assert len(setup) == 1
    assert setup[0]["token"] == stub.setup_token
    assert setup[0]["user"]["email"] == ADMIN_EMAIL
    assert setup[0]["user"]["password"] == ADMIN_PASSWORD  # newline from the file dropped

    # The ClickHouse database is created first (Metabase checks the connection), as petrel.
    import base64
    auth = "Basic " + base64.b64encode(f"petrel:{CLICKHOUSE_PASSWORD}".encode()).decode()
    assert stub.clickhouse_queries == [(auth, "CREATE DATABASE IF NOT EXISTS collatz")]

    # The ClickHouse database in Metabase, with the password from its file.
    dbs = bodies(stub, "POST", "/api/database")
    assert len(dbs) == 1
    assert dbs[0]["engine"] == "clickhouse"
    assert dbs[0]["details"] == {"host": "clickhouse", "port": 8123, "user": "petrel",
                                 "dbname": "collatz", "ssl": False,
                                 "password": CLICKHOUSE_PASSWORD}
    db_id = next(iter(stub.databases))

    # Five native-SQL cards on that database.
    cards = bodies(stub, "POST", "/api/card")
    names = [c["name"] for c in cards]
    assert names == ["Collatz: longest chains", "Collatz: highest values",
                     "Collatz: rows per minute", "Collatz: numbers passing through x",
                     "Collatz: steps of n"]
    for c in cards:
        assert c["dataset_query"]["type"] == "native"
        assert c["dataset_query"]["database"] == db_id
        assert "collatz." in c["dataset_query"]["native"]["query"]
    by_name = {c["name"]: c for c in cards}
    passes = by_name["Collatz: numbers passing through x"]["dataset_query"]["native"]
    assert "{{x}}" in passes["query"]
    assert passes["template-tags"]["x"]["type"] == "text"
    steps = by_name["Collatz: steps of n"]
    assert steps["display"] == "line"
    assert steps["dataset_query"]["native"]["template-tags"]["n"]["type"] == "number"
    assert steps["visualization_settings"]["graph.dimensions"] == ["step"]

    # One dashboard holding all five, with the x and n filters wired to the template tags.
    assert len(bodies(stub, "POST", "/api/dashboard")) == 1
    dash = next(iter(stub.dashboards.values()))
    assert sorted(dc["card_id"] for dc in dash["dashcards"]) == sorted(stub.cards)
    assert {p["slug"] for p in dash["parameters"]} == {"x", "n"}
    targets = sorted(m["target"][1][1] for dc in dash["dashcards"] for m in dc["parameter_mappings"])
    assert targets == ["n", "x"]
    assert "created" in done.stdout


def test_second_run_changes_nothing(stub, secrets):
    first = run(stub, secrets)
    assert first.returncode == 0, first.stdout + first.stderr
    snapshot = (dict(stub.databases), dict(stub.cards), dict(stub.dashboards))
    calls_before = len(stub.calls)

    second = run(stub, secrets)
    assert second.returncode == 0, second.stdout + second.stderr
    later = stub.calls[calls_before:]
    writes = [(m, p) for m, p, _ in later if m in ("POST", "PUT", "DELETE") and p != "/"]
    assert writes == [("POST", "/api/session")], writes  # it logs in, and only reads after that
    # (and re-runs the idempotent CREATE DATABASE IF NOT EXISTS on ClickHouse)
    assert (dict(stub.databases), dict(stub.cards), dict(stub.dashboards)) == snapshot
    assert len(stub.cards) == 5 and len(stub.dashboards) == 1 and len(stub.databases) == 1
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert second.stdout.count("unchanged") == 1 + 1 + 5 + 1  # admin, database, cards, dashboard


def test_drifted_card_is_updated_in_place_not_duplicated(stub, secrets):
    assert run(stub, secrets).returncode == 0
    card_id, card = next((i, c) for i, c in stub.cards.items() if c["name"] == "Collatz: steps of n")
    card["dataset_query"]["native"]["query"] = "SELECT 1"
    card["display"] = "table"
    calls_before = len(stub.calls)

    done = run(stub, secrets)
    assert done.returncode == 0, done.stdout + done.stderr
    writes = [(m, p) for m, p, _ in stub.calls[calls_before:] if m in ("POST", "PUT") and p != "/"]
    assert writes == [("POST", "/api/session"), ("PUT", f"/api/card/{card_id}")]
    assert len(stub.cards) == 5
    assert stub.cards[card_id]["display"] == "line"
    assert "WHERE number = {{n}}" in stub.cards[card_id]["dataset_query"]["native"]["query"]


def test_removed_dashcard_is_restored(stub, secrets):
    assert run(stub, secrets).returncode == 0
    dash = next(iter(stub.dashboards.values()))
    kept_ids = {dc["id"] for dc in dash["dashcards"][1:]}
    dash["dashcards"] = dash["dashcards"][1:]
    calls_before = len(stub.calls)

    assert run(stub, secrets).returncode == 0
    writes = [(m, p) for m, p, _ in stub.calls[calls_before:] if m in ("POST", "PUT") and p != "/"]
    assert writes == [("POST", "/api/session"), ("PUT", f"/api/dashboard/{dash['id']}")]
    assert len(dash["dashcards"]) == 5
    assert kept_ids <= {dc["id"] for dc in dash["dashcards"]}  # existing dashcards kept their ids


def test_already_set_up_metabase_logs_in_instead(secrets):
    stub = MetabaseStub(admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD).start()
    try:
        done = run(stub, secrets)
        assert done.returncode == 0, done.stdout + done.stderr
        assert bodies(stub, "POST", "/api/setup") == []
        assert bodies(stub, "POST", "/api/session") == [
            {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}]
        assert len(stub.cards) == 5
    finally:
        stub.stop()


def test_wrong_admin_password_fails_with_a_message(secrets):
    stub = MetabaseStub(admin_email=ADMIN_EMAIL, admin_password="someone-elses-password").start()
    try:
        done = run(stub, secrets)
        assert done.returncode == 1
        assert "POST /api/session: HTTP 401" in done.stdout
        assert stub.writes() == []
    finally:
        stub.stop()


def test_update_secrets_rewrites_the_clickhouse_password(stub, secrets):
    assert run(stub, secrets).returncode == 0
    db_id = next(iter(stub.databases))
    secrets["clickhouse"].write_text("rotated-password")
    assert run(stub, secrets).returncode == 0
    assert stub.databases[db_id]["details"]["password"] == CLICKHOUSE_PASSWORD  # not comparable
    assert run(stub, secrets, MB_UPDATE_SECRETS="1").returncode == 0
    assert stub.databases[db_id]["details"]["password"] == "rotated-password"
    assert len(stub.databases) == 1


def test_gives_up_when_metabase_never_becomes_healthy(secrets):
    stub = MetabaseStub(ready_after=10**9).start()
    try:
        done = run(stub, secrets, MB_WAIT_SECONDS="3")
        assert done.returncode == 1
        assert "not ready after 3 s" in done.stdout
        assert stub.writes() == []
    finally:
        stub.stop()


def test_finds_the_dashboard_through_search_where_there_is_no_dashboard_list(secrets):
    stub = MetabaseStub(dashboard_list=False).start()
    try:
        assert run(stub, secrets).returncode == 0
        calls_before = len(stub.calls)
        second = run(stub, secrets)
        assert second.returncode == 0, second.stdout + second.stderr
        writes = [(m, p) for m, p, _ in stub.calls[calls_before:] if m in ("POST", "PUT") and p != "/"]
        assert writes == [("POST", "/api/session")]
        assert len(stub.dashboards) == 1
        assert any(p == "/api/search" for _, p, _ in stub.calls[calls_before:])
    finally:
        stub.stop()
