"""pytest wiring for the interop suite (see interop_common.py for the environment it reads).

- `@pytest.mark.tansu_gap("why")`, also usable on `pytest.param(...)`: a check Tansu 0.6.0 is
  known to fail.  Skipped when BROKER_KIND=tansu, required otherwise.
- BROKER_KIND=petrel: any skip, for any reason, is reported as a failure.
- Every test is bounded by INTEROP_TEST_TIMEOUT seconds (SIGALRM).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import interop_common as ic  # noqa: E402

KNOWN_KINDS = {"", "petrel", "tansu"}


def pytest_configure(config):
    # The per-test timeout is SIGALRM; a parent may have started us with signals blocked.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    config.addinivalue_line("markers", "tansu_gap(reason): Tansu 0.6.0 is known to fail this check")
    if not ic.BOOTSTRAP:
        raise pytest.UsageError("KAFKA_BOOTSTRAP (host:port of the broker under test) is not set")
    if ic.BROKER_KIND not in KNOWN_KINDS:
        raise pytest.UsageError(f"BROKER_KIND={ic.BROKER_KIND!r}: expected petrel or tansu")


def pytest_report_header(config):
    return [f"interop: KAFKA_BOOTSTRAP={ic.BOOTSTRAP} BROKER_KIND={ic.BROKER_KIND or '(unset)'} "
            f"per-test timeout {ic.TEST_TIMEOUT:.0f}s"]


def pytest_collection_modifyitems(config, items):
    if ic.BROKER_KIND != "tansu":
        return
    for item in items:
        for mark in item.iter_markers("tansu_gap"):
            reason = mark.args[0] if mark.args else mark.kwargs.get("reason", "known Tansu gap")
            item.add_marker(pytest.mark.skip(reason=f"Tansu 0.6.0 gap: {reason}"))
            break


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if ic.BROKER_KIND == "petrel" and report.skipped:
        # Against Petrel nothing may be skipped: every check is a requirement.
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but BROKER_KIND=petrel requires every check: {reason}"


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    def on_alarm(signum, frame):
        raise TestTimeout(f"{request.node.nodeid} exceeded INTEROP_TEST_TIMEOUT={ic.TEST_TIMEOUT:.0f}s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, ic.TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("interop"))


@pytest.fixture(scope="session")
def admin():
    return ic.confluent_admin()


@pytest.fixture
def new_topic(admin, request):
    """new_topic(partitions=1, config=None) -> name of a fresh topic, ready (leaders known)."""
    def make(partitions: int = 1, config: dict | None = None) -> str:
        return ic.create_topic(admin, ic.unique_name(request.node.name), partitions, config)
    return make


LIBRDKAFKA_202_GAP = ("Debian's librdkafka 2.0.2 cannot parse Tansu's ApiVersions v3 response "
                      "(librdkafka < 2.2 mis-skips non-empty tagged fields, confluentinc/librdkafka#4278), "
                      "so it cannot talk to Tansu at all")


@pytest.fixture(scope="session", params=[
    pytest.param("librdkafka-2.0.2", marks=pytest.mark.tansu_gap(LIBRDKAFKA_202_GAP)),
    pytest.param("librdkafka-2.16"),
])
def kcat(request, workdir):
    binary = ic.system_kcat_binary()
    if not binary:
        pytest.fail("kcat is not installed (apt-get install -y kcat)")
    if request.param == "librdkafka-2.0.2":
        k = ic.Kcat(request.param, binary, None)
    else:
        libdir = ic.wheel_librdkafka_dir(workdir)
        if not libdir:
            pytest.fail("no librdkafka from the confluent-kafka wheel (pip install confluent-kafka)")
        k = ic.Kcat(request.param, binary, libdir)
    return k
