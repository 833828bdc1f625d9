"""The pipeline as a Prefect flow: its table of contents.

state -> ingest + stage + validate (one task per source) -> warehouse -> reports
-> link health (one task per batch of hosts) -> core (entity resolution, stable ids, link status)
-> review queue, link report -> export release.  Each task is a batch; the stages they call are pure
functions in ``curate``, the edges are ``curate.ingest``, ``curate.links``, ``curate.warehouse`` and
``curate.export``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import uuid
from asyncio import CancelledError
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import duckdb
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from curate import artifacts, caching, export, fetch, links, links_report, patched, report, resolve
from curate import warehouse as wh
from curate.checking import checked_at_most, checked_in_processes
from curate.collector import give_back_freed_memory
from curate.ingest import Ingested, Previous, ingest, unchanged_local
from curate.lock import warehouse_lock
from curate.notify import RunEvent, notifiers, notify_all
from curate.problems import Problem, problem
from curate.read import ROW
from curate.settings import LinkSettings, Settings
from curate.sources import SourceFile, discover, report_name, report_path
from curate.stage import MATCH
from schemas.distinct import workers_forked


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
    #: why the release was held (mass removal), when it was: nothing was published
    held: str | None = None
    #: listings added, removed and changed since the previous release
    changes: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    links: LinkRun | None = None  # None: --skip-links
    #: each source parsed this run: its first ``artifacts.MAX_REJECTED_ROWS`` row-level errors (``Problem.as_dict()``),
    #: which the run's artifacts show (its curator report holds them all)
    rejected: dict[str, list[dict[str, object]]] = field(default_factory=dict)


@dataclass
class LinkRun:
    """What the link-health step did in one run."""

    checked: int = 0  # distinct URLs requested
    cached: int = 0  # distinct URLs answered by a check younger than max_age_hours
    batches: int = 0  # tasks they were checked in
    results: dict[str, int] = field(default_factory=dict)  # checked URLs per result
    offline: str | None = None  # why the run concluded that the checker is offline
    dead_listings: int = 0  # listings whose every link is dead (withheld from the release)


@task(cache_policy=NO_CACHE)
def read_state(settings: Settings, sources: list[SourceFile]) -> dict[str, Previous]:
    """What the warehouse knows of each source from earlier runs."""
    if not settings.warehouse_file.exists():
        return {}
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        return wh.previous_state(con, [s.source_id for s in sources if s.path is None])
    finally:
        con.close()


@task(cache_key_fn=caching.ingest_cache_key, cache_expiration=caching.EXPIRATION, persist_result=True, retries=2,
      retry_delay_seconds=[2, 10], cache_result_in_memory=False, result_serializer=caching.SERIALIZER)  # fmt: skip
def ingest_source(source: SourceFile, today: dt.date, settings: Settings, previous: Previous) -> Ingested:
    """Read or download one source and check it (stage + validate); unchanged sources are not parsed again.

    I/O: retried on an unexpected error; a local source's result is cached for a day (``curate.caching``)."""
    limits = fetch.FetchLimits(
        settings.connect_timeout, settings.read_timeout, settings.max_source_bytes, settings.fetch_retries, settings.fetch_backoff
    )
    session = fetch.make_session(limits, pool_size=1) if source.path is None else None
    try:
        reports_exist = report_path(settings.reports_dir, source.source_id).is_file()
        return ingest(source, today, settings.max_source_bytes, previous, session, limits, reports_exist)
    finally:
        if session is not None:
            session.close()


@task(cache_policy=NO_CACHE)
def find_unchanged(settings: Settings, sources: list[SourceFile], state: dict[str, Previous]) -> dict[str, Ingested]:
    """The local sources unchanged since their last parse, by id, as ``ingest_source`` gives them (not parsed again):
    read and hashed in one task, not each in one of its own (on a rerun, 100 task runs took 2-4 s of it)."""
    out = {}
    for s in sources:
        reports_exist = report_path(settings.reports_dir, s.source_id).is_file()
        got = unchanged_local(s, settings.max_source_bytes, state.get(s.source_id, Previous()), reports_exist)
        if got is not None:
            out[s.source_id] = got
    return out


