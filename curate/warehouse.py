"""The DuckDB warehouse: the edge where stages' tables are stored and SQL in ``warehouse/sql`` runs.

Layers (STYLE 4): ``raw_<source>`` as read, ``stg_listings`` normalised rows,
``core_listings`` merged listings with stable ids, ``out_listings`` what a release
publishes.  ``source_files`` keeps every version of every source by sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from curate.fetch import Fetched
from curate.ingest import Previous
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


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file with every persistent table in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    run(con, sql("schema"))
    run(con, STG_DDL)
    return con


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_version(con: duckdb.DuckDBPyConnection, source_id: str, path: str, data: bytes, now: dt.datetime) -> str:
    """Keep the bytes of this version of a source (once per content); returns its sha256."""
    digest = sha256(data)
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
    """Replace the staged rows of one source by ``frame`` (its accepted rows).

    A row that is invalid in the new version (a staged row of ``invalid``, the rejected rows) keeps its
    last valid version, under its current record_id and row, until it is fixed or deleted from the
    source.  Returns match key -> the row number the kept version had.
    """
    run(con, "CREATE OR REPLACE TEMP TABLE prev_rows AS SELECT * FROM stg_listings WHERE source_id = ?", [source_id])
    run(con, "DELETE FROM stg_listings WHERE source_id = ?", [source_id])
    if not frame.empty:
        con.register("stg_frame", frame)
        casts = ", ".join(f"CAST({c} AS {DUCKDB_TYPES[BY_NAME[c].type]}) AS {c}" for c in STAGED_COLUMNS)
        scalar = [c for c in STAGED_COLUMNS if BY_NAME[c].type != "strings" and c != "always_open"]
        completeness = " + ".join(
            [*(f"({c} IS NOT NULL)::INT" for c in scalar), *(f"(len({c}) > 0)::INT" for c in ("languages", "topics", "audience"))]
        )
        run(
            con,
            f"""
            INSERT INTO stg_listings BY NAME
            SELECT ? || '/' || record_id AS row_key, ? AS source_id, row, ? AS source_sha256, ? AS priority,
                   nullif(rtrim(regexp_replace(lower(url), '^https?://(www\\.)?', ''), '/'), '') AS url_key,
                   {completeness} AS completeness, * EXCLUDE (row)
            FROM (SELECT {casts}, CAST({ROW} AS INTEGER) AS row, {MATCH} AS match_key FROM stg_frame)
            """,
            [source_id, source_id, digest, priority],
        )
        con.unregister("stg_frame")
    if invalid is None or invalid.empty:
        return {}
    con.register("invalid_frame", invalid[[MATCH, "record_id", ROW]].astype({ROW: int}))
    kept = run(
        con,
        f"""
        INSERT INTO stg_listings
        SELECT p.* REPLACE (? || '/' || i.record_id AS row_key, i.record_id AS record_id, CAST(i.{ROW} AS INTEGER) AS row)
        FROM prev_rows p JOIN invalid_frame i ON i.{MATCH} = p.match_key
        WHERE p.match_key NOT IN (SELECT match_key FROM stg_listings WHERE source_id = ?)
          AND ? || '/' || i.record_id NOT IN (SELECT row_key FROM stg_listings)
        QUALIFY row_number() OVER (PARTITION BY p.match_key ORDER BY p.row) = 1
        RETURNING match_key
        """,
        [source_id, source_id, source_id],
    )
    con.unregister("invalid_frame")
    old_rows: dict[object, object] = {k: r for k, r in run(con, "SELECT match_key, min(row) FROM prev_rows GROUP BY match_key")}
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


def record_problems(con: duckdb.DuckDBPyConnection, run_id: str, source_id: str, problems: list[Problem]) -> None:
    run(con, "DELETE FROM problems WHERE source = ?", [source_id])
    if problems:
        con.executemany(
            "INSERT INTO problems VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[run_id, p.source, p.file, p.row, p.column, p.value, p.severity, p.rule, p.message, p.fix] for p in problems],
        )


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
) -> dict[str, int]:
    """Entity resolution (``curate.resolve``), then ``core_listings.sql`` and ``out_listings.sql``; returns counts."""
    from curate.resolve import resolve

    set_run_params(con, now, max_verified_age_months)
    resolve(con, overrides, params)
    run(con, sql("core_listings"))
    run(con, sql("out_listings"))
    counts = run(
        con, "SELECT (SELECT count(*) FROM stg_listings), (SELECT count(*) FROM core_listings), (SELECT count(*) FROM out_listings)"
    )[0]
    return {"staged_rows": int(counts[0]), "listings": int(counts[1]), "public_listings": int(counts[2])}  # type: ignore[call-overload]
