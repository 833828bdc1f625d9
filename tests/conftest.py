"""Shared test set-up: Prefect offline in its own home, fixture paths, a session-wide test harness."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before Prefect is imported anywhere: no telemetry, and a Prefect home of the tests' own.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# pytest-xdist's workers get COLUMNS=80, which fixes the CLI's rich consoles at 80 columns when they are made;
# without it they read the width each time (tests give CliRunner the COLUMNS they need)
os.environ.pop("COLUMNS", None)

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for every flow test of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # No heartbeat thread: a flow run joins it at its end, and it sleeps in steps of a second (about 1 s of each
    # 2 s run of the fixture sources).  Heartbeats only tell a server that a run crashed; no test asks that.
    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(autouse=True)
def no_real_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never ask a real resolver (that would reach the internet): every name fails as if unplugged.

    Link tests that need names give ``check_links`` a resolver of their own, or patch this one.
    """
    import socket

    from curate import links

    def unplugged(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (tests resolve no names)")

    monkeypatch.setattr(links, "system_resolve", unplugged)


@pytest.fixture
def fixture_sources(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/sources."""
    target = tmp_path / "sources"
    shutil.copytree(FIXTURES / "sources", target)
    return target
