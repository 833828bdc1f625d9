"""The DuckDB warehouse: the edge where stages' tables are stored and SQL in ``warehouse/sql`` runs.

Layers (STYLE 4): ``raw_<source>`` as read, ``stg_listings`` normalised rows,
``core_listings`` merged listings with stable ids, ``out_listings`` what a release
publishes.  ``source_files`` keeps every version of every source by sha256.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from curate.fetch import Fetched
from curate.ingest import Previous
from curate.links import LinkCheck
from curate.links_report import DeadListing, Evidence, FailingLink, LinkReportData, Proposal
from curate.problems import Problem
from curate.read import ROW
from curate.stage import MATCH
from schemas.fields import BY_NAME, STAGED_COLUMNS
from schemas.generate import DUCKDB_TYPES, duckdb_columns

if TYPE_CHECKING:
    from curate.resolve import Overrides, ResolveParams

SQL_DIR = Path(__file__).resolve().parent.parent / "warehouse" / "sql"

STG_DDL = f"""
CREATE TABLE IF NOT EXISTS stg_listings (
  row_key VARCHAR PRIMARY KEY,
  match_key VARCHAR NOT NULL,
  source_id VARCHAR NOT NULL,
  row INTEGER NOT NULL,
  source_sha256 VARCHAR,
  priority INTEGER NOT NULL,
  url_key VARCHAR,
  completeness INTEGER NOT NULL,
  {duckdb_columns(STAGED_COLUMNS)}
);
"""


def run(con: duckdb.DuckDBPyConnection, query: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    """Execute and drain: DuckDB keeps a connection busy until a result is fetched to the end."""
    return con.execute(query, params).fetchall() if params is not None else con.execute(query).fetchall()


def sql(name: str) -> str:
    """The text of ``warehouse/sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def sql_sha256(name: str, *also: str) -> str:
    """The sha256 of ``warehouse/sql/<name>.sql`` and of ``also`` (what else its results depend on): kept beside
    results a later run may take (``core_build``, ``er_cache_made_by``), so that other code's are not taken."""
    return hashlib.sha256("\n".join([sql(name), *also]).encode()).hexdigest()


