"""`curate status`: last runs and outcomes, current release and counts, next scheduled run."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from curate import status
from curate.cli import app
from curate.lock import warehouse_lock
from tests.test_flow import NOW, run, settings_for


def cli_status(settings, *extra: str):
    args = ["status", "--sources", str(settings.sources_dir), "--exports", str(settings.exports_dir)]
    return CliRunner().invoke(app, [*args, "--warehouse", str(settings.warehouse_file), *extra], env={"COLUMNS": "250"})


def test_status_shows_runs_outcomes_release_and_schedule(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    summary = run(settings, NOW)
    con = duckdb.connect(str(settings.warehouse_file))  # a later run that was killed half-way: started, never finished
    con.execute("INSERT INTO runs (run_id, started_at) VALUES ('killed-run', ?)", [NOW.replace(tzinfo=None) + dt.timedelta(hours=1)])
    con.close()
    result = cli_status(settings, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(r["run_id"], r["outcome"]) for r in doc["runs"]] == [("killed-run", "failed (did not finish)"),
                                                                  (summary.run_id, "published")]  # fmt: skip
    first = doc["runs"][1]
    assert (first["release_id"], first["sources"], first["rows"], first["rejected"]) == (summary.release_id, 2, 10, 1)
    assert doc["release"]["release_id"] == summary.release_id and doc["release"]["counts"]["listings"] == 6
    assert doc["running"] is None
    # the session's Prefect server is reachable but has no curate-nightly deployment
    assert doc["next_run"].startswith("none scheduled: curate-nightly is not registered")
    text = cli_status(settings)
    assert text.exit_code == 0
    flat = " ".join(text.output.split())
    assert "Last runs" in text.output and "published" in flat and "failed (did not finish)" in flat
    assert f"Current release: {summary.release_id}" in flat and "6 listings" in flat
    assert "Schedule: curate-nightly at 0 3 * * * (UTC)" in flat


def test_a_run_holding_the_lock_is_shown_running(fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    con = duckdb.connect(str(_warehouse_with_runs(settings.warehouse_file)))
    con.close()
    with warehouse_lock(settings.warehouse_file, 0, "curate run"):
        st = status.gather(settings.warehouse_file, settings.exports_dir, "0 3 * * *", "UTC", None, NOW)
    assert st.running and "curate run" in st.running and [r.outcome for r in st.runs] == ["running", "published"]
    assert st.release is None
    after = status.gather(settings.warehouse_file, settings.exports_dir, "0 3 * * *", "UTC", None, NOW)
    assert after.running is None and after.runs[0].outcome == "failed (did not finish)"


def _warehouse_with_runs(path: Path) -> Path:
    from curate import warehouse as wh

    con = wh.connect(path)
    start = NOW.replace(tzinfo=None)
    wh.run(con, "INSERT INTO runs VALUES ('a', ?, ?, 'published', 'r1'), ('b', ?, NULL, NULL, NULL)",
           [start, start + dt.timedelta(minutes=1), start + dt.timedelta(hours=1)])  # fmt: skip
    con.close()
    return path


def test_next_run_without_a_server_follows_the_cron_in_its_timezone(tmp_path: Path) -> None:
    st = status.gather(tmp_path / "none.duckdb", tmp_path / "exports", "30 2 * * *", "Europe/Oslo", None, NOW)
    assert st.runs == [] and "nothing has run" in st.runs_note
    assert st.next_run.startswith("unknown: no Prefect server") and "2026-11-26T02:30+01:00" in st.next_run
    assert status.cron_next("0 3 * * *", "UTC", NOW) == dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)


def test_an_unreachable_server_is_reported_not_raised(tmp_path: Path) -> None:
    start = time.monotonic()
    st = status.gather(tmp_path / "none.duckdb", tmp_path / "exports", "0 3 * * *", "UTC", "http://127.0.0.1:9/api", NOW)
    assert st.next_run.startswith("unknown: the Prefect server at http://127.0.0.1:9/api cannot be reached")
    assert time.monotonic() - start < 60
