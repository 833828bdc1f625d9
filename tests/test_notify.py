"""Failure notifier: the log and a webhook (a loopback receiver), and the flow calling them on failure or hold."""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curate.notify import LogNotifier, RunEvent, WebhookNotifier, notifiers, notify_all
from tests.loopback import running
from tests.test_flow import NOW, run, settings_for


class _Receiver(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers.get("Content-Type", ""), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.status = status
        self.received: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def receiver(status: int = 200) -> AbstractContextManager[_Server]:
    return running(_Server(status))


EVENT = RunEvent("failed", "run-1", "OSError: disk full", "wh/directory.duckdb")


def test_webhook_posts_the_event_as_json() -> None:
    with receiver() as srv:
        WebhookNotifier(srv.url).notify(EVENT)
    assert len(srv.received) == 1
    content_type, body = srv.received[0]
    assert content_type == "application/json"
    assert body == {"kind": "failed", "run": "run-1", "message": "OSError: disk full", "warehouse": "wh/directory.duckdb",
                    "text": "curate run run-1 failed: OSError: disk full"}  # fmt: skip


def test_a_failing_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with receiver(status=500) as srv, caplog.at_level(logging.ERROR, "curate.notify"):
        WebhookNotifier(srv.url).notify(EVENT)
    assert len(srv.received) == 1
    assert "could not notify" in caplog.text and "500" in caplog.text
    with caplog.at_level(logging.ERROR, "curate.notify"):
        WebhookNotifier("http://127.0.0.1:9/unreachable", timeout=2).notify(EVENT)  # nothing listens on port 9
    assert caplog.text.count("could not notify") == 2


def test_log_notifier_and_the_notifier_set(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "curate.notify"):
        LogNotifier().notify(dataclasses.replace(EVENT, kind="held", message="too many removals"))
    assert "curate run run-1 held its release (nothing published): too many removals" in caplog.text
    assert [type(n) for n in notifiers("")] == [LogNotifier]
    assert [type(n) for n in notifiers("http://127.0.0.1:1/x")] == [LogNotifier, WebhookNotifier]

    class Broken:
        def notify(self, event: RunEvent) -> None:
            raise RuntimeError("bug")

    seen: list[RunEvent] = []

    class Keep:
        def notify(self, event: RunEvent) -> None:
            seen.append(event)

    notify_all([Broken(), Keep()], EVENT)  # one broken notifier does not silence the others
    assert seen == [EVENT]


def test_a_failed_run_notifies_the_webhook(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    settings.warehouse_file.parent.mkdir(parents=True)
    settings.warehouse_file.write_bytes(b"this is not a duckdb file")  # the run cannot open its warehouse
    with receiver() as srv:
        settings = dataclasses.replace(settings, notify_webhook=srv.url)
        with pytest.raises(Exception):  # noqa: B017 - whatever DuckDB raises, the run fails
            run(settings, NOW)
    assert len(srv.received) == 1
    body = srv.received[0][1]
    assert body["kind"] == "failed" and body["warehouse"] == str(settings.warehouse_file) and body["message"]


def test_a_flow_timeout_fails_the_run_and_notifies(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    from flows.curate_run import curate_run

    with receiver() as srv:
        settings = dataclasses.replace(settings_for(tmp_path, fixture_sources), notify_webhook=srv.url)
        state = curate_run.with_options(timeout_seconds=0.05)(settings, now=NOW, return_state=True)
    assert state.is_failed() and "exceeded timeout" in str(state.message)
    assert [b["kind"] for _, b in srv.received] == ["failed"]
    assert "CURATE_FLOW_TIMEOUT" in srv.received[0][1]["message"]