def sections(name: str) -> dict[str, str]:
    """The named sections (``-- name: <section>``) of ``warehouse/sql/<name>.sql``."""
    parts = re.split(r"^-- name: (\w+)\s*$", sql(name), flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def connect(path: Path, memory_limit: str = "") -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file with every persistent table in place.

    ``memory_limit``: DuckDB's (``Settings.duckdb_memory``; empty: DuckDB's default), past which it spills to disk.
    Its checkpoints compact the tables edited in place only when one holds too many deleted rows (``compaction``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")  # (a SET takes no parameters; Settings checked the value)
    run(con, sql("schema"))
    run(con, sql("link_schema"))
    run(con, STG_DDL)
    compaction(con)
    return con


#: the persistent tables a run edits in place (deleting some rows, adding others): a rerun replaces one source's rows
EDITED_IN_PLACE = ("stg_listings", "problems", "er_row_cache", "host_domains", "core_listings", "listing_members")
#: the share of a table's stored rows that may be deleted ones before a checkpoint compacts it
DELETED_SHARE_MAX = 0.1
#: DuckDB's ``max_vacuum_tasks`` when a checkpoint compacts (its default); 0 when none does
VACUUM_TASKS = 100


def deleted_share(con: duckdb.DuckDBPyConnection, table: str) -> float:
    """The share of ``table``'s stored rows that were deleted and are still stored (0 for a missing or empty table)."""
    if not run(con, "SELECT 1 FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [table]):
        return 0.0
    stored = run(con, "SELECT sum(count) FROM pragma_storage_info(?) WHERE column_id = 0 AND column_path = '[0]'", [table])[0][0]
    live = run(con, f'SELECT count(*) FROM "{table}"')[0][0]
    return 1 - int(live) / int(stored) if stored else 0.0  # type: ignore[call-overload]


def compaction(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = EDITED_IN_PLACE) -> bool:
    """Whether this connection's checkpoints compact tables (DuckDB's checkpoint vacuum), set so: only when one of
    ``tables`` holds more than ``DELETED_SHARE_MAX`` of deleted rows.  Compacting moves the rows of each row group
    with deleted rows, and remaps their keys in the table's index: replacing one source of 100 in the staged rows
    of 1M, the checkpoint took 1.0-1.1 s compacting, 0.02 s not; the rows deleted over ten such reruns are then
    compacted at once, in 0.8 s.  Nothing else changes: a deleted row is never read, only stored until then."""
    due = any(deleted_share(con, t) > DELETED_SHARE_MAX for t in tables)
    with contextlib.suppress(duckdb.Error):  # (a DuckDB without the setting compacts as it does)
        run(con, f"SET max_vacuum_tasks = {VACUUM_TASKS if due else 0}")
    return due


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_version(con: duckdb.DuckDBPyConnection, source_id: str, path: str, data: bytes, now: dt.datetime) -> str:
    """Keep the bytes of this version of a source (once per content); returns its sha256."""
    digest = sha256(data)
    if run(con, "SELECT 1 FROM source_files WHERE sha256 = ?", [digest]):
        return digest  # (kept already: a rerun's unchanged files are not handed to DuckDB again, 0.4 s at 1M rows)
    run(
        con,
        "INSERT INTO source_files VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
        [digest, data, len(data), source_id, path, now],
    )
    return digest


def version_bytes(con: duckdb.DuckDBPyConnection, digest: str) -> bytes | None:
    """The raw bytes of a stored source version."""
    rows = run(con, "SELECT bytes FROM source_files WHERE sha256 = ?", [digest])
    return bytes(rows[0][0]) if rows else None  # type: ignore[call-overload]


def raw_table(source_id: str) -> str:
    return f'"raw_{source_id}"'


def write_raw(con: duckdb.DuckDBPyConnection, source_id: str, frame: pd.DataFrame, digest: str | None) -> None:
    """``raw_<source>``: the rows exactly as read (all text), with their row number and version."""
    raw = frame.astype({c: object for c in frame.columns if c != ROW}).assign(_sha256=digest)
    con.register("raw_frame", raw)
    run(con, f"CREATE OR REPLACE TABLE {raw_table(source_id)} AS SELECT * FROM raw_frame")
    con.unregister("raw_frame")


def replace_staged(
    con: duckdb.DuckDBPyConnection,
    source_id: str,
    frame: pd.DataFrame,
    digest: str | None,
    priority: int,
    invalid: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Replace the staged rows of one source by ``frame`` (its accepted rows): ``replace_staged_many`` of one."""
    return replace_staged_many(con, [Staged(source_id, frame, digest, priority, invalid)])[0]


@dataclass(frozen=True)
class Staged:
    """A source's accepted rows (``frame``) to stage, with its version, priority and rejected rows (``invalid``)."""

    source_id: str
    frame: pd.DataFrame
    digest: str | None
    priority: int
    invalid: pd.DataFrame | None = None


#: staged rows inserted by one statement (their frames joined: a copy of these rows): 100 sources of 10k rows each
#: in 100 statements took 5.6 s and 2.7 s more to checkpoint their key index; 200k rows at a time, 3.0 s and 0.2 s
STAGED_AT_ONCE = 200_000


def replace_staged_many(con: duckdb.DuckDBPyConnection, sources: list[Staged]) -> list[dict[str, int]]:
    """Replace the staged rows of each source (of distinct ids) by its accepted rows, their rows inserted
    ``STAGED_AT_ONCE`` at a time.

    A row that is invalid in the new version (a staged row of ``invalid``, the rejected rows) keeps its
    last valid version, under its current record_id and row, until it is fixed or deleted from the
    source.  Returns, for each source, match key -> the row number the kept version had.
    """
    ids = [s.source_id for s in sources]
    run(con, "CREATE OR REPLACE TEMP TABLE prev_rows AS SELECT * FROM stg_listings WHERE list_contains(?, source_id)", [ids])
    run(con, "DELETE FROM stg_listings WHERE list_contains(?, source_id)", [ids])
    chunk: list[Staged] = []
    rows = 0  # in ``chunk``
    for s in [s for s in sources if not s.frame.empty]:
        if chunk and rows + len(s.frame) > STAGED_AT_ONCE:
            _insert_staged(con, chunk)
            chunk, rows = [], 0
        chunk.append(s)
        rows += len(s.frame)
    if chunk:
        _insert_staged(con, chunk)
    if not any(s.invalid is not None and not s.invalid.empty for s in sources) or not run(con, "SELECT count(*) FROM prev_rows")[0][0]:
        return [{} for _ in sources]  # (with no previous rows there is no version to keep; the look-up scans every staged row)
    return [_kept_previous(con, s) for s in sources]


def _insert_staged(con: duckdb.DuckDBPyConnection, sources: list[Staged]) -> None:
    """One statement inserting the accepted rows of ``sources``, each row told its source by a column of numbers."""
    joined = sources[0].frame if len(sources) == 1 else pd.concat([s.frame for s in sources], ignore_index=True)
    frame = joined.assign(_source=np.repeat(np.arange(len(sources), dtype=np.int32), [len(s.frame) for s in sources]))
    which = pa.table(
        {
            "_source": pa.array(range(len(sources)), pa.int32()),
            "source_id": pa.array([s.source_id for s in sources], pa.string()),
            "source_sha256": pa.array([s.digest for s in sources], pa.string()),
            "priority": pa.array([s.priority for s in sources], pa.int32()),
        }
    )
    con.register("stg_frame", frame)
    con.register("stg_sources", which)
    try:
        run(con, _INSERT_STAGED)
    finally:
        con.unregister("stg_frame")
        con.unregister("stg_sources")


def _insert_staged_sql() -> str:
    casts = ", ".join(f"CAST({c} AS {DUCKDB_TYPES[BY_NAME[c].type]}) AS {c}" for c in STAGED_COLUMNS)
    scalar = [c for c in STAGED_COLUMNS if BY_NAME[c].type != "strings" and c != "always_open"]
    completeness = " + ".join(
        [*(f"({c} IS NOT NULL)::INT" for c in scalar), *(f"(len({c}) > 0)::INT" for c in ("languages", "topics", "audience"))]
    )
    return f"""
        INSERT INTO stg_listings BY NAME
        SELECT s.source_id || '/' || f.record_id AS row_key, s.source_id, f.row, s.source_sha256, s.priority,
               nullif(rtrim(regexp_replace(lower(f.url), '^https?://(www\\.)?', ''), '/'), '') AS url_key,
               {completeness} AS completeness, f.* EXCLUDE (row, _source)
        FROM (SELECT {casts}, CAST({ROW} AS INTEGER) AS row, {MATCH} AS match_key, _source FROM stg_frame) f
        JOIN stg_sources s USING (_source)
    """


#: ``_insert_staged``'s statement: the staged columns cast to their types, each row's url key and completeness
_INSERT_STAGED = _insert_staged_sql()


def _kept_previous(con: duckdb.DuckDBPyConnection, staged: Staged) -> dict[str, int]:
    source_id, invalid = staged.source_id, staged.invalid
    if invalid is None or invalid.empty:
        return {}
    con.register("invalid_frame", invalid[[MATCH, "record_id", ROW]].astype({ROW: int}))
    kept = run(
        con,
        f"""
        INSERT INTO stg_listings
        SELECT p.* REPLACE (? || '/' || i.record_id AS row_key, i.record_id AS record_id, CAST(i.{ROW} AS INTEGER) AS row)
        FROM prev_rows p JOIN invalid_frame i ON i.{MATCH} = p.match_key
        WHERE p.source_id = ? AND p.match_key NOT IN (SELECT match_key FROM stg_listings WHERE source_id = ?)
          AND ? || '/' || i.record_id NOT IN (SELECT row_key FROM stg_listings)
        QUALIFY row_number() OVER (PARTITION BY p.match_key ORDER BY p.row) = 1
        RETURNING match_key
        """,
        [source_id, source_id, source_id, source_id],
    )
    con.unregister("invalid_frame")
    old_rows: dict[object, object] = {
        k: r for k, r in run(con, "SELECT match_key, min(row) FROM prev_rows WHERE source_id = ? GROUP BY match_key", [source_id])
    }
    return {str(k): int(old_rows[k]) for (k,) in kept}  # type: ignore[call-overload]


def drop_sources_not_in(con: duckdb.DuckDBPyConnection, present: list[str]) -> list[str]:
    """Forget the staged rows of sources whose file was removed; returns their ids."""
    gone = [str(r[0]) for r in run(con, "SELECT DISTINCT source_id FROM stg_listings") if r[0] not in present]
    for source_id in gone:
        run(con, "DELETE FROM stg_listings WHERE source_id = ?", [source_id])
    return gone


def previous_problems(con: duckdb.DuckDBPyConnection, source_id: str) -> list[Problem] | None:
    """The problems the last parse of a source found (None when it was never parsed)."""
    if not run(con, "SELECT 1 FROM source_reads WHERE source_id = ? AND status IN ('ok', 'kept') LIMIT 1", [source_id]):
        return None
    rows = run(con, 'SELECT source, file, row, "column", value, severity, rule, message, fix FROM problems WHERE source = ?', [source_id])
    return [Problem(*r) for r in rows]  # type: ignore[arg-type]


#: The ``problems`` table's columns after ``run_id``, as Arrow types: a source's problems go in as one table.
PROBLEM_COLUMNS = pa.schema([(name, pa.int32() if name == "row" else pa.string()) for name in Problem._fields])


def record_problems(con: duckdb.DuckDBPyConnection, run_id: str, source_id: str, problems: list[Problem]) -> None:
    """A source's problems of this run, instead of its last ones (one Arrow table: ``executemany`` inserts a row
    at a time, which took half a run's warehouse time with 700 problems per source)."""
    run(con, "DELETE FROM problems WHERE source = ?", [source_id])
    if problems:
        columns = list(zip(*problems, strict=True))
        incoming = pa.table([pa.array(values, type=t) for values, t in zip(columns, PROBLEM_COLUMNS.types, strict=True)],
                            schema=PROBLEM_COLUMNS)  # fmt: skip
        con.register("incoming_problems", incoming)
        try:
            run(con, "INSERT INTO problems SELECT ?, * FROM incoming_problems", [run_id])  # the table's columns in order
        finally:
            con.unregister("incoming_problems")


def previous_state(con: duckdb.DuckDBPyConnection, url_sources: list[str]) -> dict[str, Previous]:
    """Per source: the fingerprint and counts of its last parse; for URL sources also the last good download."""
    out: dict[str, Previous] = {}
    rows = run(
        con,
        """
        SELECT source_id, fingerprint, rows_read, rows_accepted, errors, warnings FROM source_reads
        WHERE status IN ('ok', 'unchanged') QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY read_at DESC) = 1
        """,
    )
    for sid, fp, read, accepted, errors, warnings in rows:
        out[str(sid)] = Previous(fp, int(read or 0), int(accepted or 0), int(errors or 0), int(warnings or 0))  # type: ignore[call-overload,arg-type]
    for sid in url_sources:
        good = run(
            con,
            """
            SELECT f.sha256, f.etag, f.last_modified, v.bytes FROM source_fetches f JOIN source_files v USING (sha256)
            WHERE f.source_id = ? AND f.outcome = 'new' ORDER BY f.fetched_at DESC LIMIT 1
            """,
            [sid],
        )
        if good:
            sha, etag, modified, data = good[0]
            base = out.get(sid, Previous())
            out[sid] = replace(base, good_sha256=str(sha), etag=etag, last_modified=modified, good_bytes=bytes(data))  # type: ignore[arg-type,call-overload]
    return out


def record_fetch(
    con: duckdb.DuckDBPyConnection, run_id: str, source_id: str, url: str, got: Fetched, sha: str | None, now: dt.datetime
) -> None:
    run(
        con,
        "INSERT INTO source_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            source_id,
            url,
            now,
            got.outcome,
            got.http_status,
            got.etag,
            got.last_modified,
            got.content_type,
            got.final_url,
            sha if got.outcome == "new" else None,
            got.error or None,
            got.elapsed_ms,
        ],
    )


def set_run_params(con: duckdb.DuckDBPyConnection, now: dt.datetime, max_verified_age_months: int) -> None:
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE run_params AS SELECT CAST(? AS TIMESTAMP) AS now, CAST(? AS INTEGER) AS max_verified_age_months",
        [now.replace(tzinfo=None), max_verified_age_months],
    )


def build_core(
    con: duckdb.DuckDBPyConnection,
    now: dt.datetime,
    max_verified_age_months: int,
    overrides: Overrides | None = None,
    params: ResolveParams | None = None,
    dead_after: int = 3,
    reuse: bool = True,
) -> dict[str, int]:
    """Entity resolution (``curate.resolve``), then ``core_listings.sql``, ``link_health.sql`` (each listing's link
    status from the check history) and ``out_listings.sql``; returns counts.

    ``reuse``: take the features of unchanged rows from the last resolution (er_rows.sql) and keep the listings of
    the last build whose rows are as they were (core_listings.sql, section keep); False works every row out and
    merges every listing again (the same result, slower)."""
    from curate.resolve import resolve

    set_run_params(con, now, max_verified_age_months)
    set_link_params(con, now, dead_after=dead_after)
    keep_previous_link_status(con)
    resolve(con, overrides, params, reuse=reuse)
    core = sections("core_listings")
    made_by = sql_sha256("core_listings")
    keep = reuse and bool(run(con, "SELECT 1 FROM core_build WHERE sql_sha256 = ?", [made_by]))
    run(con, "DELETE FROM core_build")  # (until this build ends, no build's listings can be kept)
    for section in ("prints", "keep" if keep else "keep_nothing", "build", "patch" if keep else "replace"):
        run(con, core[section])
    run(con, sql("link_health"))
    keep_published_listings(con)
    run(con, sql("out_listings"))
    run(con, "INSERT INTO core_build VALUES (?)", [made_by])
    counts = run(
        con, "SELECT (SELECT count(*) FROM stg_listings), (SELECT count(*) FROM core_listings), (SELECT count(*) FROM out_listings)"
    )[0]
    return {"staged_rows": int(counts[0]), "listings": int(counts[1]), "public_listings": int(counts[2])}  # type: ignore[call-overload]


# --- link health (CONTRACT section 6) ----------------------------------------------------------------------


def keep_published_listings(con: duckdb.DuckDBPyConnection) -> None:
    """Before ``out_listings`` is made again: when it holds the listings of the release last published
    (``published_release.listed``, set by ``export.remember_release``), it becomes ``published_listings`` (renamed,
    not copied: 0.5-0.9 s at 534k listings), which the next release is compared with (``export.compared_in_warehouse``)."""
    if not run(con, "SELECT 1 FROM published_release WHERE listed"):
        return
    run(con, "BEGIN TRANSACTION")
    try:
        run(con, "DROP TABLE IF EXISTS published_listings")
        run(con, "ALTER TABLE out_listings RENAME TO published_listings")
        run(con, "UPDATE published_release SET listed = false")
        run(con, "COMMIT")
    except BaseException:
        run(con, "ROLLBACK")
        raise


def set_link_params(con: duckdb.DuckDBPyConnection, now: dt.datetime, max_age_hours: float = 20.0, dead_after: int = 3) -> None:
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE link_params AS "
        "SELECT CAST(? AS TIMESTAMP) AS now, CAST(? AS DOUBLE) AS max_age_hours, CAST(? AS INTEGER) AS dead_after",
        [now.replace(tzinfo=None), max_age_hours, dead_after],
    )


