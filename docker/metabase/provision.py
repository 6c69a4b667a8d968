#!/usr/bin/env python3
"""Provision Metabase for the Petrel Collatz stack, through Metabase's REST API.

Waits for Metabase, creates the admin user (first start, setup-token flow) or logs in, adds the
ClickHouse database, creates the native-SQL cards (longest chain, highest value, numbers passing
through x, the steps of n, throughput over time) and a dashboard that holds them.

Idempotent: every object is looked up by name; an object that already matches is left alone, one
that differs is updated in place, a missing one is created. A second run makes no change (it
only reads, and logs in).

Python 3 standard library only. Configuration from the environment (docker/ENVIRONMENT.md):
  MB_URL                    http://metabase:3000
  MB_ADMIN_EMAIL            admin@petrel.local
  MB_ADMIN_PASSWORD_FILE    file holding the admin password (or MB_ADMIN_PASSWORD)
  MB_ADMIN_FIRST_NAME, MB_ADMIN_LAST_NAME, MB_SITE_NAME
  MB_WAIT_SECONDS           how long to wait for Metabase (600)
  MB_POLL_SECONDS           pause between health checks while waiting (2)
  CLICKHOUSE_HOST (clickhouse), CLICKHOUSE_PORT (8123), CLICKHOUSE_USER (default),
  CLICKHOUSE_PASSWORD_FILE (or CLICKHOUSE_PASSWORD), CLICKHOUSE_DATABASE (collatz):
                            what Metabase is told, to reach ClickHouse
  CLICKHOUSE_URL            where this script reaches ClickHouse's HTTP interface to create the
                            database if the sink has not yet (http://CLICKHOUSE_HOST:CLICKHOUSE_PORT);
                            Metabase checks the connection, database included, when it is added
  MB_UPDATE_SECRETS=1       also rewrite the stored ClickHouse password (Metabase never returns
                            it, so it cannot be compared)
"""

import base64
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

DATABASE_NAME = "ClickHouse (Collatz)"
DASHBOARD_NAME = "Petrel: Collatz conjecture"
TAG_NAMESPACE = uuid.UUID("8a3c5f5e-3c1b-4c8e-9b0e-5e1d2f0a7c11")


def log(message):
    print(f"provision: {message}", flush=True)