@task(cache_policy=NO_CACHE)
def load_warehouse(
    settings: Settings, batch: Iterable[Ingested], run_id: str, now: dt.datetime, staged: Callable[[], None] | None = None
) -> list[str]:
    """Keep every version read, the raw tables, the staged rows and the problems; returns messages.

    Adds to each result's problems the rows whose last valid version was kept.  The usable sources' rows are staged
    together (``wh.replace_staged_many``), as if one after the other, ``wh.STAGED_AT_ONCE`` rows at a time.
    ``batch`` may be the sources as their checks end (``_as_checked``): each is loaded while the next are checked.
    All of it is one transaction: a failure (a source whose check raised) leaves the warehouse as it was.
    ``staged`` is called once every source is staged, before they are committed (the run goes on beside).
    """
    messages: list[str] = []
    loaded: list[str] = []  # the sources' ids
    stamp = now.replace(tzinfo=None)
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    # each version's bytes are kept as they come, outside the transaction (kept whatever happens to the run; at 1M
    # rows its commit then took 1.6 s against 2.0-2.5 s)
    versions = con.cursor()
    staging: list[tuple[Ingested, str | None]] = []  # usable sources, with their version, to stage together

    def read(item: Ingested, digest: str | None, status: str) -> None:
        result = item.result
        errors = sum(1 for p in result.problems if p.severity == "error")
        wh.run(
            con,
            "INSERT INTO source_reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, result.source_id, item.origin or result.file, digest, stamp, status, result.rows_read, result.rows_accepted,
             result.rows_rejected, item.fingerprint if status != "kept" else None, errors, len(result.problems) - errors],
        )  # fmt: skip

    def stage() -> None:
        if not staging:
            return
        staged = [wh.Staged(i.result.source_id, i.result.accepted, d, i.result.priority, i.result.rejected) for i, d in staging]  # type: ignore[arg-type]
        for (item, _), kept in zip(staging, wh.replace_staged_many(con, staged), strict=True):
            result = item.result
            assert result.rejected is not None
            for key, row in zip(result.rejected[MATCH], result.rejected[ROW], strict=True):
                if key in kept:
                    result.problems.append(
                        problem(result.source_id, result.file, "kept_previous_version", row=int(row), detail=str(kept[key]))
                    )
        for item, digest in staging:  # (a source's problems at a time: in one Arrow table, 545k problems took as long,
            wh.record_problems(con, run_id, item.result.source_id, item.result.problems)  # and Arrow's pool kept 0.25 GB)
            read(item, digest, "ok")
        staging.clear()

    try:
        # checkpoint once, when the connection closes: by default DuckDB checkpoints each time its log passes 16 MB,
        # rewriting the staged rows' key index each time (at 1M rows, half of this step's time, growing with the rows)
        wh.run(con, "SET checkpoint_threshold = '16GB'")
        wh.run(con, "INSERT INTO runs (run_id, started_at) VALUES (?, ?)", [run_id, stamp])  # (kept: a run that
        con.begin()  # fails is shown as one, ``curate status``)
        for item in batch:
            result = item.result
            loaded.append(result.source_id)
            if any(i.result.source_id == result.source_id for i, _ in staging):
                stage()  # (two files of one source id: the later one replaces the earlier, as it did one at a time)
            messages += item.notes
            digest = wh.store_version(versions, result.source_id, item.origin, item.data, stamp) if item.data else None
            if item.fetched is not None:
                wh.record_fetch(con, run_id, result.source_id, item.origin, item.fetched, digest, stamp)
            if not item.reused:
                result.previous_problems = wh.previous_problems(con, result.source_id)
            if item.reused:
                read(item, digest, "unchanged")
            elif result.usable:
                assert result.accepted is not None and result.rejected is not None
                if result.raw is not None:
                    wh.write_raw(con, result.source_id, result.raw, digest)
                staging.append((item, digest))
                if sum(i.result.rows_accepted for i, _ in staging) >= wh.STAGED_AT_ONCE:
                    stage()  # (while the sources after it are checked)
            else:
                if result.raw is not None:
                    wh.write_raw(con, result.source_id, result.raw, digest)
                wh.record_problems(con, run_id, result.source_id, result.problems)
                read(item, digest, "kept")
                reason = next(p.message for p in result.problems if p.severity == "error")
                messages.append(f"{result.file}: not used this run ({reason}); its last good rows are kept.")
        stage()
        gone = wh.drop_sources_not_in(con, loaded)
        messages += [f"source {g} was removed from sources/: its listings are withdrawn." for g in gone]
        if staged is not None:
            staged()
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        versions.close()
        con.close()
    return messages