def keep_previous_link_status(con: duckdb.DuckDBPyConnection) -> None:
    """``prev_link_status``: each listing's link status before this run rebuilds core_listings (empty on a first run)."""
    exists = run(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'core_listings' AND NOT temporary")[0][0]
    source = "SELECT id, link_status FROM core_listings" if exists else "SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS link_status LIMIT 0"
    run(con, f"CREATE OR REPLACE TEMP TABLE prev_link_status AS {source}")


def links_due(con: duckdb.DuckDBPyConnection, now: dt.datetime, max_age_hours: float) -> tuple[list[str], list[str]]:
    """The staged listings' distinct URLs: (to check this run, answered by a check younger than ``max_age_hours``)."""
    set_link_params(con, now, max_age_hours)
    run(con, sql("links_due"))
    rows = run(con, "SELECT url, cached FROM links_due")
    return [str(u) for u, cached in rows if not cached], [str(u) for u, cached in rows if cached]


def record_link_checks(con: duckdb.DuckDBPyConnection, run_id: str, now: dt.datetime, checks: list[LinkCheck]) -> None:
    """Keep every check (``link_checks``): the history link status is derived from.  One set-based insert."""
    if not checks:
        return
    stamp = now.replace(tzinfo=None)
    chain = pa.list_(pa.struct([("status", pa.int32()), ("url", pa.string())]))
    table = pa.table(
        {
            "url": pa.array([c.url for c in checks], pa.string()),
            "result": pa.array([c.result for c in checks], pa.string()),
            "http_status": pa.array([c.http_status for c in checks], pa.int32()),
            "final_url": pa.array([c.final_url for c in checks], pa.string()),
            "suggested_url": pa.array([c.suggested_url for c in checks], pa.string()),
            "redirects": pa.array([[{"status": st, "url": u} for st, u in c.redirects] for c in checks], chain),
            "method": pa.array([c.method for c in checks], pa.string()),
            "error": pa.array([c.error for c in checks], pa.string()),
            "elapsed_ms": pa.array([c.elapsed_ms for c in checks], pa.int32()),
        }
    )
    con.register("link_check_rows", table)
    try:
        run(
            con,
            "INSERT INTO link_checks (run_id, url, checked_at, result, http_status, final_url, suggested_url, redirects, method, "
            "error, elapsed_ms) SELECT ?, url, ?, result, http_status, final_url, suggested_url, redirects, method, error, elapsed_ms "
            "FROM link_check_rows",
            [run_id, stamp],
        )
    finally:
        con.unregister("link_check_rows")


def link_report_data(con: duckdb.DuckDBPyConnection, evidence: int = 5) -> LinkReportData:
    """What ``sources/reports/links.html`` shows, from ``link_url_health``, ``link_checks``, ``core_listings`` and ``stg_listings``."""
    run(
        con,
        """
        CREATE OR REPLACE TEMP TABLE staged_links AS
        SELECT source_id, row, record_id, name, 'url' AS col, url AS link FROM stg_listings WHERE url IS NOT NULL
        UNION ALL
        SELECT source_id, row, record_id, name, 'chat_url', chat_url FROM stg_listings WHERE chat_url IS NOT NULL
        """,
    )
    data = LinkReportData()
    data.status_counts = {str(k): int(n) for k, n in run(con, "SELECT link_status, count(*) FROM core_listings GROUP BY ALL")}  # type: ignore[call-overload]
    dead = run(
        con,
        """
        SELECT id, name, [x FOR x IN [url, chat_url] IF x IS NOT NULL],
               [s.source || ' record ' || s.record_id FOR s IN sources]
        FROM core_listings WHERE link_status = 'dead' ORDER BY name, id
        """,
    )
    checks = run(
        con,
        """
        SELECT url, checked_at, result, http_status, final_url, error FROM link_checks
        WHERE result <> 'skipped' AND url IN (SELECT unnest([url, chat_url]) FROM core_listings WHERE link_status = 'dead')
        QUALIFY row_number() OVER (PARTITION BY url ORDER BY checked_at DESC, seq DESC) <= ?
        ORDER BY url, checked_at DESC, seq DESC
        """,
        [evidence],
    )
    by_url: dict[str, list[Evidence]] = {}
    for url, at, result, status, final, error in checks:
        by_url.setdefault(str(url), []).append(Evidence(at, str(result), status, final, error))  # type: ignore[arg-type]
    data.dead_listings = [
        DeadListing(str(i), str(n), [str(r) for r in rows], {str(u): by_url.get(str(u), []) for u in urls})  # type: ignore[attr-defined]
        for i, n, urls, rows in dead
    ]
    failing = run(
        con,
        """
        SELECT h.url, h.status, h.last_result, h.http_status, h.error, h.broken_streak, h.last_checked_at,
               list(DISTINCT s.source_id || ' row ' || s.row ORDER BY s.source_id || ' row ' || s.row)
        FROM link_url_health h JOIN staged_links s ON s.link = h.url
        WHERE h.status IN ('degraded', 'dead')
          AND h.url NOT IN (
            SELECT x FROM (SELECT unnest([url, chat_url]) AS x FROM core_listings WHERE link_status = 'dead') WHERE x IS NOT NULL
          )
        GROUP BY ALL ORDER BY h.status, h.url
        """,
    )
    data.failing = [
        FailingLink(str(u), str(st), str(r), hs, e, int(bs), at, [str(x) for x in rows])  # type: ignore[arg-type,call-overload,attr-defined]
        for u, st, r, hs, e, bs, at, rows in failing
    ]
    proposals = run(
        con,
        """
        SELECT s.source_id, s.row, s.record_id, s.name, s.col, h.url, h.suggested_url, h.last_checked_at
        FROM link_url_health h JOIN staged_links s ON s.link = h.url
        WHERE h.last_result = 'redirect' AND h.suggested_url IS NOT NULL AND h.suggested_url <> h.url
        ORDER BY s.source_id, s.row, s.col
        """,
    )
    data.proposals = [Proposal(str(a), int(b), str(c), str(d), str(e), str(f), str(g), h) for a, b, c, d, e, f, g, h in proposals]  # type: ignore[arg-type,call-overload]
    changes = run(con, "SELECT id, name, before, after FROM link_changes ORDER BY name, id")
    data.changes = [(str(a), str(b), str(c), str(d)) for a, b, c, d in changes]
    return data
