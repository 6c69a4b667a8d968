"""docker/petrel-healthcheck, the image's bash-only health probe, against local servers."""

import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "petrel-healthcheck"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        status = {"/healthz": 200, "/sick": 503}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def probe(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=20, env=env).returncode


def test_tcp(server):
    assert probe("tcp", server) == 0
    assert probe("tcp", closed_port()) == 1


def test_default_port_from_environment(server):
    assert probe(env={"PETREL_HEALTHCHECK_PORT": str(server), "PATH": "/usr/bin:/bin"}) == 0


def test_http_status(server):
    assert probe("http", server, "/healthz") == 0
    assert probe("http", server) == 0  # /healthz by default
    assert probe("http", server, "/sick") == 1
    assert probe("http", server, "/missing") == 1
    assert probe("http", closed_port()) == 1


def test_bad_arguments():
    assert probe("tcp", "not-a-port") == 1
    assert probe("udp", "9092") == 1
