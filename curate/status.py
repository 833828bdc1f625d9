"""``curate status``: the last runs with their outcome, the current release and its counts, the next scheduled run.

:func:`last_runs`, :func:`current_release` and :func:`next_scheduled` read the world (warehouse, exports folder,
Prefect server); :func:`cron_next` and :func:`outcome` are pure.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from curate.lock import current_holder, describe
from curate.warehouse import sql

NIGHTLY = "curate-nightly"


@dataclass
class RunLine:
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    release_id: str | None
    sources: int
    rows: int
    rejected: int


@dataclass
class Status:
    runs: list[RunLine] = field(default_factory=list)
    runs_note: str = ""
    release: dict[str, Any] | None = None
    running: str | None = None
    next_run: str = ""
    schedule: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": [{**r.__dict__, "started_at": r.started_at.isoformat(), "finished_at": r.finished_at and r.finished_at.isoformat()}
                     for r in self.runs],
            "runs_note": self.runs_note,
            "running": self.running,
            "release": self.release,
            "next_run": self.next_run,
            "schedule": self.schedule,
        }  # fmt: skip


def outcome(recorded: str | None, finished: dt.datetime | None, latest: bool, running: bool) -> str:
    """``published``/``held`` as recorded; an unfinished run is ``running`` while the lock is held, else it died."""
    if recorded:
        return recorded
    if latest and running:
        return "running"
    return "failed (did not finish)" if finished is None else "unknown"


def last_runs(warehouse_file: Path, limit: int, running: bool) -> tuple[list[RunLine], str]:
    """The newest ``limit`` runs recorded in the warehouse, and a note when they cannot be read."""
    if not warehouse_file.is_file():
        return [], f"no warehouse at {warehouse_file} yet: nothing has run"
    try:
        con = duckdb.connect(str(warehouse_file), read_only=True)
    except duckdb.Error as exc:
        return [], f"the warehouse cannot be read right now ({str(exc).splitlines()[0]})"
    try:
        rows = con.execute(sql("run_history"), [limit]).fetchall()
    except duckdb.Error as exc:
        return [], f"the warehouse has no run records ({str(exc).splitlines()[0]})"
    finally:
        con.close()
    return [
        RunLine(str(r[0]), r[1], r[2], outcome(r[3], r[2], i == 0, running), r[4], int(r[5]), int(r[6]), int(r[7]))  # type: ignore[arg-type]
        for i, r in enumerate(rows)
    ], ""


def current_release(exports_dir: Path) -> dict[str, Any] | None:
    """``release_id``, ``generated_at`` and ``counts`` of the release ``exports/current`` points at."""
    manifest = exports_dir / "current" / "manifest.json"
    if not manifest.is_file():
        return None
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    return {k: doc.get(k) for k in ("release_id", "generated_at", "previous_release", "counts")}


def cron_next(cron: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """When ``cron`` in ``timezone`` fires next after ``now``."""
    from cronsim import CronSim

    return next(iter(CronSim(cron, now.astimezone(zoneinfo.ZoneInfo(timezone)))))


def next_scheduled(api_url: str | None, deployment: str = NIGHTLY) -> str | None:
    """The next scheduled run of ``deployment`` on the Prefect server, or ``None`` when none is known.

    Raises when the server cannot be reached."""
    if not api_url:
        return None
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with SyncPrefectClient(api_url, httpx_settings={"timeout": 10}) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=1,
        )
    if not runs or runs[0].expected_start_time is None:
        return None
    return runs[0].expected_start_time.astimezone(dt.UTC).isoformat(timespec="seconds")


def gather(
    warehouse_file: Path, exports_dir: Path, cron: str, timezone: str, api_url: str | None, now: dt.datetime, limit: int = 10
) -> Status:
    held = current_holder(warehouse_file)
    runs, note = last_runs(warehouse_file, limit, held is not None)
    status = Status(runs, note, current_release(exports_dir), describe(held) if held is not None else None)
    status.schedule = f"{cron} ({timezone})"
    try:
        upcoming = next_scheduled(api_url)
    except Exception as exc:  # an unreachable server is a status to show, not a crash
        status.next_run = f"unknown: the Prefect server at {api_url} cannot be reached ({type(exc).__name__})"
        return status
    if upcoming:
        status.next_run = f"{upcoming} ({NIGHTLY} on {api_url})"
    elif api_url:
        status.next_run = f"none scheduled: {NIGHTLY} is not registered on {api_url} (start `curate serve`)"
    else:
        when = cron_next(cron, timezone, now).isoformat(timespec="minutes")
        status.next_run = f"unknown: no Prefect server (PREFECT_API_URL unset); if `curate serve` runs, the schedule fires at {when}"
    return status