def read_secret(name, default=None):
    """NAME_FILE (a file, one trailing newline dropped) wins over NAME; else default."""
    path = os.environ.get(name + "_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            value = f.read()
        return value[:-1] if value.endswith("\n") else value
    return os.environ.get(name, default)


def config_from_env():
    return {
        "url": os.environ.get("MB_URL", "http://metabase:3000").rstrip("/"),
        "email": os.environ.get("MB_ADMIN_EMAIL", "admin@petrel.local"),
        "password": read_secret("MB_ADMIN_PASSWORD"),
        "first_name": os.environ.get("MB_ADMIN_FIRST_NAME", "Petrel"),
        "last_name": os.environ.get("MB_ADMIN_LAST_NAME", "Admin"),
        "site_name": os.environ.get("MB_SITE_NAME", "Petrel Collatz"),
        "wait_seconds": float(os.environ.get("MB_WAIT_SECONDS", "600")),
        "poll_seconds": float(os.environ.get("MB_POLL_SECONDS", "2")),
        "update_secrets": os.environ.get("MB_UPDATE_SECRETS") == "1",
        "clickhouse_url": os.environ.get("CLICKHOUSE_URL") or "http://{}:{}".format(
            os.environ.get("CLICKHOUSE_HOST", "clickhouse"), os.environ.get("CLICKHOUSE_PORT", "8123")),
        "clickhouse": {
            "host": os.environ.get("CLICKHOUSE_HOST", "clickhouse"),
            "port": int(os.environ.get("CLICKHOUSE_PORT", "8123")),
            "user": os.environ.get("CLICKHOUSE_USER", "default"),
            "password": read_secret("CLICKHOUSE_PASSWORD", ""),
            "dbname": os.environ.get("CLICKHOUSE_DATABASE", "collatz"),
        },
    }


# ----------------------------------------------------------------------------- the questions
# ClickHouse SQL that runs on 18.16 and on current releases, and tolerates duplicate rows
# (the sink is at-least-once): schema in docker/clickhouse/schema.sql.

def cards_spec(database):
    """The cards, in dashboard order. `database` is the ClickHouse database name (collatz)."""
    db = database
    return [
        {
            "key": "longest",
            "name": "Collatz: longest chains",
            "description": "Start numbers with the most steps (top 10), from the per-number summary.",
            "display": "table",
            "query": (
                f"SELECT number, maxMerge(steps) AS chain_steps\n"
                f"FROM {db}.chains\n"
                f"GROUP BY number\n"
                f"ORDER BY chain_steps DESC, number ASC\n"
                f"LIMIT 10"
            ),
            "tags": {},
            "visualization_settings": {},
            "layout": {"row": 0, "col": 0, "size_x": 12, "size_y": 6},
        },
        {
            "key": "highest",
            "name": "Collatz: highest values",
            "description": "Start numbers whose chains reach the highest values (top 10); "
                           "highest_value is exact, highest_value_approx is Float64.",
            "display": "table",
            "query": (
                f"SELECT number, peak_text AS highest_value, peak AS highest_value_approx\n"
                f"FROM (\n"
                f"    SELECT number, maxMerge(max_value) AS peak, argMaxMerge(max_value_text) AS peak_text\n"
                f"    FROM {db}.chains\n"
                f"    GROUP BY number\n"
                f")\n"
                f"ORDER BY peak DESC, length(peak_text) DESC, peak_text DESC, number ASC\n"
                f"LIMIT 10"
            ),
            "tags": {},
            "visualization_settings": {},
            "layout": {"row": 0, "col": 12, "size_x": 12, "size_y": 6},
        },
        {
            "key": "throughput",
            "name": "Collatz: rows per minute",
            "description": "Distinct (number, step) rows per minute of record time, last 24 hours "
                           "(uniq: approximate, duplicates not counted).",
            "display": "line",
            "query": (
                f"SELECT toStartOfMinute(timestamp) AS minute, uniq(number, step) AS rows_per_minute\n"
                f"FROM {db}.data_series\n"
                f"WHERE timestamp >= now() - INTERVAL 1 DAY\n"
                f"GROUP BY minute\n"
                f"ORDER BY minute"
            ),
            "tags": {},
            "visualization_settings": {
                "graph.dimensions": ["minute"],
                "graph.metrics": ["rows_per_minute"],
                "graph.x_axis.title_text": "time",
                "graph.y_axis.title_text": "rows per minute",
            },
            "layout": {"row": 6, "col": 0, "size_x": 24, "size_y": 6},
        },
        {
            "key": "passes",
            "name": "Collatz: numbers passing through x",
            "description": "Start numbers, other than x itself, whose chains reach the value x "
                           "(exact match on value_text, found through the value-ordered "
                           "passes_through table; first 1000).",
            "display": "table",
            # The range on `value` lets the primary key (value, value_text, number) find the
            # rows; it is wide enough for any parser's rounding of x, value_text decides.
            "query": (
                f"SELECT DISTINCT number\n"
                f"FROM {db}.passes_through\n"
                f"WHERE value >= toFloat64({{{{x}}}}) * (1 - 1e-12)\n"
                f"  AND value <= toFloat64({{{{x}}}}) * (1 + 1e-12)\n"
                f"  AND value_text = {{{{x}}}}\n"
                f"  AND toString(number) != {{{{x}}}}\n"
                f"ORDER BY number\n"
                f"LIMIT 1000"
            ),
            "tags": {
                "x": {"display-name": "x (passes through)", "type": "text", "default": "9232"},
            },
            "visualization_settings": {},
            "layout": {"row": 12, "col": 0, "size_x": 8, "size_y": 8},
            "parameter": {"id": "collatz_x", "name": "Passes through x", "slug": "x",
                          "type": "category", "tag": "x"},
        },
        {
            "key": "steps",
            "name": "Collatz: steps of n",
            "description": "Every step of the chain of n (value as Float64, for plotting).",
            "display": "line",
            "query": (
                f"SELECT step, max(value) AS value\n"
                f"FROM {db}.data_series\n"
                f"WHERE number = {{{{n}}}}\n"
                f"GROUP BY step\n"
                f"ORDER BY step"
            ),
            "tags": {
                "n": {"display-name": "n (start number)", "type": "number", "default": "27"},
            },
            "visualization_settings": {
                "graph.dimensions": ["step"],
                "graph.metrics": ["value"],
                "graph.x_axis.title_text": "step",
                "graph.y_axis.title_text": "value",
            },
            "layout": {"row": 12, "col": 8, "size_x": 16, "size_y": 8},
            "parameter": {"id": "collatz_n", "name": "Chain of n", "slug": "n",
                          "type": "number/=", "tag": "n"},
        },
    ]


def template_tags(card):
    tags = {}
    for name, spec in card["tags"].items():
        tags[name] = {
            # Stable ids, so that the same card compares equal on the next run.
            "id": str(uuid.uuid5(TAG_NAMESPACE, f"{card['key']}/{name}")),
            "name": name,
            "display-name": spec["display-name"],
            "type": spec["type"],
            "required": True,
            "default": spec["default"],
        }
    return tags


def card_payload(card, database_id):
    return {
        "name": card["name"],
        "description": card["description"],
        "display": card["display"],
        "collection_id": None,
        "visualization_settings": card["visualization_settings"],
        "dataset_query": {
            "type": "native",
            "database": database_id,
            "native": {"query": card["query"], "template-tags": template_tags(card)},
        },
    }


# ----------------------------------------------------------------------------- HTTP

class MetabaseError(Exception):
    pass


class Metabase:
    def __init__(self, url):
        self.url = url
        self.session = None

    def request(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.session:
            req.add_header("X-Metabase-Session", self.session)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise MetabaseError(f"{method} {path}: HTTP {e.code}: {detail}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)


def as_list(answer):
    """Metabase returns some collections as a list, newer versions as {"data": [...]}."""
    if isinstance(answer, dict) and "data" in answer:
        return answer["data"]
    return answer or []


def matches(desired, actual):
    """True when every key of `desired` has an equal value in `actual` (recursively for dicts).

    Metabase adds fields of its own (ids, timestamps, lib/uuid, ...), so only what we set counts.
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(matches(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(desired) == len(actual)
                and all(matches(d, a) for d, a in zip(desired, actual)))
    return desired == actual


# ----------------------------------------------------------------------------- steps

def wait_for_metabase(mb, seconds, poll=2.0):
    deadline = time.monotonic() + seconds
    last = None
    while True:
        try:
            health = mb.get("/api/health")
            if isinstance(health, dict) and health.get("status") == "ok":
                return
            last = f"health says {health!r}"
        except (MetabaseError, urllib.error.URLError, OSError) as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise MetabaseError(f"Metabase at {mb.url} not ready after {seconds:.0f} s: {last}")
        time.sleep(poll)


def ensure_admin_session(mb, cfg, report):
    if not cfg["password"]:
        raise MetabaseError("no admin password: set MB_ADMIN_PASSWORD_FILE (or MB_ADMIN_PASSWORD)")
    props = mb.get("/api/session/properties") or {}
    token = props.get("setup-token")
    if token and not props.get("has-user-setup", False):
        answer = mb.post("/api/setup", {
            "token": token,
            "user": {
                "email": cfg["email"],
                "first_name": cfg["first_name"],
                "last_name": cfg["last_name"],
                "password": cfg["password"],
                "site_name": cfg["site_name"],
            },
            "prefs": {"site_name": cfg["site_name"], "site_locale": "en", "allow_tracking": False},
        })
        mb.session = answer["id"]
        report.append(("admin", cfg["email"], "created"))
        return
    answer = mb.post("/api/session", {"username": cfg["email"], "password": cfg["password"]})
    mb.session = answer["id"]
    report.append(("admin", cfg["email"], "unchanged"))


def ensure_clickhouse_database(cfg, report):
    """CREATE DATABASE IF NOT EXISTS, so that Metabase's connection check passes before the sink
    has created its tables (the sink runs the same statement, see clickhouse/schema.sql)."""
    ch = cfg["clickhouse"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ch["dbname"]):
        raise MetabaseError(f"CLICKHOUSE_DATABASE {ch['dbname']!r} is not a plain identifier")
    sql = f"CREATE DATABASE IF NOT EXISTS {ch['dbname']}"
    req = urllib.request.Request(cfg["clickhouse_url"].rstrip("/") + "/", data=sql.encode(), method="POST")
    token = base64.b64encode(f"{ch['user']}:{ch['password']}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        raise MetabaseError(f"ClickHouse at {cfg['clickhouse_url']}: {sql}: HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise MetabaseError(f"ClickHouse at {cfg['clickhouse_url']}: {e}") from None
    report.append(("clickhouse database", ch["dbname"], "present"))


def ensure_database(mb, cfg, report):
    ch = cfg["clickhouse"]
    details = {"host": ch["host"], "port": ch["port"], "user": ch["user"],
               "dbname": ch["dbname"], "ssl": False}
    desired = {"name": DATABASE_NAME, "engine": "clickhouse", "details": details}
    existing = [d for d in as_list(mb.get("/api/database")) if d.get("name") == DATABASE_NAME]
    if not existing:
        body = dict(desired, details=dict(details, password=ch["password"]))
        created = mb.post("/api/database", body)
        report.append(("database", DATABASE_NAME, "created"))
        return created["id"]
    db = existing[0]
    if matches(desired, db) and not cfg["update_secrets"]:
        report.append(("database", DATABASE_NAME, "unchanged"))
        return db["id"]
    # Metabase never returns the password; leaving it out of the update keeps the stored one.
    body = dict(desired, details=dict(details))
    if cfg["update_secrets"]:
        body["details"]["password"] = ch["password"]
    mb.put(f"/api/database/{db['id']}", body)
    report.append(("database", DATABASE_NAME, "updated"))
    return db["id"]


def ensure_cards(mb, cfg, database_id, report):
    existing = {}
    for c in as_list(mb.get("/api/card")):
        if not c.get("archived") and c.get("name") not in existing:
            existing[c.get("name")] = c
    ids = {}
    for card in cards_spec(cfg["clickhouse"]["dbname"]):
        desired = card_payload(card, database_id)
        current = existing.get(card["name"])
        if current is None:
            ids[card["key"]] = mb.post("/api/card", desired)["id"]
            report.append(("card", card["name"], "created"))
        elif matches(desired, current):
            ids[card["key"]] = current["id"]
            report.append(("card", card["name"], "unchanged"))
        else:
            mb.put(f"/api/card/{current['id']}", desired)
            ids[card["key"]] = current["id"]
            report.append(("card", card["name"], "updated"))
    return ids


def dashboard_layout(cfg, card_ids):
    parameters = []
    dashcards = []
    for card in cards_spec(cfg["clickhouse"]["dbname"]):
        mappings = []
        param = card.get("parameter")
        if param:
            parameters.append({"id": param["id"], "name": param["name"],
                               "slug": param["slug"], "type": param["type"]})
            mappings.append({"parameter_id": param["id"], "card_id": card_ids[card["key"]],
                             "target": ["variable", ["template-tag", param["tag"]]]})
        dashcards.append(dict(card["layout"], card_id=card_ids[card["key"]],
                              parameter_mappings=mappings))
    return parameters, dashcards


def find_dashboards(mb):
    """GET /api/dashboard lists them; where a Metabase version no longer has that list, the
    search endpoint does (GET /api/search?models=dashboard)."""
    try:
        return as_list(mb.get("/api/dashboard"))
    except MetabaseError as e:
        if "HTTP 404" not in str(e) and "HTTP 405" not in str(e):
            raise
    query = urllib.parse.urlencode({"models": "dashboard", "q": DASHBOARD_NAME})
    return [d for d in as_list(mb.get(f"/api/search?{query}")) if d.get("model", "dashboard") == "dashboard"]


def ensure_dashboard(mb, cfg, card_ids, report):
    description = ("The Collatz pipeline on Petrel: longest chains, highest values, numbers "
                   "passing through x, the chain of n, and ingest throughput. "
                   "Provisioned by docker/metabase/provision.py.")
    existing = [d for d in find_dashboards(mb)
                if d.get("name") == DASHBOARD_NAME and not d.get("archived")]
    created = False
    if existing:
        dash_id = existing[0]["id"]
    else:
        dash_id = mb.post("/api/dashboard", {"name": DASHBOARD_NAME, "description": description,
                                             "collection_id": None})["id"]
        created = True
    current = mb.get(f"/api/dashboard/{dash_id}") or {}
    current_cards = current.get("dashcards", current.get("ordered_cards", [])) or []
    parameters, dashcards = dashboard_layout(cfg, card_ids)

    def key(dc):
        return dc.get("card_id")

    by_card = {key(dc): dc for dc in current_cards}
    same = (
        matches(parameters, current.get("parameters") or [])
        and current.get("description") == description
        and len(current_cards) == len(dashcards)
        and all(key(dc) in by_card and matches(dc, by_card[key(dc)]) for dc in dashcards)
    )
    if same:
        report.append(("dashboard", DASHBOARD_NAME, "created" if created else "unchanged"))
        return dash_id
    # Keep the ids of dashcards that already show a card; new ones get negative ids.
    body_cards = []
    for i, dc in enumerate(dashcards):
        old = by_card.get(key(dc))
        body_cards.append(dict(dc, id=old["id"] if old else -(i + 1)))
    mb.put(f"/api/dashboard/{dash_id}", {"description": description, "parameters": parameters,
                                          "dashcards": body_cards})
    report.append(("dashboard", DASHBOARD_NAME, "created" if created else "updated"))
    return dash_id


def provision(cfg):
    mb = Metabase(cfg["url"])
    report = []
    log(f"waiting for Metabase at {cfg['url']}")
    wait_for_metabase(mb, cfg["wait_seconds"], cfg["poll_seconds"])
    ensure_admin_session(mb, cfg, report)
    ensure_clickhouse_database(cfg, report)
    database_id = ensure_database(mb, cfg, report)
    card_ids = ensure_cards(mb, cfg, database_id, report)
    dash_id = ensure_dashboard(mb, cfg, card_ids, report)
    for kind, name, what in report:
        log(f"{kind} '{name}': {what}")
    log(f"dashboard: {cfg['url']}/dashboard/{dash_id}")
    return report


def main():
    try:
        provision(config_from_env())
    except (MetabaseError, OSError, KeyError, ValueError) as e:
        log(f"failed: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
