"""``curate serve``: a Prefect server (the one at ``PREFECT_API_URL``, or a local one started and stopped here), the
``curate-nightly`` and ``curate-inbox`` deployments served by this process, and the inbox watcher that starts
``curate-inbox`` once a burst of curator drops has settled.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from curate.inbox import InboxWatcher, snapshot
from curate.settings import Settings

LOG = logging.getLogger("curate.serve")
FLOW = "curate-scheduled"
NIGHTLY = "curate-nightly"
INBOX = "curate-inbox"


class ServeError(RuntimeError):
    """The server could not be started or reached, or a setting is unusable."""


def check_schedule(cron: str, timezone: str) -> None:
    """Refuse a bad ``CURATE_CRON`` or ``CURATE_TZ`` before anything starts."""
    from cronsim import CronSim, CronSimError

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ServeError(f"CURATE_TZ={timezone!r} is not a time zone name such as UTC or Europe/Oslo") from None
    try:
        CronSim(cron, time_now())
    except CronSimError as exc:
        raise ServeError(f"CURATE_CRON={cron!r} is not a cron expression such as '0 3 * * *' ({exc})") from None


def time_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(api_url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServeError(f"the Prefect server exited with code {proc.returncode} while starting")
        try:
            if requests.get(f"{api_url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise ServeError(f"the Prefect server at {api_url} did not answer within {timeout:g} s")


@contextmanager
def prefect_server(api_url: str | None, home: Path, port: int, startup_timeout: float = 120.0) -> Iterator[str]:
    """The API URL to use: ``api_url`` when given, else a ``prefect server start`` on 127.0.0.1 with its
    database under ``home``, stopped (SIGTERM, then SIGKILL after 20 s) when the block ends."""
    if api_url:
        wait_healthy(api_url.rstrip("/"), 30)
        yield api_url
        return
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_UI_ENABLED": os.environ.get("PREFECT_UI_ENABLED", "true")}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    prefect = str(Path(sys.executable).parent / "prefect")
    with (home / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(url, startup_timeout, proc)
        LOG.info("Prefect server started at %s (database and log under %s)", url, home)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        LOG.info("Prefect server stopped")


def deployments(settings: Settings) -> list[Any]:
    """``curate-nightly`` (cron ``settings.cron`` in ``settings.timezone``) and ``curate-inbox`` (no schedule:
    started by the watcher), both running ``curate-scheduled`` on absolute paths."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.curate_serve import curate_scheduled

    params = {
        "sources": str(settings.sources_dir.resolve()),
        "exports": str(settings.exports_dir.resolve()),
        "warehouse": str(settings.warehouse_file.resolve()),
    }
    nightly = curate_scheduled.to_deployment(
        NIGHTLY,
        schedules=[Cron(settings.cron, timezone=settings.timezone)],
        parameters={**params, "trigger": "nightly"},
        description="The nightly run: ingest, validate, dedupe, export, publish.",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    inbox = curate_scheduled.to_deployment(
        INBOX,
        parameters={**params, "trigger": "inbox"},
        description=f"Started when curators drop or replace files in {params['sources']}.",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return [nightly, inbox]


def start_inbox_run(api_url: str, changed: list[str]) -> str:
    """Create a ``curate-inbox`` flow run for the files that changed; returns its id."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        deployment = client.read_deployment_by_name(f"{FLOW}/{INBOX}")
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        params = {**(deployment.parameters or {}), "trigger": f"inbox: {shown}"}
        run = client.create_flow_run_from_deployment(deployment.id, parameters=params)
    return str(run.id)


def watch_inbox(folder: Path, settle: float, poll: float, start: Callable[[list[str]], object], stop: threading.Event) -> None:
    """Poll ``folder`` until ``stop`` is set; one ``start(changed)`` per settled burst of drops."""
    watcher = InboxWatcher(settle, last=snapshot(folder))
    while not stop.wait(poll):
        changed = watcher.poll(snapshot(folder), time.monotonic())
        if changed:
            LOG.info("curator drop in %s: %s; starting %s", folder, ", ".join(changed), INBOX)
            try:
                start(changed)
            except Exception:  # the server may be restarting: the next drop tries again
                LOG.exception("could not start %s", INBOX)


def serve(settings: Settings, api_url: str | None, home: Path, port: int) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM): server, deployments, inbox watcher; then stop them in order."""
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    check_schedule(settings.cron, settings.timezone)
    with prefect_server(api_url, home, port) as url:
        os.environ["PREFECT_API_URL"] = url  # the flow runs this process starts talk to the same server
        with temporary_settings({PREFECT_API_URL: url}):
            stop = threading.Event()
            watcher = threading.Thread(
                target=watch_inbox,
                args=(settings.sources_dir, settings.inbox_settle_seconds, settings.inbox_poll_seconds,
                      lambda changed: start_inbox_run(url, changed), stop),
                name="curate-inbox-watcher",
                daemon=True,
            )  # fmt: skip
            watcher.start()
            try:
                prefect_serve(*deployments(settings), limit=1, print_starting_message=False)
            finally:
                stop.set()
                watcher.join(timeout=10)