@task(cache_policy=NO_CACHE)
def write_reports(settings: Settings, batch: list[Ingested]) -> None:
    """``sources/reports/<source>.html`` and ``.rejected.csv`` for every source parsed this run; each source's problems
    and raw rows are let go of once its reports are written (the run has no more use for them)."""
    for item in batch:
        r = item.result
        if not item.reused:
            report.write_reports(
                settings.reports_dir,
                report_name(r.source_id),
                r.file,
                r.problems,
                r.rows_read,
                r.rows_accepted,
                r.raw,
                r.mapping,
                r.previous_problems,
            )
        r.raw, r.problems, r.previous_problems = None, [], None
    give_back_freed_memory()


@task(cache_policy=NO_CACHE)
def build_core(settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Entity resolution (obeying sources/overrides.toml), then listings with stable ids (warehouse/sql/core_listings.sql)
    and their link status from the check history (warehouse/sql/link_health.sql)."""
    overrides = resolve.load_overrides(settings.overrides_file)
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        return wh.build_core(con, now, settings.max_verified_age_months, overrides, dead_after=settings.links.dead_after)
    finally:
        con.close()


@task(cache_policy=NO_CACHE)
def write_review(settings: Settings) -> list[str]:
    """``sources/reports/possible-duplicates.html``: the pairs curators should settle; returns the override problems."""
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        resolve.write_duplicates_report(settings.reports_dir, con)
        return resolve.duplicates(con, 0)[2]
    finally:
        con.close()


@task(cache_policy=NO_CACHE)
def plan_links(settings: Settings, now: dt.datetime) -> tuple[list[list[str]], int]:
    """The staged listings' distinct URLs that need a check, in batches of whole hosts; and how many are fresh enough."""
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        due, cached = wh.links_due(con, now, settings.links.max_age_hours)
    finally:
        con.close()
    return links.host_batches(due, settings.links.batches), len(cached)


@task(cache_policy=NO_CACHE)
def check_link_batch(urls: list[str], limits: LinkSettings) -> list[links.LinkCheck]:
    """Check one batch of hosts' URLs (HTTP at the edge: ``curate.links``); never raises for a bad link."""
    return links.check_links(urls, limits)


@task(cache_policy=NO_CACHE)
def record_links(settings: Settings, run_id: str, now: dt.datetime, checks: list[links.LinkCheck]) -> tuple[dict[str, int], str | None]:
    """Conclude over all batches whether the checker was offline, then keep every check in ``link_checks``."""
    concluded, offline = links.conclude_offline(checks, settings.links)
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        wh.record_link_checks(con, run_id, now, concluded)
    finally:
        con.close()
    return dict(Counter(c.result for c in concluded)), offline


def link_health(settings: Settings, run_id: str, now: dt.datetime) -> LinkRun:
    """Plan, check (one task per batch of hosts, at most ``links.batches``) and record; the global cap is shared."""
    batches, cached = plan_links(settings, now)
    per_batch = replace(settings.links, workers=max(1, math.ceil(settings.links.workers / max(1, len(batches)))))
    futures = [check_link_batch.submit(batch, per_batch) for batch in batches]
    checks: list[links.LinkCheck] = []
    for batch, future in zip(batches, futures, strict=True):
        got = future.result(raise_on_failure=False)
        if isinstance(got, BaseException):  # a bug in the checker: these links are not judged this run, nothing is lost
            why = f"not checked: the link check failed ({got})"
            checks += [links.LinkCheck(u, "skipped", error=why, host=links.host_of(u)) for u in batch]
        else:
            checks += got
    results, offline = record_links(settings, run_id, now, checks)
    return LinkRun(checked=len(checks), cached=cached, batches=len(batches), results=results, offline=offline)


@task(cache_policy=NO_CACHE)
def write_link_report(settings: Settings, now: dt.datetime, run: LinkRun | None) -> int:
    """``sources/reports/links.html``: dead listings with their evidence, failing links, proposed URL updates.

    Returns how many listings are dead.
    """
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    try:
        data = wh.link_report_data(con)
    finally:
        con.close()
    links_report.write_links_report(settings.reports_dir, data, now, run, settings.links)
    if data.changes:  # CONTRACT section 7: each run leaves the link health changes as an artifact
        create_table_artifact(
            [{"id": i, "name": n, "before": b, "after": a} for i, n, b, a in data.changes],
            key="link-health-changes",
            description=f"Listings whose link status changed in this run; details in {settings.reports_dir / 'links.html'}",
        )
    return len(data.dead_listings)


@task(cache_policy=NO_CACHE)
def export_release(settings: Settings, now: dt.datetime, run_id: str, sources: list[SourceFile]) -> export.Release | export.Held:
    """Publish ``out_listings`` as a release and switch ``exports/current`` to it; a mass removal is held instead."""
    options = {s.source_id: s.options for s in sources}
    con = wh.connect(settings.warehouse_file, settings.duckdb_memory)
    writers = export.warehouse_writers(con)  # (of the table ``listings`` are read from)
    try:
        compared = export.compared_in_warehouse(con, settings.exports_dir)  # (None: the release before is read instead)
        used = sorted(str(r[0]) for r in wh.run(con, "SELECT DISTINCT source_id FROM stg_listings"))
        meta = [
            export.SourceMeta(sid, options[sid].licence, options[sid].attribution, options[sid].url)
            if sid in options
            else export.SourceMeta(sid)
            for sid in used
        ]
        guard = export.Guard(settings.mass_removal_share, settings.mass_removal_min, settings.allow_mass_removal)
        checkpoint = export.pause_at(settings.pause_at, settings.exports_dir) if settings.pause_at else export.no_checkpoint
        # a run that changed no listing publishes the current release's files again, taken as they are (not read)
        release = export.publish_unchanged(
            settings.exports_dir, now, settings.keep_releases, {"sources": len(used)}, compared, meta, checkpoint
        )
        try:
            if release is None:  # a run that changed a few listings patches them into the current release's files
                release = patched.publish_patched(
                    con, settings.exports_dir, now, settings.keep_releases, {"sources": len(used)}, compared, meta, guard, checkpoint
                )
            if release is None:
                release = export.publish(
                    export.public_listings(con),
                    settings.exports_dir,
                    now,
                    settings.keep_releases,
                    {"sources": len(used)},
                    meta,
                    guard,
                    checkpoint,
                    let_go_of_listings=True,  # (not used here after)
                    writers=writers,
                    compared=compared,
                )
        except export.ReleaseHeld as held:
            finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            wh.run(con, "UPDATE runs SET finished_at = ?, outcome = 'held' WHERE run_id = ?", [finished, run_id])
            get_run_logger().error("%s", held)
            return export.Held(held.release_id, str(held))
        try:
            export.remember_release(con, release)  # what the next run compares its listings with
        except duckdb.Error as exc:  # (the release stands: the next run reads it instead)
            get_run_logger().warning("the warehouse could not keep release %s's listings: %s", release.release_id, exc)
        wh.run(
            con,
            "UPDATE runs SET finished_at = ?, outcome = 'published', release_id = ? WHERE run_id = ?",
            [dt.datetime.now(dt.UTC).replace(tzinfo=None), release.release_id, run_id],
        )
        if release.locations_taken:
            get_run_logger().info("%d locations' files taken unchanged from release %s", len(release.locations_taken), release.previous)
        return release
    finally:
        writers.close()  # (its builds, stopped, not going on as the connection closes)
        con.close()


def _source_line(item: Ingested, previous: Previous) -> dict[str, object]:
    r = item.result
    if item.reused:
        return {"source": r.source_id, "file": r.file, "rows": previous.rows_read, "accepted": previous.rows_accepted,
                "rejected": previous.rows_read - previous.rows_accepted, "errors": previous.errors, "warnings": previous.warnings,
                "usable": True, "unchanged": True}  # fmt: skip
    errors = sum(1 for p in r.problems if p.severity == "error")
    return {"source": r.source_id, "file": r.file, "rows": r.rows_read, "accepted": r.rows_accepted, "rejected": r.rows_rejected,
            "errors": errors, "warnings": len(r.problems) - errors, "usable": r.usable, "unchanged": False}  # fmt: skip


@task(cache_policy=NO_CACHE)
def record_artifacts(summary: RunSummary) -> list[str]:
    """The run's Prefect artifacts: summary table, rejected rows per source, link health, why a release was held."""
    run = summary.links
    counts = {**run.results, "dead_listings": run.dead_listings} if run is not None else {}
    table = artifacts.summary_table(
        summary.sources, summary.listings, summary.public_listings, summary.changes, counts, summary.release_id, summary.held
    )
    text = artifacts.links_markdown(None)
    if run is not None:
        text = artifacts.links_markdown(run.results, run.dead_listings, run.offline, run.cached)
    return artifacts.record(summary.run_id, table, summary.rejected, text, summary.held)


@flow(name="curate-run", validate_parameters=False)
def curate_run(settings: Settings, now: dt.datetime | None = None, skip_links: bool = False) -> RunSummary:
    """One whole pipeline run: ingest -> validate -> link health -> dedupe -> export -> publish.

    The run holds the warehouse lock throughout (one writer), leaves its artifacts in Prefect, and notifies
    (log, webhook) when it fails or holds its release.
    """
    logger = get_run_logger()
    told = notifiers(settings.notify_webhook, logger)
    try:
        with warehouse_lock(settings.warehouse_file, settings.lock_wait_seconds, "curate run", logger.warning):
            summary = pipeline(settings, now, skip_links)
    except BaseException as exc:
        why = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, CancelledError | KeyboardInterrupt):
            why = "the run was stopped: it exceeded its time limit (CURATE_FLOW_TIMEOUT) or was cancelled"
        notify_all(told, RunEvent("failed", _flow_run_name(), why, str(settings.warehouse_file)))
        raise
    record_artifacts(quote(summary))  # type: ignore[call-overload]
    if summary.held:
        notify_all(told, RunEvent("held", summary.run_id, summary.held, str(settings.warehouse_file)))
    return summary


