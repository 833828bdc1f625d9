"""The HSDS package's parts written by DuckDB from the table a release's listings were read from (``out_listings``).

``warehouse_parts`` gives the bytes ``hsds.part_bodies`` gives of the same listings (a property test holds them to each
other), from ``warehouse/sql/hsds_rows.sql``: at 534k listings, building the 2.6M rows in Python took about 25 s of
the worker processes' time (reading each part's listings, making each cell, the ``csv`` module writing them).
``WarehouseHsds`` is the release's writer of them (``export.warehouse_writers``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from curate import hsds
from curate.export import _cell_text_sql, guarded_sql, quoted_sql
from curate.warehouse import sections
from schemas import hsds as m
from schemas import vocabularies as v

Listing = dict[str, Any]

#: list fields whose missing elements ``hsds.listing_records`` cannot write (their listings are then built by it)
NO_MISSING = ("languages", "topics", "audience")


def warehouse_parts(
    con: duckdb.DuckDBPyConnection, table: str, pieces: list[list[Listing]], wanted: list[int], names: dict[str, str]
) -> dict[int, hsds.Part]:
    """``hsds.part_bodies(pieces[i], names, csv_cell)`` for each part ``i`` of ``wanted``, made by DuckDB from
    ``table`` (on a connection of its own): the listings of the pieces must be the table's, as ``public_listings``
    read them.  Raises ``LookupError`` when a piece's listings are not all found there once, ``ValueError`` when
    one holds what only Python writes (a missing language, topic or audience)."""
    with con.cursor() as cur:
        return parts_of_ids(cur, table, [[str(x["id"]) for x in piece] for piece in pieces], wanted, names)


def parts_of_ids(
    cur: duckdb.DuckDBPyConnection, table: str, ids: list[list[str]], wanted: list[int], names: dict[str, str]
) -> dict[int, hsds.Part]:
    """``warehouse_parts`` of the pieces whose listings' ids are ``ids``, on ``cur`` (a connection of the caller's,
    which its temporary tables are left on)."""
    sql = sections("hsds_rows")
    _inputs(cur, table, names, sql)
    made: dict[int, hsds.Part] = {}
    for batch in _batches(ids, wanted):
        made.update(_batch_parts(cur, ids, batch, sql))
    return made


#: listings whose HSDS rows are made at once (``warehouse_parts``): at 534k listings, all at once raised the process's
#: memory 0.9 GB at its peak, 128k at a time 0.36 GB, in the same CPU time (8.2-8.5 s)
BATCH_LISTINGS = 128_000


def _batches(pieces: list[list[str]], wanted: list[int]) -> Iterator[list[int]]:
    """``wanted`` in batches of consecutive parts holding about ``BATCH_LISTINGS`` listings (one part at least)."""
    batch: list[int] = []
    held = 0
    for i in wanted:
        if batch and held + len(pieces[i]) > BATCH_LISTINGS:
            yield batch
            batch, held = [], 0
        batch.append(i)
        held += len(pieces[i])
    if batch:
        yield batch


def _batch_parts(cur: duckdb.DuckDBPyConnection, pieces: list[list[str]], wanted: list[int], sql: dict[str, str]) -> dict[int, hsds.Part]:
    """``warehouse_parts``' parts ``wanted`` of the pieces of these ids, on ``cur`` (``_inputs`` made; ``sql``: the
    sections of ``hsds_rows.sql``)."""
    import pyarrow as pa

    starts = list(itertools.accumulate((len(p) for p in pieces), initial=0))
    ids = [x for i in wanted for x in pieces[i]]
    order = pa.array([n for i in wanted for n in range(starts[i], starts[i + 1])], pa.int64())
    part = pa.array([i for i in wanted for _ in pieces[i]], pa.int32())
    cur.register("hsds_order", pa.table({"id": pa.array(ids, pa.string()), "ord": order, "part": part}))
    del ids, order, part
    for statement in cur.extract_statements(sql["base"]):
        cur.execute(statement)
    found = dict(cur.execute("SELECT part, count(*) FROM hsds_base GROUP BY part").fetchall())
    if any(found.get(i, 0) != len(pieces[i]) for i in wanted):
        raise LookupError("the listings are not the table's")
    missing = " OR ".join(f"list_contains(list_transform({f}, lambda x: x IS NULL), true)" for f in NO_MISSING)
    if cur.execute(f"SELECT count(*) FROM hsds_base WHERE {missing}").fetchall()[0][0]:
        raise ValueError("a listing holds a missing language, topic or audience")
    tags = [t for (t,) in cur.execute("SELECT DISTINCT unnest(languages) FROM hsds_base").fetchall()]
    spoken = [hsds._language(t) for t in tags]  # (a few tags, named by langcodes)
    named = {"tag": pa.array(tags, pa.string()), "name": [s[0] for s in spoken], "code": [s[1] for s in spoken]}
    cur.register("hsds_languages", pa.table(named))
    cur.execute(sql["attribute_values"])
    bodies: dict[int, dict[str, bytes]] = {i: {} for i in wanted}
    for path, columns in m.table_columns().items():
        query = sql.get(path.removesuffix(".csv"))
        made = dict(cur.execute(records_query(cur, query, columns)).fetchall()) if query else {}
        for i in wanted:
            bodies[i][path] = made.pop(i, b"")
    terms: dict[int, dict[str, set[str]]] = {i: {name: set() for name in m.TAXONOMIES} for i in wanted}
    for i, taxonomy, values in cur.execute(sql["terms_used"]).fetchall():
        terms[i][taxonomy].update(values)
    cur.execute("DROP TABLE hsds_base; DROP TABLE hsds_attributes")
    return {i: (bodies.pop(i), terms.pop(i)) for i in wanted}


def _inputs(cur: duckdb.DuckDBPyConnection, table: str, names: dict[str, str], sql: dict[str, str]) -> None:
    """The tables and the macro ``hsds_rows.sql`` expects, on ``cur``."""
    import pyarrow as pa

    texts = ", ".join(f"{_cell_text_sql(name)} AS {name}" for name in ("verified_at", "updated_at"))  # (as ``_iso`` writes them)
    cur.execute(f"CREATE OR REPLACE TEMP VIEW hsds_listings AS SELECT * REPLACE ({texts}) FROM {table}")
    cur.execute(f"CREATE OR REPLACE TEMP MACRO hsds_namespace() AS unhex('{m.NAMESPACE.bytes.hex()}')")
    for statement in cur.extract_statements(sql["macros"]):
        cur.execute(statement)
    cur.register("hsds_places", pa.table({"code": list(names), "name": list(names.values())}))
    costs = {k: term.description for k, term in v.COSTS.items() if k != "unknown"}
    cur.register("hsds_costs", pa.table({"cost": list(costs), "description": list(costs.values())}))
    cur.register("hsds_taxonomies", pa.table({"field": list(m.TAXONOMY_OF_FIELD), "taxonomy": list(m.TAXONOMY_OF_FIELD.values())}))
    cur.register("hsds_always_open", pa.table({k: [value] for k, value in m.ALWAYS_OPEN_SCHEDULE.items()}))


def records_query(cur: duckdb.DuckDBPyConnection, query: str, columns: list[str]) -> str:
    """Each part's CSV records of a table (``part``, ``body``: BLOB) from ``query`` (a section of ``hsds_rows.sql``):
    its cells in ``columns``' order (those it does not give empty), each guarded and quoted as ``csv_cell`` and the
    ``csv`` module write one (UUIDs as they are), the records in the order of ``ord``, ``g``, ``k``, each ending with
    CRLF."""
    given = set(cur.sql(query).columns)
    plain = {c for c in given if c == "id" or c.endswith("_id")}
    texts = [c for c in columns if c in given and c not in plain]
    guarded = ", ".join(guarded_sql(f'"{c}"') + f' AS "{c}"' for c in texts)
    cells = []
    for c in columns:
        if c in plain:
            cells.append(f"coalesce(\"{c}\", '')")
        elif c in given:
            cells.append(quoted_sql(f'"{c}"'))
        else:
            cells.append("''")
    record = " || ',' || ".join(cells) + " || chr(13) || chr(10)"
    keep = ", ".join(f'"{c}"' for c in sorted(plain))
    return (
        f"SELECT part, encode(string_agg(record, '' ORDER BY ord, g, k)) AS body FROM ("
        f"SELECT part, ord, g, k, {record} AS record FROM ("
        f"SELECT part, ord, g, k{', ' + keep if keep else ''}{', ' + guarded if guarded else ''} FROM ({query.strip().rstrip(';')}))) "
        f"GROUP BY part"
    )


class WarehouseHsds:
    """``Writers.hsds`` from ``table`` (``warehouse_parts``, each build on a cursor of its own), whose builds ``close``
    stops and waits for: a release that fails while its parts are built does not close the connection under them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        self.con, self.table = con, table
        self._cursors: list[duckdb.DuckDBPyConnection] = []  # of the builds going on
        self._idle = threading.Condition()
        self._closed = False

    def __call__(self, pieces: list[list[Listing]], wanted: list[int], names: dict[str, str]) -> dict[int, hsds.Part]:
        with self._idle:
            if self._closed:
                raise RuntimeError("the warehouse's connection is closing")
            cur = self.con.cursor()
            self._cursors.append(cur)
        try:
            return parts_of_ids(cur, self.table, [[str(x["id"]) for x in piece] for piece in pieces], wanted, names)
        finally:
            with self._idle:
                self._cursors.remove(cur)
                cur.close()
                self._idle.notify_all()

    def close(self) -> None:
        """Stops the builds going on (their callers get an error) and waits for them to end."""
        with self._idle:
            self._closed = True
            while self._cursors:  # (each statement of a build interrupted, until it ends)
                for cur in self._cursors:
                    with contextlib.suppress(duckdb.Error):
                        cur.interrupt()
                self._idle.wait(0.05)
