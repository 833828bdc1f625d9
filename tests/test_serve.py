"""`curate serve` end to end: it starts its own Prefect server on loopback, registers curate-nightly and
curate-inbox, runs the nightly deployment when triggered through the API, runs once for a burst of curator drops,
and stops itself and its server on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from curate.serve import ServeError, check_schedule, free_port
from tests.conftest import FIXTURES

CURATE = str(Path(sys.executable).parent / "curate")
HEADER = "record_id,name,kind,url,country,topics\n"


def until(check, timeout: float, proc: subprocess.Popen, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"curate serve exited while waiting for {what}: {proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def names(exports: Path) -> set[str]:
    try:
        return {x["name"] for x in json.loads((exports / "current" / "listings.json").read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return set()


def test_serve_runs_nightly_and_inbox_on_its_own_server(tmp_path: Path) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    sources, exports, warehouse = tmp_path / "sources", tmp_path / "exports", tmp_path / "wh" / "directory.duckdb"
    shutil.copytree(FIXTURES / "sources", sources)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_RUNNER_POLL_FREQUENCY="1", PREFECT_UI_ENABLED="false",
               CURATE_INBOX_SETTLE="1.5", CURATE_INBOX_POLL="0.3", CURATE_CRON="15 2 * * *", CURATE_TZ="Europe/Oslo")  # fmt: skip
    args = [CURATE, "serve", "--sources", str(sources), "--exports", str(exports), "--warehouse", str(warehouse), "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with SyncPrefectClient(url) as client:

            def deployment(name: str):
                try:
                    return client.read_deployment_by_name(f"curate-scheduled/{name}")
                except Exception:
                    return None

            nightly = until(lambda: deployment("curate-nightly"), 60, proc, "curate-nightly to be registered")
            assert until(lambda: deployment("curate-inbox"), 10, proc, "curate-inbox")
            cron = nightly.schedules[0].schedule
            assert (cron.cron, cron.timezone) == ("15 2 * * *", "Europe/Oslo")
            # the nightly deployment, triggered through the API
            run = client.create_flow_run_from_deployment(nightly.id)
            done = until(lambda: (s := client.read_flow_run(run.id).state) is not None and s.is_final() and s, 60, proc, "the nightly run")
            assert done.is_completed(), done.message
            assert "Harbour Listening Line" in names(exports)
            # a burst of drops, one of them written in two parts: one inbox run, both listings published
            (sources / "gamma.csv").write_text(HEADER + "g1,Gamma Drop Line,helpline,https://gamma.example/,NO,general\n", encoding="utf-8")
            with (sources / "delta.csv").open("w", encoding="utf-8") as f:
                f.write(HEADER)
                f.flush()
                time.sleep(0.5)
                f.write("d1,Delta Drop Line,helpline,https://delta.example/,SE,general\n")
            until(lambda: {"Gamma Drop Line", "Delta Drop Line"} <= names(exports), 60, proc, "the dropped listings in exports/current")
            inbox_runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["curate-inbox"])))
            assert len(inbox_runs) == 1 and "delta.csv" in str(inbox_runs[0].parameters["trigger"])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=40)
    assert code == 0
    with pytest.raises(requests.RequestException):  # the server it started is gone too
        requests.get(f"{url}/health", timeout=2)
    assert (tmp_path / "prefect-home" / "server.log").is_file()


def test_bad_cron_or_time_zone_is_refused() -> None:
    check_schedule("0 3 * * *", "Europe/Oslo")
    with pytest.raises(ServeError, match="CURATE_CRON"):
        check_schedule("every night", "UTC")
    with pytest.raises(ServeError, match="CURATE_TZ"):
        check_schedule("0 3 * * *", "Mars/Olympus")


def test_serve_with_a_bad_cron_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "CURATE_CRON": "61 * * * *"}
    done = subprocess.run([CURATE, "serve", "--sources", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "CURATE_CRON" in done.stderr