def task_runner_for(settings: Settings) -> Any:
    """The task runner per-source ingest is submitted to (``settings.task_runner``)."""
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": settings.workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=settings.workers)


def configured(settings: Settings) -> Any:
    """``curate_run`` with the settings' task runner and time limit: what the CLI and the deployments call."""
    return curate_run.with_options(timeout_seconds=settings.flow_timeout_seconds, task_runner=task_runner_for(settings))


@contextlib.contextmanager
def on_local_server() -> Iterator[None]:
    """Where a run is made (``curate run``, the benchmarks): on Prefect's temporary server (``PREFECT_API_URL`` unset),
    without flow run heartbeats.  They let a server that outlives a run find it crashed, and the temporary server ends
    with this process; the thread sending them sleeps a second at a time, and a run's end waits for it: every run
    took whole seconds and 0.07 s more (a flow whose task took 0.01 s or 0.9 s, 1.07-1.08 s).  A run on a server of
    its own (``curate serve``, ``PREFECT_API_URL``) keeps them."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.name or flow_run.id or "?")


#: sources' bytes in all from which a run starts worker processes for them (checking them, or parsing their phone
#: numbers; below, starting them costs more)
SHARED_WORKERS_MIN_BYTES = 16_000_000
#: sources checked at once while those workers parse their numbers (one file's Python work goes on while another
#: waits for its numbers; without them, one at a time)
CHECKED_WITH_WORKERS = 2
#: sources given at once to each worker process checking them (``checked_in_processes``): one checked, one waiting,
#: so that a worker never waits for this process to send the next
CHECKED_PER_PROCESS = 2


def _local_bytes(sources: list[SourceFile]) -> int:
    total = 0
    for s in sources:
        with contextlib.suppress(OSError):
            total += s.path.stat().st_size if s.path is not None and s.path.is_file() else 0
    return total


def _let_go_of_rows(batch: list[Ingested]) -> None:
    """Once the warehouse holds the sources, the rows each result carries (the bytes, the raw, accepted and rejected
    frames: about 2 GB at 1M rows) are let go before entity resolution.  Kept are the raw rows a problem names, all
    the curator reports show (``curate.report``), and the count of accepted rows.  Prefect's run context still refers
    to these objects, but no later run reuses them: ``ingest_source`` keeps its cached results on disk only
    (``cache_result_in_memory=False``), so a cache hit reads a copy of its own."""
    for item in batch:
        result = item.result
        item.data, result.pickled = b"", None
        if result.accepted is not None:  # its count of rows is kept, without its columns (the reports give it)
            result.accepted = pd.DataFrame(index=pd.RangeIndex(len(result.accepted)))
        result.rejected = None
        if item.reused or result.raw is None:
            result.raw = None
        else:
            named = {p.row for p in result.problems if p.row is not None}
            result.raw = result.raw[result.raw[ROW].isin(named)] if named else result.raw.iloc[:0]
    give_back_freed_memory()


def _as_checked(
    sources: list[SourceFile], unchanged: dict[str, Ingested], futures: dict[str, Any], batch: list[Ingested]
) -> Iterator[Ingested]:
    """Each source's ``Ingested``, in the order of ``sources``, as its check ends (``futures``: ``ingest_source``'s)
    or from ``unchanged``; each is put in ``batch`` too (the run goes on with them once they are loaded)."""
    for s in sources:
        item = unchanged[s.source_id] if s.source_id in unchanged else futures[s.source_id].result()
        batch.append(item)
        yield item


def _row_errors(problems: list[Problem]) -> Iterator[Problem]:
    return (p for p in problems if p.severity == "error" and p.row is not None)


def pipeline(settings: Settings, now: dt.datetime | None = None, skip_links: bool = False) -> RunSummary:
    """The steps of a run, inside the flow and under the warehouse lock."""
    logger = get_run_logger()
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    summary = RunSummary(run_id)
    sources, toml_error = discover(settings.sources_dir)
    if toml_error:
        summary.messages.append(toml_error)
    state = read_state(settings, sources)
    caching.prune_prefect_storage()
    unchanged = find_unchanged(settings, sources, state) if state else {}
    changed = [s for s in sources if s.source_id not in unchanged]
    # big runs start worker processes once for all their sources (on Dask, its workers check them: none here).
    # Checking is Python work under the GIL: in threads, ingest kept one core.  Many sources are checked in worker
    # processes, each whole, two given to each worker at once; a single big one here, with its phone numbers parsed
    # in workers; small ones here, one at a time (``checked_at_most``).  Reads and downloads go on in threads
    shared = _local_bytes(changed) >= SHARED_WORKERS_MIN_BYTES and settings.task_runner != "dask"
    batch: list[Ingested] = []
    reports: list[Any] = []

    def staged() -> None:  # every source's rows staged (``load_warehouse``, before it commits them)
        summary.sources = [_source_line(item, state.get(item.result.source_id, Previous())) for item in batch]
        summary.rejected = {  # what the run's artifacts show; the curator reports hold them all
            i.result.source_id: [p.as_dict() for p in islice(_row_errors(i.result.problems), artifacts.MAX_REJECTED_ROWS)]
            for i in batch
            if not i.reused
        }
        _let_go_of_rows(batch)
        # the curator reports (Python, one CPU) are written in a thread of this process (whatever runs the tasks: the
        # results are here) while DuckDB commits and keeps the sources, checks links and resolves
        reports.append(beside.submit(write_reports, {"settings": settings, "batch": quote(batch)}))  # type: ignore[arg-type]

    beside: ThreadPoolTaskRunner[Any]
    with ThreadPoolTaskRunner(max_workers=1) as beside:
        with (
            checked_in_processes(shared and len(changed) > 1) as checkers,
            workers_forked(shared and not checkers),
            checked_at_most(CHECKED_PER_PROCESS * checkers or (CHECKED_WITH_WORKERS if shared else 1)),
        ):
            futures = {s.source_id: ingest_source.submit(s, now.date(), settings, state.get(s.source_id, Previous())) for s in changed}
            # each source is loaded as its check ends, while the next ones are checked: loading is DuckDB's work on
            # about one CPU, checking keeps the others busy (at 1M rows, the checks then the load took 47.8-52.5 s; the
            # load beside them, 37.3-40.3 s, two runs each in turn)
            feed = _as_checked(sources, unchanged, futures, batch)
            # quote(): Prefect would otherwise walk every problem and row of every source looking for futures (4 s at 100k rows)
            summary.messages += load_warehouse(settings, quote(feed), run_id, now, staged)  # type: ignore[call-overload]
        if not skip_links:
            summary.links = link_health(settings, run_id, now)
            if summary.links.offline:
                summary.messages.append(f"Links: {summary.links.offline}.")
        counts = build_core(settings, now)
        reports[0].result()  # (a failure fails the run here, before a release)
    summary.messages += write_review(settings)
    dead = write_link_report(settings, now, summary.links)
    if summary.links is not None:
        summary.links.dead_listings = dead
    release = export_release(settings, now, run_id, sources)
    give_back_freed_memory()  # the release's listings are gone: a long-lived process does not carry their heap on
    summary.rows_read = sum(int(s["rows"]) for s in summary.sources)  # type: ignore[call-overload]
    summary.rows_accepted = sum(int(s["accepted"]) for s in summary.sources)  # type: ignore[call-overload]
    summary.rows_rejected = sum(int(s["rejected"]) for s in summary.sources)  # type: ignore[call-overload]
    summary.listings = counts["listings"]
    if isinstance(release, export.Held):
        summary.held = release.message
        logger.error("release held: nothing published this run")
        return summary
    summary.public_listings = release.counts["listings"]
    summary.locations = release.counts["locations"]
    summary.countries = sum(1 for p in (release.path / "locations").glob("*.json") if len(p.stem) == 2 and p.stem != "WW")
    summary.release_id = release.release_id
    summary.release_path = str(release.path)
    if release.previous:
        summary.changes = {k: release.counts.get(k, 0) for k in ("added", "removed", "changed")}
    logger.info("published release %s with %d listings in %d locations", release.release_id, summary.public_listings, summary.locations)
    return summary
