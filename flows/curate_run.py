"""The pipeline as a Prefect flow: its table of contents.

ingest + stage + validate (one task per source) -> warehouse -> core (dedupe)
-> export release -> curator reports.  Each task is a batch; the stages they call
are pure functions in ``curate``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from curate import export, report
from curate import warehouse as wh
from curate.checking import SourceResult, check_source
from curate.problems import problem
from curate.read import ROW
from curate.settings import Settings
from curate.sources import SourceFile, discover, report_name
from curate.stage import MATCH


@dataclass
class RunSummary:
    """What one run did, for the terminal and for tests."""

    run_id: str
    sources: list[dict[str, object]] = field(default_factory=list)
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    listings: int = 0
    public_listings: int = 0
    locations: int = 0
    countries: int = 0
    release_id: str | None = None
    release_path: str | None = None
    messages: list[str] = field(default_factory=list)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def ingest_source(source: SourceFile, today: dt.date, max_bytes: int) -> tuple[SourceResult, bytes]:
    """Read one source file and check it (stage + validate)."""
    size = source.path.stat().st_size
    if size > max_bytes:
        result = SourceResult(source.source_id, source.path.name, "")
        result.problems.append(
            problem(source.source_id, source.path.name, "file_too_large", value=f"{size / 1e6:.1f} MB", detail=f"{max_bytes / 1e6:.0f} MB")
        )
        return result, b""
    data = source.path.read_bytes()
    return check_source(data, source.path.name, source.source_id, source.options, today), data


@task(cache_policy=NO_CACHE)
def load_warehouse(settings: Settings, results: list[tuple[SourceResult, bytes]], run_id: str, now: dt.datetime) -> list[str]:
    """Keep every version read, the raw tables, the staged rows and the problems; returns messages.

    Adds to each result's problems the rows whose last valid version was kept.
    """
    messages = []
    con = wh.connect(settings.warehouse_file)
    try:
        wh.run(con, "INSERT INTO runs (run_id, started_at) VALUES (?, ?)", [run_id, now.replace(tzinfo=None)])
        for result, data in results:
            digest = wh.store_version(con, result.source_id, result.file, data, now.replace(tzinfo=None)) if data else None
            if result.raw is not None:
                wh.write_raw(con, result.source_id, result.raw, digest)
            if result.usable:
                assert result.accepted is not None and result.rejected is not None
                invalid = result.rejected[MATCH].tolist()
                kept = wh.replace_staged(con, result.source_id, result.accepted, digest, result.priority, invalid)
                for key, row in zip(result.rejected[MATCH], result.rejected[ROW], strict=True):
                    if key in kept:
                        result.problems.append(
                            problem(result.source_id, result.file, "kept_previous_version", row=int(row), detail=str(kept[key]))
                        )
                status = "ok"
            else:
                status = "kept"
                reason = next(p.message for p in result.problems if p.severity == "error")
                messages.append(f"{result.file}: not used this run ({reason}); its last good rows are kept.")
            wh.run(
                con,
                "INSERT INTO source_reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    result.source_id,
                    result.file,
                    digest,
                    now.replace(tzinfo=None),
                    status,
                    result.rows_read,
                    result.rows_accepted,
                    result.rows_rejected,
                ],
            )
            wh.record_problems(con, run_id, result.source_id, result.problems)
        gone = wh.drop_sources_not_in(con, [r.source_id for r, _ in results])
        messages += [f"source {g} was removed from sources/: its listings are withdrawn." for g in gone]
    finally:
        con.close()
    return messages


@task(cache_policy=NO_CACHE)
def build_core(settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Merge staged rows into listings with stable ids (warehouse/sql/core_listings.sql)."""
    con = wh.connect(settings.warehouse_file)
    try:
        return wh.build_core(con, now, settings.max_verified_age_months)
    finally:
        con.close()


@task(cache_policy=NO_CACHE)
def export_release(settings: Settings, now: dt.datetime, run_id: str) -> export.Release:
    """Publish ``out_listings`` as a release and switch ``exports/current`` to it."""
    con = wh.connect(settings.warehouse_file)
    try:
        listings = export.public_listings(con)
        sources = int(wh.run(con, "SELECT count(DISTINCT source_id) FROM stg_listings")[0][0])  # type: ignore[call-overload]
        release = export.publish(listings, settings.exports_dir, now, settings.keep_releases, {"sources": sources})
        wh.run(
            con,
            "UPDATE runs SET finished_at = ?, outcome = 'published', release_id = ? WHERE run_id = ?",
            [dt.datetime.now(dt.UTC).replace(tzinfo=None), release.release_id, run_id],
        )
        return release
    finally:
        con.close()


@task(cache_policy=NO_CACHE)
def write_reports(settings: Settings, results: list[SourceResult]) -> None:
    """``sources/reports/<source>.html`` and ``.rejected.csv`` for every source read."""
    for r in results:
        report.write_reports(
            settings.reports_dir, report_name(r.source_id), r.file, r.problems, r.rows_read, r.rows_accepted, r.raw, r.mapping
        )


@flow(name="curate-run", validate_parameters=False)
def curate_run(settings: Settings, now: dt.datetime | None = None) -> RunSummary:
    """One whole pipeline run: ingest -> validate -> dedupe -> export -> publish."""
    logger = get_run_logger()
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    run_id = now.strftime("%Y%m%dT%H%M%SZ")
    summary = RunSummary(run_id)
    sources, toml_error = discover(settings.sources_dir)
    if toml_error:
        summary.messages.append(toml_error)
    results: list[tuple[SourceResult, bytes]] = [
        f.result() for f in ingest_source.map(sources, today=now.date(), max_bytes=settings.max_source_bytes)
    ]
    summary.messages += load_warehouse(settings, results, run_id, now)
    checked = [r for r, _ in results]
    write_reports(settings, checked)
    counts = build_core(settings, now)
    release = export_release(settings, now, run_id)
    for r in checked:
        errors = [p for p in r.problems if p.severity == "error"]
        summary.sources.append(
            {
                "source": r.source_id,
                "file": r.file,
                "rows": r.rows_read,
                "accepted": r.rows_accepted,
                "rejected": r.rows_rejected,
                "errors": len(errors),
                "warnings": len(r.problems) - len(errors),
                "usable": r.usable,
            }
        )
    summary.rows_read = sum(r.rows_read for r in checked)
    summary.rows_accepted = sum(r.rows_accepted for r in checked)
    summary.rows_rejected = sum(r.rows_rejected for r in checked)
    summary.listings = counts["listings"]
    summary.public_listings = release.counts["listings"]
    summary.locations = release.counts["locations"]
    summary.countries = sum(1 for p in (release.path / "locations").glob("*.json") if len(p.stem) == 2 and p.stem != "WW")
    summary.release_id = release.release_id
    summary.release_path = str(release.path)
    logger.info("published release %s with %d listings in %d locations", release.release_id, summary.public_listings, summary.locations)
    return summary


__all__ = ["RunSummary", "curate_run"]
