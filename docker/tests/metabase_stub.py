"""A stub of the Metabase REST endpoints docker/metabase/provision.py calls, and nothing else.

No Metabase can run here (no Docker engine, no JVM image), so the provisioning logic is tested
against this: an in-memory server on 127.0.0.1 (random port) that records every call and
behaves like Metabase where the script depends on it:
  - GET /api/health is 503 until `ready_after` calls have been made;
  - /api/session/properties gives a setup-token and has-user-setup=false until POST /api/setup;
  - sessions are checked (X-Metabase-Session) on everything but health, properties, setup, login;
  - GET /api/database answers {"data": [...], "total": n} (the newer shape) and never returns
    the password (Metabase shows "**MetabasePass**");
  - cards and dashboards come back with extra fields Metabase adds (ids, timestamps, ...);
  - PUT /api/dashboard/:id replaces the dashcards, giving new ones (negative ids) real ids.
"""

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class MetabaseStub:
    def __init__(self, ready_after=0, admin_email=None, admin_password=None, dashboard_list=True):
        self.dashboard_list = dashboard_list  # False: no GET /api/dashboard, only /api/search
        self.calls = []  # (method, path, body)
        self.clickhouse_queries = []  # (Authorization header, SQL): the provisioner's own ClickHouse calls
        self.lock = threading.Lock()
        self.ready_after = ready_after
        self.health_calls = 0
        self.setup_token = "stub-setup-token-0001"
        self.users = {}
        if admin_email:
            self.users[admin_email] = admin_password
        self.sessions = set()
        self.databases = {}
        self.cards = {}
        self.dashboards = {}
        self.next_id = 1
        self.next_dashcard_id = 1000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def writes(self):
        """Calls that would change something (logins excluded)."""
        return [(m, p) for m, p, _ in self.calls
                if m in ("POST", "PUT", "DELETE") and p not in ("/api/session", "/")]

    def _id(self):
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------------ routing

    def handle(self, method, path, headers, body, query=""):
        if path == "/" and method == "POST":  # ClickHouse's HTTP interface, on the same port
            self.clickhouse_queries.append((headers.get("Authorization"), body))
            return 200, ""
        if path == "/api/health":
            self.health_calls += 1
            if self.health_calls <= self.ready_after:
                return 503, {"status": "initializing", "progress": 0.5}
            return 200, {"status": "ok"}
        if path == "/api/session/properties" and method == "GET":
            done = bool(self.users)
            return 200, {"has-user-setup": done,
                         "setup-token": self.setup_token,
                         "version": {"tag": "v0.56.4-stub"}}
        if path == "/api/setup" and method == "POST":
            if self.users:
                return 403, {"message": "The /api/setup route can only be used to create the first user"}
            if body.get("token") != self.setup_token:
                return 403, {"message": "Token does not match the setup token."}
            user = body["user"]
            if len(user.get("password") or "") < 8:
                return 400, {"errors": {"password": "password is too common."}}
            self.users[user["email"]] = user["password"]
            return 200, {"id": self._session()}
        if path == "/api/session" and method == "POST":
            if self.users.get(body.get("username")) != body.get("password") or body.get("password") is None:
                return 401, {"errors": {"password": "did not match stored password"}}
            return 200, {"id": self._session()}

        if headers.get("X-Metabase-Session") not in self.sessions:
            return 401, "Unauthenticated"

        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "database"]:
            return self._collection(method, parts, self.databases, self._database_view, body)
        if parts[:2] == ["api", "card"]:
            return self._collection(method, parts, self.cards, self._card_view, body)
        if parts[:2] == ["api", "search"] and method == "GET":
            q = parse_qs(query)
            if q.get("models") != ["dashboard"]:
                return 400, {"message": "stub: only models=dashboard"}
            hits = [{"id": d["id"], "name": d["name"], "model": "dashboard", "archived": d["archived"]}
                    for d in self.dashboards.values() if q.get("q", [""])[0].lower() in d["name"].lower()]
            return 200, {"data": hits, "total": len(hits)}
        if parts[:2] == ["api", "dashboard"] and len(parts) == 2 and method == "GET" and not self.dashboard_list:
            return 404, "API endpoint does not exist."
        if parts[:2] == ["api", "dashboard"]:
            return self._dashboard(method, parts, body)
        return 404, "Not found."

    def _session(self):
        token = f"session-{len(self.sessions) + 1:04d}"
        self.sessions.add(token)
        return token

    def _database_view(self, db):
        view = copy.deepcopy(db)
        if "password" in view.get("details", {}):
            view["details"]["password"] = "**MetabasePass**"
        view.update({"created_at": "2025-01-01T00:00:00Z", "is_sample": False,
                     "features": ["native-parameters"]})
        return view

    def _card_view(self, card):
        view = copy.deepcopy(card)
        view.update({"archived": False, "created_at": "2025-01-01T00:00:00Z",
                     "creator_id": 1, "query_type": "native", "result_metadata": None})
        view["dataset_query"]["native"].setdefault("collection", None)
        return view

    def _collection(self, method, parts, store, view, body=None):
        if len(parts) == 2 and method == "GET":
            items = [view(o) for o in store.values()]
            return 200, ({"data": items, "total": len(items)} if store is self.databases else items)
        if len(parts) == 2 and method == "POST":
            obj = copy.deepcopy(body)
            obj["id"] = self._id()
            store[obj["id"]] = obj
            return 200, view(obj)
        if len(parts) == 3 and parts[2].isdigit():
            obj = store.get(int(parts[2]))
            if obj is None:
                return 404, "Not found."
            if method == "GET":
                return 200, view(obj)
            if method == "PUT":
                update = copy.deepcopy(body)
                if store is self.databases and "password" not in update.get("details", {}):
                    update["details"]["password"] = obj["details"].get("password")
                obj.update(update)
                return 200, view(obj)
        return 405, "Method not allowed."

    def _dashboard(self, method, parts, body):
        if len(parts) == 2 and method == "GET":
            return 200, [dict(d, dashcards=None) for d in copy.deepcopy(list(self.dashboards.values()))]
        if len(parts) == 2 and method == "POST":
            dash = {"id": self._id(), "name": body["name"], "description": body.get("description"),
                    "collection_id": body.get("collection_id"), "parameters": [], "dashcards": [],
                    "archived": False}
            self.dashboards[dash["id"]] = dash
            return 200, copy.deepcopy(dash)
        if len(parts) == 3 and parts[2].isdigit():
            dash = self.dashboards.get(int(parts[2]))
            if dash is None:
                return 404, "Not found."
            if method == "GET":
                view = copy.deepcopy(dash)
                for dc in view["dashcards"]:
                    dc.update({"dashboard_id": dash["id"], "series": [], "created_at": "2025-01-01",
                               "card": self._card_view(self.cards[dc["card_id"]])})
                return 200, view
            if method == "PUT":
                for key in ("name", "description", "parameters"):
                    if key in body:
                        dash[key] = copy.deepcopy(body[key])
                if "dashcards" in body:
                    cards = []
                    for dc in copy.deepcopy(body["dashcards"]):
                        if dc["card_id"] not in self.cards:
                            return 400, {"message": f"no card {dc['card_id']}"}
                        if dc.get("id", -1) < 0:
                            self.next_dashcard_id += 1
                            dc["id"] = self.next_dashcard_id
                        cards.append(dc)
                    dash["dashcards"] = cards
                return 200, copy.deepcopy(dash)
        return 405, "Method not allowed."

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if urlsplit(self.path).path == "/" and raw:
                    body = raw.decode()  # SQL for the ClickHouse stand-in
                else:
                    body = json.loads(raw) if raw else None
                split = urlsplit(self.path)
                path = split.path
                with stub.lock:
                    stub.calls.append((self.command, path, body))
                    status, answer = stub.handle(self.command, path, self.headers, body, split.query)
                data = (json.dumps(answer) if not isinstance(answer, str) else answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(answer, str) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
