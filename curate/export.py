"""Releases (CONTRACT section 5): pure builders of every file's bytes, and the atomic publish.

``release_files`` turns public listings (and the previous release's) into
``{relative path: bytes}`` and touches nothing: listings.json and .parquet, location
files, index.json, changes.json, schemas, datapackage.json, the HSDS 3.0 package
(``curate.hsds``) and the preview site (``curate.preview``).  ``mass_removals`` is the
guard.  ``publish`` holds a mass removal, writes the rest into
``exports/releases/.partial-<id>``, checks it (checksums, counts, safe content, JSON
Schema, Frictionless), renames it into place and only then switches ``exports/current``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import hashlib
import importlib
import importlib.metadata
import io
import operator
import os
import platform
import re
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import duckdb
import orjson
import pycountry

from curate import hsds, preview, table_check
from curate.collector import collection_paused, give_back_freed_memory
from schemas.fields import BY_NAME, FIELDS, HTTP_URL, LISTING_FIELDS, UNTRACKED_FIELDS
from schemas.generate import to_arrow_schema, to_json_schema, to_table_schema

SCHEMA_VERSION = "1.0"
#: the Frictionless Table Schema every location CSV follows
TABLE_SCHEMA_PATH = "schema/location.tableschema.json"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PARTIAL_PREFIX = ".partial-"

Listing = dict[str, object]


# --- reading the warehouse --------------------------------------------------------------------


def _iso(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


#: fields whose values repeat from listing to listing (vocabularies, dates and times), and lists of codes
REPEATING = (
    *(f.name for f in FIELDS if f.listing and f.type != "strings" and (f.vocabulary or f.type in ("date", "timestamp"))),
    "link_status",
)
CODE_LISTS = tuple(f.name for f in FIELDS if f.listing and f.type == "strings")
#: listings read from the warehouse at a time, and bytes of ``listings.json`` parsed at a time (about 25k listings)
FETCHED = 50_000
PIECE_BYTES = 16 << 20
#: from this size on, ``listings_from_json`` shares repeating values (below, the memory saved is small, and sharing
#: doubles the time to read: 2.5 s against 5.2 s for 535k listings, 0.4 GB)
SHARED_FROM_BYTES = 64 << 20


@collection_paused()  # 535k listings made while nothing else is alive took 17 s with the collector on
def public_listings(con: duckdb.DuckDBPyConnection) -> list[Listing]:
    """``out_listings`` as listing records, ordered by kind, then name, then id, their repeating values shared (as
    ``share_repeating`` shares them), read as Arrow columns ``FETCHED`` listings at a time.

    A column at a time: each repeating value (``REPEATING``'s fields, dates and times as ``_iso`` writes them, the
    codes in ``CODE_LISTS``' lists) is made a Python object once per batch (from DuckDB's rows, each cell was one:
    6.9 s against 2.8 s for 534k listings), then shared with the equal ones met before."""
    # sorted by DuckDB (in parallel), as Python sorts them: strings compared a code point at a time (UTF-8's bytes,
    # DuckDB's order) and None as "None" (sorting them again in Python took 0.6 s at 535k listings)
    return _listings_read(con, f"SELECT {', '.join(LISTING_FIELDS)} FROM out_listings ORDER BY {LISTING_ORDER_SQL}")


def _listings_read(con: duckdb.DuckDBPyConnection, query: str) -> list[Listing]:
    """The rows ``query`` gives (``LISTING_FIELDS``' columns) as ``public_listings`` makes listings of them, in order."""
    reader = con.sql(query).to_arrow_reader(FETCHED)
    made = nothing_made(REPEATING)  # (its dates and times among them)
    listings: list[Listing] = []
    for batch in reader:
        columns = [_python_values(batch.column(name), name, made) for name in LISTING_FIELDS]
        listings += [dict(zip(LISTING_FIELDS, values, strict=True)) for values in zip(*columns, strict=True)]
        del columns
    return listings


def _python_values(column: Any, name: str, made: Made) -> list[Any]:
    """A column's values as ``public_listings`` gives them (``made``: the repeating values met so far)."""
    import pyarrow as pa

    by_field, codes = made
    if name in by_field:  # a date or time in ISO form, a term as it is
        return _each_made_once(column, by_field[name])
    if name in CODE_LISTS and pa.types.is_list(column.type):
        flat = _each_made_once(column.flatten(), codes)
        out: list[Any] = []
        at = 0
        for length in column.value_lengths().to_pylist():
            if length is None:
                out.append(None)
            else:
                out.append(flat[at : at + length])
                at += length
        return out
    values = column.to_pylist()
    if name == "sources":
        for sources in values:
            _share_source_names(sources, codes.setdefault)
    return values  # type: ignore[no-any-return]


def _each_made_once(column: Any, seen: dict[object, object]) -> list[Any]:
    """An Arrow column's values, each distinct one made a Python object once (as ``_iso`` writes it), and that one
    the equal value of ``seen`` when there is one (else it is kept there)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    distinct = [None if v is None else seen.setdefault(v, _iso(v)) for v in encoded.dictionary.to_pylist()]
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]


def _share_source_names(sources: object, shared: Callable[[object, object], object]) -> None:
    """Each source's name of a listing's ``sources`` made the equal name met before (``shared``: a ``setdefault``)."""
    if sources.__class__ is list:
        for source in sources:  # type: ignore[attr-defined]
            if source.__class__ is dict and (name := source.get("source")).__class__ is str:
                source["source"] = shared(name, name)


#: the values met so far: by repeating field, and the codes in lists and sources' names
Made = tuple[dict[str, dict[object, object]], dict[object, object]]


def nothing_made(fields: Iterable[str]) -> Made:
    """``share_repeating``'s values met, before any listing: none, for each of ``fields``."""
    return {k: {} for k in dict.fromkeys(fields)}, {}


def share_repeating(listings: list[Any], made: Made) -> None:
    """Each repeating value of the listings (``REPEATING``'s fields, the codes in ``CODE_LISTS``, the sources' names)
    made one object with the equal values met before (``made``), dates and times written as ``_iso`` writes them.

    DuckDB and orjson make a new object per cell: at 535k listings the repeats were a fifth of the listings'
    1.6 GB.  Anything of another shape (a release written by older code) is left as it is."""
    by_field, codes = made
    shared = codes.setdefault
    fields = list(by_field.items())
    for x in listings:
        if x.__class__ is not dict:
            continue
        get = x.get
        for k, seen in fields:
            value = get(k)
            if value.__class__ is str:
                x[k] = seen.setdefault(value, value)  # (``_iso`` leaves text as it is)
            elif isinstance(value, dt.date):
                x[k] = seen.get(value) or seen.setdefault(value, _iso(value))  # (``_iso`` of a date is never empty)
        for k in CODE_LISTS:
            values = get(k)
            if values.__class__ is list:
                values[:] = [shared(v, v) if v.__class__ is str else v for v in values]
        _share_source_names(get("sources"), shared)


#: where one listing of ``listings.json`` ends and the next begins, as ``json_bytes`` writes it (a JSON string
#: holds no line break, so these bytes are always between two objects of the outermost list)
BETWEEN = b"\n  },\n  {"


@collection_paused()
def listings_from_json(data: bytes) -> object:
    """``orjson.loads(data)`` with the repeating values of a list of listings shared (``share_repeating``) when
    ``data`` holds ``SHARED_FROM_BYTES`` or more.

    A list as ``json_bytes`` writes it is parsed ``PIECE_BYTES`` at a time, each piece's repeats let go of
    before the next is parsed, so the listings are never held twice: pieces that each parse as a list's items
    join into the whole list's items.  Bytes written otherwise are parsed whole (a ValueError when not JSON)."""
    if len(data) < SHARED_FROM_BYTES:
        return orjson.loads(data)
    made = nothing_made(REPEATING)
    end = len(data) - 1
    while end > 0 and data[end] in b" \t\r\n":  # (not ``rstrip``: a copy of every byte)
        end -= 1
    if data[:1] != b"[" or data[end : end + 1] != b"]" or data.find(BETWEEN, 0, end) < 0:
        return _parsed_whole(data, made)
    listings: list[Any] = []
    view = memoryview(data)
    start = 1  # within the brackets, up to ``end``
    try:
        while start < end:
            found = data.find(BETWEEN, start + PIECE_BYTES, end)
            cut = found + 4 if found >= 0 else end  # after a closing brace, at the comma; or the end
            piece = orjson.loads(b"".join((b"[", view[start:cut], b"]")))
            share_repeating(piece, made)
            listings += piece
            start = cut + 1
    except ValueError:  # not split where this expects: parsed whole
        del listings
        return _parsed_whole(data, made)
    return listings


def _parsed_whole(data: bytes, made: Made) -> object:
    whole = orjson.loads(data)
    share_repeating(whole if isinstance(whole, list) else [], made)
    return whole


#: how ``json_bytes`` opens and closes a list of objects (``BETWEEN`` parts them)
OPENS, CLOSES = b"[\n  {", b"\n  }\n]\n"
#: how each object of such a list ends (``BETWEEN`` and ``CLOSES`` begin with it)
CLOSED = b"\n  }"


@collection_paused()
def listings_against(data: bytes, after: list[Listing], after_data: bytes) -> object:
    """``listings_from_json(data)`` (the release before this one's ``listings.json``), where each listing written as
    one of ``after`` (this release's listings, ``after_data`` the bytes ``json_bytes`` gives them) is that listing.

    Only the listings whose text is not one of ``after``'s are parsed: a rerun's listings are nearly all those of the
    release before it, which are then neither parsed (6.4-7.3 s at 534k listings) nor held twice (1.6 GB).  Each object
    of the list is the text between ``OPENS``/``BETWEEN`` and ``BETWEEN``/``CLOSES``; a text that parses alone as an
    object is that object of the whole list.  Bytes written otherwise are read by ``listings_from_json``."""
    texts = _object_texts(after_data)
    if texts is None or len(texts) != len(after) or not (data.startswith(OPENS) and data.endswith(CLOSES)):
        return listings_from_json(data)
    written = dict(zip(texts, after, strict=True))
    del texts
    made = nothing_made(REPEATING)
    listings: list[Any] = []
    start, end = len(OPENS), len(data) - len(CLOSES)
    try:
        while True:
            cut = data.find(BETWEEN, start, end)
            text = data[start : cut if cut >= 0 else end]
            listing = written.get(text)
            if listing is None:
                listing = orjson.loads(b"".join((b"{", text, b"}")))
                share_repeating([listing], made)
            listings.append(listing)
            if cut < 0:
                return listings
            start = cut + len(BETWEEN)
    except ValueError:  # a text that is not an object alone: the bytes are not parted where this expects
        del listings, written
        return listings_from_json(data)


#: ``OPENS``, ``BETWEEN`` and ``CLOSES`` one level deeper: how ``json_bytes`` writes a list of objects that is a value
#: of an object, each line two spaces further in
DEEPER_OPENS, DEEPER_BETWEEN, DEEPER_CLOSES = (x.replace(b"\n", b"\n  ") for x in (OPENS, BETWEEN, CLOSES))


@dataclass(frozen=True)
class Deeper:
    """A list of objects as ``json_bytes`` wrote it (``listings.json``), each line two spaces further in (``text``), and
    where each object's text is in it, within its braces (from ``starts`` to ``ends``, object after object)."""

    text: bytes
    starts: list[int]
    ends: list[int]

    def __len__(self) -> int:
        return len(self.starts)

    def texts(self, at: list[int]) -> list[bytes]:
        """The texts of the objects at these places, in that order (copies made as they are needed: a slice of a
        memoryview took 2.3 µs, 3.3 s for the 1.4M places of 534k listings in 16 locations)."""
        text = self.text
        return [text[s:e] for s, e in zip(map(self.starts.__getitem__, at), map(self.ends.__getitem__, at), strict=True)]


def deeper_texts(data: bytes) -> Deeper | None:
    """``data``, a list of objects ``json_bytes`` wrote, as it writes each of those objects one level deeper (a listing
    in a location file); None for bytes written otherwise.  One text of them all (0.43 GB at 534k listings, held while
    the location files are built), not a bytes object per listing."""
    if not (data.startswith(OPENS) and data.endswith(CLOSES)):
        return None
    text = data.replace(b"\n", b"\n  ")  # (one pass: one for each location's listings took 1.0 s at 534k listings)
    starts: list[int] = []
    ends: list[int] = []
    start, end = len(DEEPER_OPENS), len(text) - len(DEEPER_CLOSES)
    while True:
        cut = text.find(DEEPER_BETWEEN, start, end)
        starts.append(start)
        ends.append(cut if cut >= 0 else end)
        if cut < 0:
            return Deeper(text, starts, ends)
        start = cut + len(DEEPER_BETWEEN)


def location_json(head: Mapping[str, object], texts: list[bytes]) -> bytes:
    """``json_bytes({"location": head, "count": len(texts), "listings": [...]})`` from each listing's text one level
    deeper (``Deeper.texts``), joined: a listing is written once for every location it is in, not once per location
    (the location files of 534k listings, 1.24 GB, took orjson 3.2-3.3 s; joined, 2.5-2.6 s with the texts made)."""
    if not texts:
        return json_bytes({"location": head, "count": 0, "listings": []})
    opening = orjson.dumps({"location": head, "count": len(texts)}, option=orjson.OPT_INDENT_2)
    return b"".join((opening[: -len(b"\n}")], b',\n  "listings": [\n    {', DEEPER_BETWEEN.join(texts), b"\n    }\n  ]\n}\n"))


def _object_texts(data: bytes) -> list[bytes] | None:
    """The text of each object of a list ``json_bytes`` wrote (within its braces), or None for bytes written otherwise."""
    if not (data.startswith(OPENS) and data.endswith(CLOSES)):
        return None
    texts = data.split(BETWEEN)  # (not a slice of ``data`` first: a copy of every byte)
    texts[0] = texts[0][len(OPENS) :]
    texts[-1] = texts[-1][: len(texts[-1]) - len(CLOSES)]
    return texts


# --- locations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    type: str  # country, region or worldwide
    parent: str | None

    def serves(self, listing: Listing) -> bool:
        """Does the listing belong in this location's file? (national, regional and worldwide rules)"""
        areas: set[str] = set(listing["areas"])  # type: ignore[call-overload]
        if self.type == "worldwide":
            return "WW" in areas
        if self.type == "region":
            return bool(areas & {self.code, str(self.parent), "WW"})
        return bool(areas & {self.code, "WW"}) or any(a.startswith(self.code + "-") for a in areas)


def indexed(entry: Mapping[str, Any]) -> Location:
    """The location an entry of a release's ``index.json`` names."""
    return Location(str(entry["code"]), str(entry["name"]), str(entry["type"]), entry["parent"])


def location_paths(code: str) -> dict[str, str]:
    """Where a location's files are in a release (``index.json`` names them so)."""
    return {"json": f"locations/{code}.json", "csv": f"locations/{code}.csv"}


def location_name(code: str) -> str:
    if code == "WW":
        return "Worldwide"
    if "-" in code:
        sub = pycountry.subdivisions.get(code=code)
        return sub.name if sub else code
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or (country.name if country else code)


def locations_of(listings: Iterable[Listing]) -> list[Location]:
    """Worldwide, every country any listing serves, and every region named; sorted by code, WW first."""
    codes: set[str] = {"WW"}
    for listing in listings:
        for area in listing["areas"]:  # type: ignore[attr-defined]
            codes.add(area)
            if "-" in area:
                codes.add(area.split("-", 1)[0])
    return [location(code) for code in sorted(codes, key=lambda c: (c != "WW", c))]


def location(code: str) -> Location:
    """The location of a code (``WW``, a country's or a region's)."""
    if code == "WW":
        return Location(code, location_name(code), "worldwide", None)
    if "-" in code:
        return Location(code, location_name(code), "region", code.split("-", 1)[0])
    return Location(code, location_name(code), "country", None)


def listings_by_location(listings: list[Listing], locations: list[Location]) -> dict[str, list[Listing]]:
    """Each location's listings (``Location.serves``), in the listings' order; one pass over the listings."""
    return at_places(listings, places_by_location(listings, locations))


def at_places(listings: list[Listing], places: dict[str, list[int]]) -> dict[str, list[Listing]]:
    """Each location's listings from their places (``places_by_location``)."""
    return {code: [listings[i] for i in at] for code, at in places.items()}


def places_by_location(listings: list[Listing], locations: list[Location]) -> dict[str, list[int]]:
    """``listings_by_location`` as each listing's place in ``listings``."""
    served = _placing(locations)
    chosen: dict[str, list[int]] = {loc.code: [] for loc in locations}
    for i, listing in enumerate(listings):
        for code in served(listing["areas"]):  # type: ignore[arg-type]
            chosen[code].append(i)  # (once: ``served`` gives a set)
    return chosen


def _placing(locations: list[Location]) -> Callable[[Iterable[str]], set[str]]:
    """The codes of ``locations`` whose files hold a listing of the given areas."""
    regions_of: dict[str, list[str]] = {}
    for loc in locations:
        if loc.type == "region":
            regions_of.setdefault(str(loc.parent), []).append(loc.code)
    codes = {loc.code for loc in locations}

    def served(areas: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for area in areas:
            if area == "WW":
                out |= codes
            elif "-" in area:
                out |= {area, area.split("-", 1)[0]}
            else:
                out |= {area, *regions_of.get(area, ())}
        return out & codes

    return served


# --- file builders (pure) ---------------------------------------------------------------------


def json_bytes(obj: object) -> bytes:
    """Indented UTF-8 JSON and a newline: the bytes ``json.dumps(obj, ensure_ascii=False, indent=2) + "\\n"`` gives,
    made by orjson (the standard library indents in pure Python: 1.2 s for 53k listings, against 0.05 s)."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def csv_cell(value: object) -> str:
    """A CSV cell: lists joined with '; ', never starting like a spreadsheet formula (E.164 numbers aside)."""
    if value is None:
        return ""
    if value.__class__ is str:
        text: str = value  # type: ignore[assignment]
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "; ".join(f"{v['source']}:{v['record_id']}" if isinstance(v, dict) else str(v) for v in value)
    else:
        text = str(value)
    if text[:1] in _FORMULA_FIRST and not (text[0] == "+" and _ascii_digits(text[1:])):  # "+4722..." is a phone number
        text = "'" + text
    return text


_FORMULA_FIRST = frozenset(FORMULA_START)


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


PARQUET_ROW_GROUP = 100_000
#: rows per Arrow batch DuckDB hands ``listings.parquet`` (its default).  The columns are joined into one chunk each
#: before writing: a full page ends at a chunk's end too (535k listings in chunks gave 1.8 kB of other bytes)
ARROW_BATCH = 1_000_000
PARQUET_PAGE = 1 << 20  # bytes of a data page (pyarrow's default)


def parquet_bytes(listings: list[Listing]) -> bytes:
    """``listings.parquet``: the listings with real types (lists, structs, dates, UTC times); same listings, same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = to_arrow_schema()
    assert isinstance(schema, pa.Schema)
    columns = []
    for name in LISTING_FIELDS:  # a column at a time: one look-up of its type, not one per cell (1.4 s at 53k listings)
        values: list[object] = [listing[name] for listing in listings]
        kind = BY_NAME[name].type
        if kind == "date":
            values = [None if v is None else dt.date.fromisoformat(str(v)) for v in values]
        elif kind == "timestamp":
            values = [None if v is None else dt.datetime.fromisoformat(str(v)) for v in values]
        columns.append(pa.array(values, type=schema.field(name).type))  # (the column's Python objects let go of)
    table = pa.Table.from_arrays(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=PARQUET_ROW_GROUP, data_page_size=PARQUET_PAGE)
    return sink.getvalue()


def csv_bytes(listings: list[Listing]) -> bytes:
    return b"".join(csv_records(listings))


def csv_records(listings: list[Listing]) -> list[bytes]:
    """The header and each listing's record as CSV bytes (CRLF line ends; a record may hold quoted line breaks):
    a location file is the header and its listings' records, each written once per release."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(LISTING_FIELDS)
    ends = [buf.tell()]
    for listing in listings:
        writer.writerow([csv_cell(listing[f]) for f in LISTING_FIELDS])
        ends.append(buf.tell())
    text = buf.getvalue()
    return [text[a:b].encode("utf-8") for a, b in zip([0, *ends], ends, strict=False)]


@dataclass(frozen=True)
class Writers:
    """What writes the files of a release that take every listing of theirs apart: the location CSV files' records
    (the header and those of the listings given), ``listings.parquet`` and the HSDS package's parts (``hsds``:
    ``hsds.part_bodies`` of each piece of listings wanted, by its number; None: built by it, in worker processes when
    there are).  The pure ones by default; ``warehouse_writers`` has DuckDB write the same bytes from the table the
    listings were read from."""

    records: Callable[[list[Listing]], list[bytes]] = csv_records
    parquet: Callable[[list[Listing]], bytes] = parquet_bytes
    hsds: Callable[[list[list[Listing]], list[int], dict[str, str]], dict[int, hsds.Part]] | None = None

    def close(self) -> None:
        """Stops, and waits for, what the writers have going on (``warehouse_writers``' HSDS builds)."""
        close = getattr(self.hsds, "close", None)
        if close is not None:
            close()


def _cell_text_sql(name: str) -> str:
    """The text ``csv_cell`` makes of a field's value, before its formula guard, as SQL of ``out_listings``' column."""
    kind, col = BY_NAME[name].type, f'"{name}"'
    if kind == "sources":  # (a missing element or part written as Python's str(None) writes it)
        part = "CASE WHEN v IS NULL THEN 'None' ELSE coalesce(v.source, 'None') || ':' || coalesce(v.record_id, 'None') END"
        return f"array_to_string(list_transform({col}, lambda v: {part}), '; ')"
    if kind == "strings":
        return f"array_to_string(list_transform({col}, lambda v: coalesce(v, 'None')), '; ')"
    if kind == "boolean":
        return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    if kind == "date":
        return f"CAST({col} AS VARCHAR)"
    if kind == "timestamp":  # as ``_iso`` writes it: whole seconds, a T and a Z
        return f"replace(CAST(date_trunc('second', {col}) AS VARCHAR), ' ', 'T') || 'Z'"
    return col


#: ``FORMULA_START`` as a character class of RE2 (a test holds them to each other)
FORMULA_CLASS = r"[=+\-@\t\r]"


def csv_records_sql(table: str = "out_listings") -> str:
    """A query of the listings of ``table`` (or what a FROM clause takes): each one's id and CSV record as
    ``csv_records`` writes it (the same text).  Each cell's text (``_cell_text_sql``) is guarded against formulas as
    ``csv_cell`` guards it, then quoted as the ``csv`` module's minimal quoting does (a cell holding a comma, a double
    quote or a line break); the record ends with CRLF."""
    n = range(len(LISTING_FIELDS))
    texts = ", ".join(f"{_cell_text_sql(name)} AS t{i}" for i, name in zip(n, LISTING_FIELDS, strict=True))
    guarded = ", ".join(f"{guarded_sql(f't{i}')} AS g{i}" for i in n)
    quoted = " || ',' || ".join(quoted_sql(f"g{i}") for i in n)
    return f"SELECT id, {quoted} || chr(13) || chr(10) AS record FROM (SELECT id, {guarded} FROM (SELECT id, {texts} FROM {table}))"


def guarded_sql(column: str) -> str:
    """SQL of a text column's cell guarded against formulas as ``csv_cell`` guards it (NULL: empty)."""
    return (
        f"CASE WHEN regexp_matches({column}, '^{FORMULA_CLASS}') AND NOT regexp_full_match({column}, '\\+[0-9]+') "
        f"THEN '''' || {column} ELSE coalesce({column}, '') END"
    )


def quoted_sql(column: str) -> str:
    """SQL of a column's cell (guarded already) quoted as the ``csv`` module's minimal quoting quotes it."""
    return f"""CASE WHEN regexp_matches({column}, '[,"\\r\\n]') THEN '"' || replace({column}, '"', '""') || '"' ELSE {column} END"""


def warehouse_writers(con: duckdb.DuckDBPyConnection, table: str = "out_listings") -> Writers:
    """``Writers`` for listings as ``public_listings`` read them from ``table``, written by DuckDB from the table (in
    parallel, and without a Python object per cell): the CSV records in a third of the time (2.7 s against 6.9-8.8 s
    for 535k listings), ``listings.parquet`` from the table's Arrow columns in half the time (1.7-3.0 s against
    3.4-4.4 s), the HSDS package's parts in a third of the CPU time (``hsds_sql``: 8.5 s against about 25 s).  Each
    gives the bytes the pure writer gives (property tests hold them to each other); listings that are not the table's
    are written by the pure one.  The caller closes them (``Writers.close``) before the connection."""
    from curate import hsds_sql  # (which reads this module's SQL of cells)

    return Writers(
        functools.partial(_warehouse_records, con, table),
        functools.partial(_warehouse_parquet, con, table),
        hsds_sql.WarehouseHsds(con, table),
    )


#: the order of ``public_listings`` (kind, name, id, as Python's ``str`` sorts them), as SQL
LISTING_ORDER_SQL = ", ".join(f"coalesce(CAST({n} AS VARCHAR), 'None')" for n in ("kind", "name", "id"))


def _warehouse_records(con: duckdb.DuckDBPyConnection, table: str, listings: list[Listing]) -> list[bytes]:
    """The records of ``listings`` from ``table``, as bytes (Arrow binary), each put in the place DuckDB numbers it
    with as ``public_listings`` sorts, a batch at a time (not sorted whole, nor held whole twice: a first release
    peaked 150 MB lower): when they are the listings' own, each is the record of the listing in its place (534k
    records 1.4-1.5 s, against 2.1-2.2 s looked up by id); else by id, and those of listings that are not the
    table's made by ``csv_records``."""
    import pyarrow as pa

    wanted = f"wanted_{os.getpid()}_{threading.get_ident()}"  # the ids of ``listings`` (a semi-join: 0.5 s for 89k of 535k)
    con.register(wanted, pa.table({"id": pa.array([str(x["id"]) for x in listings], pa.string())}))
    ids: list[Any] = [None] * len(listings)
    records: list[Any] = [None] * len(listings)
    try:
        chosen = f"{table} SEMI JOIN {wanted} USING (id)"
        reader = con.sql(
            f"SELECT place - 1 AS at, id, encode(record) AS record FROM ({csv_records_sql(chosen)}) "
            f"JOIN (SELECT id, row_number() OVER (ORDER BY {LISTING_ORDER_SQL}) AS place FROM {chosen}) USING (id)"
        ).to_arrow_reader(FETCHED)
        for batch in reader:  # each put in its place, a batch at a time (not sorted, nor all held, by DuckDB and Arrow)
            at = batch.column("at").to_pylist()
            for i, lid, record in zip(at, batch.column("id").to_pylist(), batch.column("record").to_pylist(), strict=True):
                if i < len(records):
                    ids[i], records[i] = lid, record
    finally:
        con.unregister(wanted)
    if ids == [x["id"] for x in listings]:
        return csv_records([]) + records
    by_id = {lid: record for lid, record in zip(ids, records, strict=True) if lid is not None}
    missing = [x for x in listings if x["id"] not in by_id]  # (none, when the listings are the table's)
    made = dict(zip(map(id, missing), csv_records(missing)[1:], strict=True))
    return csv_records([]) + [made[id(x)] if made and id(x) in made else by_id[x["id"]] for x in listings]


def _warehouse_parquet(con: duckdb.DuckDBPyConnection, table: str, listings: list[Listing]) -> bytes:
    """``parquet_bytes(listings)`` from ``table``'s Arrow columns, when its listings are ``listings`` in their order (by
    id); else from ``listings``.  Times are cut to whole seconds (as ``_iso`` cuts them) and marked UTC."""
    import pyarrow as pa

    schema = to_arrow_schema()
    assert isinstance(schema, pa.Schema)
    with con.cursor() as cursor:  # (a connection of its own: built in a thread beside the caller's queries, ``publish``)
        return _parquet_from(cursor, table, listings, schema)


def _parquet_from(con: duckdb.DuckDBPyConnection, table: str, listings: list[Listing], schema: Any) -> bytes:
    import pyarrow as pa

    try:
        got = con.sql(f"SELECT {PARQUET_COLUMNS_SQL} FROM {table} ORDER BY {LISTING_ORDER_SQL}").to_arrow_table(batch_size=ARROW_BATCH)
        if got.column("id").to_pylist() != [x["id"] for x in listings]:
            return parquet_bytes(listings)
        columns = [got.column(n).cast(schema.field(n).type).combine_chunks() for n in LISTING_FIELDS]
    except (duckdb.Error, pa.ArrowException):
        return parquet_bytes(listings)
    del got
    return parquet_written(columns, schema)


#: the columns of ``listings.parquet`` as SQL of ``out_listings``' (times cut to whole seconds, as ``_iso`` cuts them)
PARQUET_COLUMNS_SQL = ", ".join(f"date_trunc('second', {n}) AS {n}" if BY_NAME[n].type == "timestamp" else n for n in LISTING_FIELDS)


def parquet_written(columns: list[Any], schema: Any) -> bytes:
    """``listings.parquet`` of the Arrow arrays of its columns (``LISTING_FIELDS``', each of ``schema``'s type)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(
        pa.Table.from_arrays(columns, schema=schema),
        sink,
        compression="zstd",
        row_group_size=PARQUET_ROW_GROUP,
        data_page_size=PARQUET_PAGE,
    )
    return sink.getvalue()


@dataclass(frozen=True)
class SourceMeta:
    """What a release says about a source: who made it and under which licence."""

    source_id: str
    licence: str | None = None
    attribution: str | None = None
    url: str | None = None


def datapackage(csv_paths: list[str], sources: list[SourceMeta]) -> dict[str, object]:
    """Frictionless data package of the release's CSV files, with each source's licence and attribution."""
    licences = sorted({s.licence for s in sources if s.licence})
    return {
        "profile": "data-package",
        "name": "support-directory",
        "title": "Support directory: mental-health helplines, chats, text lines and online communities by location",
        "licenses": [{"name": name} for name in licences],
        "sources": source_entries(sources),
        "resources": [
            {
                "name": "location-" + p.removeprefix("locations/").removesuffix(".csv").lower(),
                "path": p,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": TABLE_SCHEMA_PATH,  # one Table Schema file for every location CSV
            }
            for p in csv_paths
        ]
        + [
            {"name": "listings", "path": "listings.json", "type": "json", "format": "json", "mediatype": "application/json",
             "description": "Every public listing; each follows schema/listing.schema.json."},
            {"name": "listings-parquet", "path": "listings.parquet", "type": "file", "format": "parquet",
             "mediatype": "application/vnd.apache.parquet", "description": "Every public listing as Apache Parquet."},
            {"name": "changes", "path": "changes.json", "type": "json", "format": "json", "mediatype": "application/json",
             "description": "What changed since the previous release: added, removed and changed listing ids."},
            {"name": "hsds", "path": "hsds/datapackage.json", "type": "json", "format": "json", "mediatype": "application/json",
             "description": "The same listings as an Open Referral HSDS 3.0 tabular data package."},
        ],
    }  # fmt: skip


def source_entries(sources: list[SourceMeta]) -> list[dict[str, object]]:
    return [
        {
            "title": s.attribution or s.source_id,
            "source_id": s.source_id,
            **({"path": s.url} if s.url else {}),
            **({"license": s.licence} if s.licence else {}),
        }
        for s in sorted(sources, key=lambda s: s.source_id)
    ]


# --- changes and the mass-removal guard (pure) --------------------------------------------------


def changes_between(before: list[Listing] | None, after: list[Listing], equal: dict[str, Listing] | None = None) -> dict[str, object]:
    """``changes.json``: ids added and removed, and for every listing kept the fields whose values changed.

    The first release (``before`` is None) has nothing to compare against: its lists are empty.  A listing kept is
    compared field by field only when its tracked fields, taken together, differ (one comparison in C for the
    hundreds of thousands that did not change: 11.7 s of a 1M-row rerun went to comparing them field by field);
    the whole listings are compared first (a night without link checks changes none of the untracked fields either:
    2.2 s of a 1M-row rerun, against 7.7 s for taking the tracked fields of each).  ``equal``: filled with the
    listings of ``after`` equal in every field to the one of ``before`` with their id, by id.
    """
    if before is None:
        return {"added": [], "removed": [], "changed": []}
    old = {str(x["id"]): x for x in before}
    new = {str(x["id"]): x for x in after}
    tracked = [f for f in LISTING_FIELDS if f not in UNTRACKED_FIELDS and f != "id"]
    values = operator.itemgetter(*tracked)
    changed = []
    equal = {} if equal is None else equal
    for lid in old.keys() & new.keys():  # (the few changed sorted after: not the hundreds of thousands kept)
        was, now = old[lid], new[lid]
        if was is now or was == now:  # (a rerun's listing unchanged is the one read back: ``listings_against``)
            equal[lid] = now
            continue
        try:
            if values(was) == values(now):
                continue
        except KeyError:  # a listing of an older release without one of today's fields
            pass
        fields = [f for f in tracked if was.get(f) != now.get(f)]
        if fields:
            changed.append({"id": lid, "fields": fields})
    changed.sort(key=operator.itemgetter("id"))
    return {"added": sorted(new.keys() - old.keys()), "removed": sorted(old.keys() - new.keys()), "changed": changed}


@dataclass(frozen=True)
class Removal:
    """Listings a release would take away from a location (``ALL`` for the whole release)."""

    code: str
    name: str
    before: int
    removed: int

    @property
    def share(self) -> float:
        return self.removed / self.before if self.before else 0.0

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.removed} of {self.before} listings ({self.share:.0%})"


def mass_removals(
    before: list[Listing] | None,
    after: list[Listing],
    share: float = 0.2,
    minimum: int = 5,
    equal: dict[str, Listing] | None = None,
) -> list[Removal]:
    """What makes a release a mass removal: more than ``share`` of all listings gone, or more than ``share`` of a
    location's listings where at least ``minimum`` would go.  Empty when the release may be published.

    Only the listings that go or move are placed in locations: a location's listings that stay are not compared one by one
    (placing all of both releases' listings took 6.4 s of a 1M-row rerun).  ``equal``: ``changes_between``'s, whose
    listings have not moved (their areas are not compared again)."""
    if not before:
        return []
    equal = equal or {}
    after_by_id = {lid: x for x in after if (lid := str(x["id"])) not in equal}
    unequal = [x for x in before if str(x["id"]) not in equal]  # (one pass over ``before``: the rest is among these)

    def placed() -> tuple[list[Location], dict[str, int]]:
        locations = locations_of(before)
        return locations, location_counts(before, locations)

    return _removals(len(before), unequal, after_by_id, placed, share, minimum)


def _removals(
    count: int,
    unequal: list[Listing],
    after_by_id: dict[str, Listing],
    placed: Callable[[], tuple[list[Location], dict[str, int]]],
    share: float,
    minimum: int,
) -> list[Removal]:
    """``mass_removals`` of a release before of ``count`` listings, ``unequal`` those of them not equal to one of the new
    release (``after_by_id``: the new release's listings not equal to one of them, by id); ``placed``: the release
    before's locations and how many listings each held (asked only when a listing is gone or moved)."""
    gone_listings = [x for x in unequal if str(x["id"]) not in after_by_id]
    out = []
    if len(gone_listings) / count > share:
        out.append(Removal("ALL", "All locations", count, len(gone_listings)))
    # a listing that stays but serves other areas may be gone from a location it served
    moved = [x for x in unequal if (y := after_by_id.get(str(x["id"]))) is not None and set(x["areas"]) != set(y["areas"])]  # type: ignore[call-overload]
    del unequal
    if not gone_listings and not moved:
        return out
    locations, was_by = placed()
    lost_by = location_counts(gone_listings, locations)
    if moved:
        lost_areas = listings_by_location(moved, locations)
        still_areas = listings_by_location([after_by_id[str(x["id"])] for x in moved], locations)
        for code, listed in lost_areas.items():
            still = {str(x["id"]) for x in still_areas[code]}
            lost_by[code] += sum(1 for x in listed if str(x["id"]) not in still)
    for loc in locations:
        was, lost = was_by[loc.code], lost_by[loc.code]
        if lost >= minimum and lost / was > share:
            out.append(Removal(loc.code, loc.name, was, lost))
    return out


def location_counts(listings: list[Listing], locations: list[Location]) -> dict[str, int]:
    """How many of ``listings`` each location's file holds (``Location.serves``)."""
    return {code: len(chosen) for code, chosen in listings_by_location(listings, locations).items()}


@dataclass(frozen=True)
class Held:
    """What a run reports when its release was held."""

    release_id: str
    message: str


class ReleaseHeld(Exception):
    """A release that would remove too much: not published (override: ``--allow-mass-removal``)."""

    #: locations named one a line in the message; the rest are counted
    SHOWN = 12

    def __init__(self, release_id: str, removals: list[Removal], current: str | None = None, share: float = 0.2, minimum: int = 5):
        self.release_id = release_id
        self.removals = removals
        ranked = sorted(removals, key=lambda r: (r.code != "ALL", -r.removed, r.code))
        lines = [f"  - {r}" for r in ranked[: self.SHOWN]]
        if len(ranked) > self.SHOWN:
            lines.append(f"  - and {len(ranked) - self.SHOWN} more locations")
        where = f"release {current}" if current else "the previous release"
        super().__init__(
            f"release {release_id} would remove more than {share:.0%} of all listings, or of a location's listings "
            f"where at least {minimum} would go:\n"
            + "\n".join(lines)
            + f"\nexports/current still points to {where}. If the sources really lost these listings, "
            "run again with --allow-mass-removal."
        )


def release_files(
    listings: list[Listing], sources: list[SourceMeta] | None = None, previous: list[Listing] | None = None, pool: Executor | None = None
) -> dict[str, bytes]:
    """Every file of a release but the manifest, by relative path.  Same listings (and previous listings), same bytes."""
    return cast(dict[str, bytes], dict(iter_release_files(listings, sources, previous, pool)))  # (nothing is taken: no ``reuse``)


#: HSDS parts to build that are built in this process, not sent to workers (``iter_release_files``): a part of 4k
#: listings took it 0.07 s, where a worker just started gave it back after 0.6 s (on an idle machine), and the
#: package, then its check, waited for it
PARTS_BUILT_HERE = 2

#: listings in a part of the HSDS rows, on average (built apart, by worker processes when there are): a part ends
#: after a listing whose id's CRC-32 is a multiple of this, so a listing added or removed moves no other part's
#: bounds, and a rerun takes the parts whose listings did not change from the release before (``Reusable``)
HSDS_PART_EVERY = 4096


def hsds_pieces(listings: list[Listing]) -> list[list[Listing]]:
    """The listings of each HSDS part, in order (``HSDS_PART_EVERY``)."""
    pieces, start = [], 0
    for i, x in enumerate(listings):
        if zlib.crc32(str(x["id"]).encode()) % HSDS_PART_EVERY == 0:
            pieces.append(listings[start : i + 1])
            start = i + 1
    if start < len(listings) or not pieces:
        pieces.append(listings[start:])
    return pieces


def iter_release_files(
    listings: list[Listing],
    sources: list[SourceMeta] | None = None,
    previous: list[Listing] | None = None,
    pool: Executor | None = None,
    changes: dict[str, object] | None = None,
    reuse: Reusable | None = None,
    listings_json: bytes | None = None,
    hsds_made: dict[str, object] | None = None,
    writers: Writers = Writers(),
) -> Iterator[tuple[str, bytes | Taken]]:
    """``release_files`` one file at a time (``publish`` writes each as it comes: a big release is never all in memory).

    ``pool``: worker processes (``table_check.workers``); the HSDS package's rows are then built in parts
    (``hsds_pieces``), in them (by DuckDB when ``writers`` has it build them), while this process builds the rest.
    ``changes``: ``changes_between(previous, listings)`` when already made (``previous`` is then not needed).
    ``reuse``: the previous release's files of the locations whose listings did not change, taken as they are instead
    of built again (the same bytes).  ``listings_json``: the bytes ``json_bytes(listings)`` gives, when already made.
    ``hsds_made``: filled with what a rerun needs to take this release's HSDS parts (``hsds_record``).  ``writers``:
    what writes the location CSV files' records, ``listings.parquet`` and the HSDS parts."""
    sources = sources or []
    locations = locations_of(listings)
    names = {loc.code: loc.name for loc in locations}
    licences = sorted({s.licence for s in sources if s.licence})
    pieces = hsds_pieces(listings)  # the HSDS rows' parts, joined in order
    listings_json = json_bytes(listings) if listings_json is None else listings_json
    keys = part_keys(pieces, names, listings_json)
    ready = reuse.hsds_parts(keys) if reuse is not None else {}  # those the release before built from the same
    todo = [i for i, key in enumerate(keys) if key not in ready]
    # a worker gets its part as JSON (listings are JSON values): orjson writes it in a tenth of pickle's time; each
    # part is written when a worker is about to be free (all parts at once held 0.3 GB at 535k listings); a rerun's
    # few parts are built here (``_hsds_files``), sooner than a worker starts
    sent = todo if len(todo) > PARTS_BUILT_HERE else []
    building: dict[int, Future[hsds.Part] | None] = dict.fromkeys(todo)
    by_duckdb = writers.hsds if sent else None
    if by_duckdb is not None:  # (in a thread of its own, beside the rest of the build)
        building.update(_built_beside(functools.partial(by_duckdb, pieces, sent, names), sent))
    else:
        args: list[Callable[[], tuple[Any, ...]]] = [functools.partial(_part_args, pieces[i], names) for i in sent]
        building.update(zip(sent, table_check.submitted_in_turn(pool, hsds.part_bodies_of_json, args), strict=True))
    elsewhere = pool is not None or by_duckdb is not None  # (else each is built when needed, here)
    # the HSDS package is given as soon as its parts are built, between two of the other files: its check can then
    # start in a worker beside the rest of the build (``publish``), not after it
    known = reuse.hsds_sha256 if reuse is not None else {}
    hsds_files = _hsds_files(pieces, keys, ready, building, names, licences, sources, hsds_made, known)

    def hsds_if_built(held: bool = True) -> Iterator[tuple[str, bytes]]:
        # held: the location files' records and texts are held; DuckDB's parts, all built 10 s in at 534k listings,
        # are not joined into the package's tables beside them (the release's peak was then 0.5 GB higher)
        if elsewhere and not (held and by_duckdb is not None) and all(f is None or f.done() for f in building.values()):
            yield from hsds_files  # (nothing, once given)

    yield "listings.json", listings_json
    yield from hsds_if_built(held=False)  # (before ``listings.parquet``, which may still be being built: the
    # package's check, the longest, then starts in a worker that much sooner)
    yield "listings.parquet", writers.parquet(listings)
    yield from hsds_if_built(held=False)
    yield "changes.json", json_bytes(changes if changes is not None else changes_between(previous, listings))
    index = []
    places = places_by_location(listings, locations)
    chosen_by_code = at_places(listings, places)
    heads = {loc.code: {"code": loc.code, "name": loc.name, "type": loc.type, "parent": loc.parent} for loc in locations}
    kept = frozenset(c for c, head in heads.items() if reuse is not None and reuse.fits(head, len(chosen_by_code[c])))
    rows = listings  # the listings of the locations built: each one's CSV record made once
    record_at = list(range(1, len(listings) + 1))  # each listing's record among ``records`` (by its place)
    if kept:
        wanted = sorted({i for code, at in places.items() if code not in kept for i in at})
        rows = [listings[i] for i in wanted]
        for n, i in enumerate(wanted, start=1):
            record_at[i] = n
    records = writers.records(rows)
    # each listing's text in a location file, from listings.json's, when the locations built hold at least as many
    # listings as it does (finding each listing's text in it took 0.9 s at 534k listings: a rerun that builds one
    # country's files has orjson write their listings instead); a kept location's file is taken, not built
    to_place = sum(len(at) for code, at in places.items() if code not in kept)
    texts = deeper_texts(listings_json) if to_place and to_place >= len(listings) else None
    del listings_json
    if texts is not None and len(texts) != len(listings):
        texts = None  # (not written as ``json_bytes`` writes a list of listings: each location's is written whole)
    take = reuse.take if reuse is not None else _nothing_taken
    for loc in locations:
        chosen, head = chosen_by_code[loc.code], heads[loc.code]
        paths = location_paths(loc.code)
        data: bytes | Taken | None = take(paths["json"]) if loc.code in kept else None
        if data is None and texts is not None:
            data = location_json(head, texts.texts(places[loc.code]))
        yield paths["json"], data if data is not None else json_bytes({"location": head, "count": len(chosen), "listings": chosen})
        data = take(paths["csv"]) if loc.code in kept else None
        if data is None and loc.code not in kept:  # (a location's records looked up by place, in C: by id() in a
            # generator, 1.4M look-ups took 2.7 s of a 535k-listing release)
            data = records[0] + b"".join(map(records.__getitem__, map(record_at.__getitem__, places[loc.code])))
        yield paths["csv"], data if data is not None else csv_bytes(chosen)  # (a kept location's file not taken: made here)
        index.append({**head, "count": len(chosen), **paths})
        yield from hsds_if_built()
    del records, record_at, rows, texts
    yield from hsds_if_built(held=False)
    yield "index.json", json_bytes({"schema_version": SCHEMA_VERSION, "locations": index})
    yield "schema/listing.schema.json", json_bytes(to_json_schema())
    yield TABLE_SCHEMA_PATH, json_bytes(to_table_schema())
    yield "datapackage.json", json_bytes(datapackage(sorted(str(x["csv"]) for x in index), sources))
    for item in preview.iter_preview_files(index, chosen_by_code, kept, take):
        yield item
        yield from hsds_if_built(held=False)
    yield from hsds_files


def _hsds_files(
    pieces: list[list[Listing]],
    keys: list[str],
    ready: dict[str, hsds.Part],
    building: dict[int, Future[hsds.Part] | None],
    names: dict[str, str],
    licences: list[str],
    sources: list[SourceMeta],
    hsds_made: dict[str, object] | None,
    known: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, bytes]]:
    """The HSDS package's files from its parts: those ``ready`` (the release before's; ``known``: their sha256, by key),
    those being built in ``building`` (taken out of it, so that their futures do not hold them), and the rest built
    here."""
    parts: list[hsds.Part] = []
    for i, (piece, key) in enumerate(zip(pieces, keys, strict=True)):
        if key in ready:
            parts.append(ready.pop(key))
            continue
        try:
            done = building.pop(i, None)
            parts.append(done.result() if done is not None else hsds.part_bodies(piece, names, csv_cell))
        except Exception:  # the worker died: built here (a bug in it raises again here)
            parts.append(hsds.part_bodies(piece, names, csv_cell))
    built = hsds.joined_files(parts, csv_cell, licences, source_entries(sources))
    if hsds_made is not None:
        hsds_made.update(hsds_record(keys, parts, built, known))
    del parts
    for rel in list(built):  # each let go of once written
        yield rel, built.pop(rel)


def _built_beside(build: Callable[[], dict[int, hsds.Part]], wanted: list[int]) -> dict[int, Future[hsds.Part]]:
    """``build()`` begun in a thread of its own (DuckDB lets go of the GIL), the future of each part it makes set when
    it ends; an error is each future's (the caller then builds the parts itself)."""
    futures: dict[int, Future[hsds.Part]] = {i: Future() for i in wanted}

    def run() -> None:
        try:
            parts = build()
        except BaseException as exc:  # (no future is left waiting)
            for f in futures.values():
                f.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for i, f in futures.items():
            part = parts.pop(i, None)
            if part is None:
                f.set_exception(LookupError(f"HSDS part {i} was not built"))
            else:
                f.set_result(part)

    threading.Thread(target=run, name="hsds-parts", daemon=True).start()
    return futures


def _part_args(piece: list[Listing], names: dict[str, str]) -> tuple[object, ...]:
    return orjson.dumps(piece), names, csv_cell


def part_keys(pieces: list[list[Listing]], names: dict[str, str], listings_json: bytes | None = None) -> list[str]:
    """What each HSDS part is built from (its listings and the locations' names), as a sha256: of the names, then of
    the part's listings as ``json_bytes`` writes them in a list (``piece_texts``).  ``listings_json``: the
    ``json_bytes`` of the listings the pieces were cut from, where their texts are found (at 534k listings, writing
    each part's listings again took 1 s of a rerun)."""
    named = orjson.dumps(names, option=orjson.OPT_SORT_KEYS)
    texts: list[bytes] | list[memoryview] | None = piece_texts(pieces, listings_json) if listings_json is not None else None
    if texts is None:
        texts = [json_bytes(piece)[len(OPENS) - 1 : len(CLOSED) - len(CLOSES)] if piece else b"" for piece in pieces]
    return [_parts_sha256((named, text)) for text in texts]  # (the names and the text not joined: 0.4 GB copied)


def piece_texts(pieces: list[list[Listing]], data: bytes) -> list[memoryview] | None:
    """Each piece's listings as ``data`` (``json_bytes`` of the pieces' listings, in order) holds them: from the
    first's opening brace to the last's closing one (the text ``json_bytes(piece)`` gives between its list's
    brackets and their line breaks).  A piece ends with its last listing's object, the first that follows its id's
    line (``"id"`` is a listing's key four spaces in; strings hold no line break).  None when ``data`` is not so."""
    if not data.startswith(OPENS) or not data.endswith(CLOSES):
        return None
    view, out, at, last_end = memoryview(data), [], len(OPENS) - 1, len(data) - len(CLOSES) + len(CLOSED)
    for piece in pieces:
        if not piece:
            out.append(view[at:at])
            continue
        found = data.find(b'\n    "id": ' + orjson.dumps(piece[-1].get("id")) + b",", at)
        if found < 0:
            return None
        cut = data.find(BETWEEN, found)
        end = cut + len(CLOSED) if cut >= 0 else last_end  # after the object's closing brace
        out.append(view[at:end])
        at = cut + len(BETWEEN) - 1 if cut >= 0 else len(data)  # the next one's opening brace (none after the last)
    return out if at >= last_end else None


def hsds_record(
    keys: list[str],
    parts: list[hsds.Part],
    files: Mapping[str, bytes],
    known: Mapping[str, str] | None = None,
    heads: list[int] | None = None,
) -> dict[str, object]:
    """Where each HSDS part is in the package's tables (``hsds/<table>``): the bytes of each table's head (header
    and taxonomy rows), then each part's key (``part_keys``), the bytes it gives each table, their sha256 taken
    together (``known``: those of parts just found to have it, by key, not hashed again), and the terms it uses.
    ``heads``: the sizes of the tables' heads, when ``files`` does not hold the tables."""
    known = known or {}
    tables = list(hsds_tables())
    if heads is None:
        heads = [len(files[f"hsds/{t}"]) - sum(len(bodies[t]) for bodies, _ in parts) for t in tables]
    return {
        "tables": tables,
        "heads": heads,
        "parts": [
            {
                "key": key,
                "bytes": [len(bodies[t]) for t in tables],
                "sha256": known.get(key) or _parts_sha256(bodies[t] for t in tables),
                "terms": {name: sorted(values) for name, values in sorted(terms.items())},
            }
            for key, (bodies, terms) in zip(keys, parts, strict=True)
        ],
    }


def _parts_sha256(bodies: Iterable[bytes | memoryview]) -> str:
    """The sha256 of the bodies taken together (hashed one after the other, not joined first)."""
    digest = hashlib.sha256()
    for body in bodies:
        digest.update(body)
    return digest.hexdigest()


def hsds_tables() -> list[str]:
    from schemas import hsds as m

    return list(m.table_columns())


def manifest(
    entries: list[dict[str, object]], release_id: str, generated_at: dt.datetime, previous: str | None, counts: dict[str, int]
) -> dict[str, object]:
    """``entries``: each file's ``file_entry``, in any order."""
    return {
        "schema_version": SCHEMA_VERSION,
        "release_id": release_id,
        "generated_at": _iso(generated_at),
        "previous_release": previous,
        "counts": counts,
        "files": sorted(entries, key=lambda e: str(e["path"])),
    }


def file_entry(path: str, data: bytes) -> dict[str, object]:
    return {"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# --- publishing (the edge) --------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    release_id: str
    path: Path
    previous: str | None
    counts: dict[str, int]
    #: the files taken as they were from the release before it (``Reusable``)
    reused: tuple[str, ...] = ()

    @property
    def locations_taken(self) -> list[str]:
        """The codes of the locations whose files were taken from the release before (not the other files taken)."""
        return sorted({rel.removeprefix("locations/").rsplit(".", 1)[0] for rel in self.reused if rel.startswith("locations/")})


def current_release(exports_dir: Path) -> str | None:
    link = exports_dir / "current"
    if link.is_symlink() and link.resolve().is_dir():
        return link.resolve().name
    return None


def new_release_id(releases: Path, now: dt.datetime) -> str:
    base = now.strftime("%Y%m%dT%H%M%SZ")
    rid, n = base, 1
    while (releases / rid).exists():
        n += 1
        rid = f"{base}-{n}"
    return rid


@dataclass(frozen=True)
class Verified:
    """What the current release held when it was verified and published: each file's sha256 by path, and its listings
    by id.  A file of a new release with the same bytes, or a listing equal to one of these, checked against
    schema files that have not changed either, passed then and is not checked again."""

    sha256: dict[str, str]
    #: its listings by id (``publish`` keeps only those equal to one of the new release, as that release's objects)
    listings: dict[str, Listing]
    #: the release's folder, whose CSV records passed Frictionless then (``curate.table_check``)
    folder: Path
    #: what ``BUILT_BY`` records of it (the code that built and checked it, where its HSDS parts are), when it names it
    built: Mapping[str, Any] | None = None
    #: the new release's listings not among ``listings`` (added or changed), when ``publish`` knows them without
    #: looking at every listing (``compared_in_warehouse``); None: they are those whose id ``listings`` does not hold
    fresh: list[Listing] | None = None

    @property
    def built_by(self) -> str | None:
        """The code that built and checked it (``builder``), when recorded."""
        return str(self.built["builder"]) if self.built is not None and "builder" in self.built else None

    @property
    def signed(self) -> Mapping[str, object]:
        """Each file's ``_signature`` as ``BUILT_BY`` recorded it once the release was checked, by path (``Reusable``)."""
        signed = self.built.get("signed") if self.built is not None else None
        return signed if isinstance(signed, dict) else {}


def verified_before(
    exports_dir: Path, listings: list[Listing] | None = None, data: bytes | None = None, by_id: bool = True
) -> Verified | None:
    """The current release as it was verified (None when there is none, or its files no longer match its manifest).

    ``listings``: its ``listings.json`` as already read (``previous_release``), not to parse it again; ``data``: the
    file's bytes, not to read them again; ``by_id``: False leaves its ``listings`` empty, for a caller that puts there
    the listings it finds equal to a new release's (``publish``: 534k listings by id took 0.15-0.18 s).
    """
    current = exports_dir / "current"
    sha256 = _manifest_sha256(current)
    if sha256 is None:
        return None
    try:
        data = (current / "listings.json").read_bytes() if data is None else data
        if hashlib.sha256(data).hexdigest() != sha256.get("listings.json"):
            return None
        listings = orjson.loads(data) if listings is None else listings
    except (OSError, ValueError, KeyError, TypeError):
        return None
    by = {str(x.get("id")): x for x in listings if isinstance(x, dict)} if by_id else {}
    return Verified(sha256, by, current.resolve(), _built(exports_dir))


def _verified_files(exports_dir: Path) -> Verified | None:
    """``verified_before`` without its listings, nor its ``listings.json`` read: for a new release compared with it in
    the warehouse (``compared_in_warehouse``), which found the listings it published there."""
    current = exports_dir / "current"
    sha256 = _manifest_sha256(current)
    return None if sha256 is None else Verified(sha256, {}, current.resolve(), _built(exports_dir))


def _manifest_sha256(folder: Path) -> dict[str, str] | None:
    """The sha256 of each file a release's manifest names, by path (None when it cannot be read)."""
    try:
        man = orjson.loads((folder / "manifest.json").read_bytes())
        return {str(e["path"]): str(e["sha256"]) for e in man["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _built(exports_dir: Path) -> dict[str, Any] | None:
    """What ``BUILT_BY`` records of the current release (None when it names another, or cannot be read)."""
    built = None
    with contextlib.suppress(OSError, ValueError):
        built = orjson.loads((exports_dir / BUILT_BY).read_bytes())
    if not isinstance(built, dict) or built.get("release") != current_release(exports_dir):
        return None
    return built


@dataclass(frozen=True)
class Compared:
    """A new release's listings (``out_listings``) compared in the warehouse with the current release's
    (``compared_in_warehouse``): only the listings that differ are made Python objects, and the release before is
    neither read nor parsed (at 534k listings, 4 s of a rerun's release went to parsing it and comparing the two)."""

    #: the current release these are compared with
    release: str
    #: its listings that are not in the new release, or differ from the new release's in some field
    before: list[Listing]
    #: the ids of the listings added, removed or changed in some field (by their digests: some may be equal)
    different: frozenset[str]
    #: how many listings it held
    count: int
    #: its locations (``index.json``), and how many listings each held
    locations: list[Location]
    counts: dict[str, int]


#: what ``compared_in_warehouse`` compares: the listing's columns but its id, hashed together by DuckDB (a 64-bit
#: hash: a listing changed since is taken for unchanged with a chance of 1 in 2^64)
DIGEST_SQL = f"hash({', '.join(n for n in LISTING_FIELDS if n != 'id')})"


def remember_release(con: duckdb.DuckDBPyConnection, release: Release) -> None:
    """Record in the warehouse which release was just published from ``out_listings`` (``published_release``: its
    id, its listings.json's sha256, this code's ``builder`` and DuckDB's version, and that ``out_listings`` holds its
    listings until the next build keeps them as ``published_listings``): the next run's ``compared_in_warehouse``."""
    sha256 = (_manifest_sha256(release.path) or {}).get("listings.json")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM published_release")
        con.execute("DROP TABLE IF EXISTS published_listings")  # (the release before's)
        if sha256 is not None:
            con.execute(
                "INSERT INTO published_release (release_id, listings_sha256, builder, duckdb, listed) VALUES (?, ?, ?, ?, true)",
                [release.release_id, sha256, builder(), duckdb.__version__],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def compared_in_warehouse(con: duckdb.DuckDBPyConnection, exports_dir: Path) -> Compared | None:
    """``out_listings`` against the current release, when the warehouse holds that release's listings
    (``remember_release``) as this same code and DuckDB version made them and its files still match its manifest;
    else None (``publish`` then reads the release before and compares its listings one by one).  Listings whose
    digests are equal are taken for equal; those that differ are compared field by field by ``publish``."""
    current = current_release(exports_dir)
    try:
        remembered = con.execute("SELECT release_id, listings_sha256, builder, duckdb, listed FROM published_release").fetchall()
    except duckdb.Error:
        return None
    if current is None or len(remembered) != 1 or remembered[0][2:4] != (builder(), duckdb.__version__):
        return None
    published = "out_listings" if remembered[0][4] else "published_listings"  # (no build since: the same listings)
    folder = exports_dir / "current"
    sha256 = _manifest_sha256(folder)
    if sha256 is None or remembered[0][:2] != (current, sha256.get("listings.json")):
        return None
    try:  # its locations and their counts, as its index.json (its manifest's) states them
        data = (folder / "index.json").read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256.get("index.json"):
            return None
        index = orjson.loads(data)["locations"]
        locations = [indexed(x) for x in index]
        counts = {str(x["code"]): int(x["count"]) for x in index}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        ids = con.execute("SELECT count(*), count(id), count(DISTINCT id) FROM out_listings").fetchall()[0]
        if len(set(ids)) != 1:
            return None  # (a listing without an id, or two with one: compared one by one)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE release_different AS
            SELECT coalesce(n.id, o.id) AS id
            FROM (SELECT id, {DIGEST_SQL} AS digest FROM out_listings) n
            FULL JOIN (SELECT id, {DIGEST_SQL} AS digest FROM {published}) o ON n.id = o.id
            WHERE n.id IS NULL OR o.id IS NULL OR n.digest <> o.digest""")
        different = frozenset(str(r[0]) for r in con.execute("SELECT id FROM release_different").fetchall())
        count = int(con.execute(f"SELECT count(*) FROM {published}").fetchall()[0][0])
        cols = ", ".join(LISTING_FIELDS)
        differing = f"SELECT {cols} FROM {published} SEMI JOIN release_different USING (id) ORDER BY kind, name, id"
        before = _listings_read(con, differing)
    except duckdb.Error:
        return None
    return Compared(current, before, different, count, locations, counts)


#: beside ``releases/``: the current release and the code that built it (``builder``), written once it is current
BUILT_BY = ".built-by.json"
#: the modules whose code shapes a location's files (JSON, CSV, preview script) and the HSDS parts
BUILDERS = (
    "curate.export", "curate.patched", "curate.preview", "curate.hsds", "schemas.fields", "schemas.generate", "schemas.hsds",
    "schemas.vocabularies",
)  # fmt: skip


@functools.cache
def builder() -> str:
    """A fingerprint of the code that builds a location's files and the HSDS parts (``BUILDERS``' source, the HSDS
    descriptor, orjson's, langcodes' and Python's versions): nothing a release built by other code made is taken into a
    new release."""
    from schemas import hsds as m

    langcodes = importlib.metadata.version("langcodes")
    versions = f"{SCHEMA_VERSION} orjson {orjson.__version__} langcodes {langcodes} python {platform.python_version()}"
    digest = hashlib.sha256(versions.encode() + orjson.dumps(m.descriptor(), option=orjson.OPT_SORT_KEYS))
    for name in BUILDERS:
        digest.update(Path(str(importlib.import_module(name).__file__)).read_bytes())
    return digest.hexdigest()


def _nothing_taken(rel: str) -> Taken | None:
    return None


@dataclass(frozen=True)
class Taken:
    """A file of the release before, taken as it is (``Reusable.take``): linked into the new release, not read into
    memory and written again (at 535k listings, the 45 files a one-country rerun takes were 1.4 GB).  ``stat``: the
    file's ``_signature`` when its bytes were found to be ``sha256``'s: a file with it is the one hashed, and is not
    hashed again when the release is checked (``verify``)."""

    path: Path
    sha256: str
    stat: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.stat[2]


def _hashed(path: Path) -> tuple[str, tuple[int, ...]] | None:
    """A file's sha256 (read a piece at a time) and its ``_signature``; None when it changed while it was hashed, or
    cannot be read."""
    try:
        seen = _signature(path)
        with path.open("rb") as fh:
            sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        return (sha256, seen) if _signature(path) == seen else None
    except OSError:
        return None


def _signature(path: Path) -> tuple[int, ...]:
    """What changes when a file's bytes are written: its device, inode, size (third) and modification time.  (Not its
    change time: linking the file changes that.)"""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Reusable:
    """The location files (JSON, CSV and preview script) of the verified release before this one that a new release
    takes as they are: those of every location none of whose listings was added, removed or changed (``codes``),
    when that release was built by this same code.  A location's files are taken only when its entry in that
    release's ``index.json`` is the one the new release gives it (name, type, parent, count), and each file only
    when its bytes still match that release's manifest; otherwise they are built.  So are the HSDS parts built from
    the same listings (``hsds_parts``).

    A file whose ``_signature`` is the one ``BUILT_BY`` recorded for it once that release was checked (``signed``)
    holds the bytes then hashed, and is not hashed again (as a file written in a run is not read back to be checked:
    its bytes changed only if its size or modification time did, or it was replaced); any other is hashed."""

    folder: Path
    sha256: dict[str, str]
    #: that release's ``index.json`` entries by code
    index: dict[str, object]
    codes: frozenset[str]
    #: the files taken, in order
    taken: list[str] = field(default_factory=list)
    #: where that release's HSDS parts are in its tables (``hsds_record``), when recorded
    hsds_at: Mapping[str, Any] | None = None
    #: the files ``take`` may be asked for, being hashed ahead in a thread (``hash_ahead``), by path
    ahead: dict[str, Future[tuple[str, tuple[int, ...]] | None]] = field(default_factory=dict)
    #: each file's ``_signature`` as ``BUILT_BY`` recorded it once that release was checked, by path
    signed: Mapping[str, object] = field(default_factory=dict)
    #: the sha256 of each HSDS part ``hsds_parts`` gave (found to be the one recorded), by key
    hsds_sha256: dict[str, str] = field(default_factory=dict)

    def hash_ahead(self, executor: Executor) -> None:
        """Hash the files of ``codes``' locations (JSON, CSV, preview script) in ``executor`` (a thread), in the order
        ``take`` asks for them, while the rest of the release is built: hashlib lets go of the GIL (at 534k listings,
        a one-country rerun takes 45 files, 1.4 GB, whose hashing took this process 1.5 s).  Not those ``signed``."""
        codes = sorted(self.codes, key=lambda c: (c != "WW", c))  # (``locations_of``'s order)
        for rel in [path for c in codes for path in location_paths(c).values()] + [preview.script_path(c) for c in codes]:
            if self._signed_hash(rel) is None:
                self.ahead[rel] = executor.submit(_hashed, self.folder / rel)

    def _signed_hash(self, rel: str) -> tuple[str, tuple[int, ...]] | None:
        """The file's sha256 (its manifest's) and ``_signature``, when it has the signature recorded for it; else None."""
        sha256, signed = self.sha256.get(rel), self.signed.get(rel)
        if sha256 is None or not isinstance(signed, list):
            return None
        try:
            seen = _signature(self.folder / rel)
        except OSError:
            return None
        return (sha256, seen) if list(seen) == signed else None

    def fits(self, head: Mapping[str, object], count: int) -> bool:
        code = str(head["code"])
        if code not in self.codes:
            return False
        return self.index.get(code) == {**head, "count": count, **location_paths(code)}

    def take(self, rel: str) -> Taken | None:
        """The file in that release, when its bytes still match its manifest (read a piece at a time, not held; or
        hashed ahead) and it has not changed since they were hashed."""
        path = self.folder / rel
        ahead = self.ahead.pop(rel, None)
        try:
            hashed = ahead.result() if ahead is not None else self._signed_hash(rel) or _hashed(path)
            if hashed is None or hashed[0] != self.sha256.get(rel) or _signature(path) != hashed[1]:
                return None
        except OSError:
            return None
        self.taken.append(rel)
        return Taken(path, *hashed)

    def hsds_parts(self, keys: list[str]) -> dict[str, hsds.Part]:
        """The HSDS parts of ``keys`` that release built too (``hsds_record``), by key, each taken from its tables
        when every table still matches that release's manifest and the part's bytes their sha256."""
        try:
            record = self.hsds_at or {}
            tables, ends = list(record.get("tables", ())), [int(n) for n in record.get("heads", ())]
            if not tables or tables != hsds_tables() or len(ends) != len(tables):
                return {}
            wanted, where = set(keys), {}
            for part in record.get("parts", ()):
                if part["key"] in wanted:
                    where[str(part["key"])] = (part, list(ends))
                ends = [end + int(n) for end, n in zip(ends, part["bytes"], strict=True)]
            if not where:
                return {}
            bodies: dict[str, dict[str, memoryview]] = {key: {} for key in where}
            for t, table in enumerate(tables):
                signed = self._signed_hash(f"hsds/{table}")  # (a table with its recorded signature is not hashed)
                data = (self.folder / "hsds" / table).read_bytes()
                if signed is not None and self._signed_hash(f"hsds/{table}") != signed:
                    signed = None  # (changed while it was read)
                if len(data) != ends[t] or (signed is None and hashlib.sha256(data).hexdigest() != self.sha256.get(f"hsds/{table}")):
                    return {}
                view = memoryview(data)  # (each part's bytes a view of the table read, not a copy: 0.35 GB at 534k listings)
                for key, (part, starts) in where.items():
                    bodies[key][table] = view[starts[t] : starts[t] + int(part["bytes"][t])]
                del data, view
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}
        out: dict[str, hsds.Part] = {}
        for key, (part, _) in where.items():
            if _parts_sha256(bodies[key][t] for t in tables) == part["sha256"]:
                out[key] = bodies[key], {str(name): set(values) for name, values in part["terms"].items()}
                self.hsds_sha256[key] = str(part["sha256"])
        return out


def reusable(verified: Verified | None, before: list[Listing] | None, listings: list[Listing]) -> Reusable | None:
    """What a new release of ``listings`` can take from the current release (``Reusable``), or None.

    ``verified``: the current release's, its listings already narrowed to those equal to one of ``listings``;
    ``before``: the current release's listings.  A location is left out when a listing it holds, or held, is not
    among those equal ones (added, removed or changed, in any field); none is taken when the listings kept are not
    in the order they were."""
    if before is None:
        return None

    def others() -> list[Listing] | None:
        same = verified.listings if verified is not None else {}  # by id, the listings of the new release equal to one of ``before``
        # one pass over each release's listings: the ids kept, in order, and the listings that are not (added,
        # removed or changed), whose locations are touched (at 534k listings, 0.54-0.56 s against 0.95-1.15 s for four)
        kept_before: list[str] = []
        kept_after: list[str] = []
        out: list[Listing] = []
        for x in before:
            lid = str(x["id"])
            if lid in same:
                kept_before.append(lid)
            else:
                out.append(x)
        for x in listings:
            lid = str(x["id"])
            if same.get(lid) is x:
                kept_after.append(lid)
            else:
                out.append(x)
        # the listings kept in another order: a location's file holds them in the release's order
        return out if kept_before == kept_after else None

    return _reusable(verified, others)


def _reusable(verified: Verified | None, others: Callable[[], list[Listing] | None]) -> Reusable | None:
    """``reusable``, the locations touched being those serving, or served by, the listings ``others`` gives (those of
    either release not equal to one of the other's; None: none is taken)."""
    if verified is None or verified.built is None or verified.built_by != builder():
        return None  # (its files are taken only when ``BUILT_BY`` names it and this same code)
    try:
        data = (verified.folder / "index.json").read_bytes()
        if hashlib.sha256(data).hexdigest() != verified.sha256.get("index.json"):
            return None
        index = {str(x["code"]): x for x in orjson.loads(data)["locations"]}
        # placed among that release's locations: a location it did not have is built (``fits``)
        served = _placing([indexed(x) for x in index.values()])
        changed = others()
        if changed is None:
            return None
        touched: set[str] = set()
        for x in changed:
            touched |= served(x["areas"])  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    at = verified.built.get("hsds") if isinstance(verified.built.get("hsds"), dict) else None
    return Reusable(verified.folder, verified.sha256, index, frozenset(index.keys() - touched), hsds_at=at, signed=verified.signed)  # type: ignore[arg-type]


def unchanged_files(man: dict[str, object], verified: Verified | None) -> frozenset[str]:
    """The files of a release (by its manifest) that are byte for byte those of the verified release before it."""
    if verified is None:
        return frozenset()
    return frozenset(e["path"] for e in man["files"] if verified.sha256.get(e["path"]) == e["sha256"])  # type: ignore[attr-defined]


def validate_against_schemas(
    folder: Path,
    verified: Verified | None = None,
    unchanged: frozenset[str] = frozenset(),
    listings: list[Listing] | None = None,
    suspect: frozenset[str] | None = None,
    pool: Executor | None = None,
    let_go: Callable[[], None] | None = None,
    hsds_check: Future[list[str] | None] | None = None,
) -> list[str]:
    """Problems of a written release against its own schemas: every listing against
    ``schema/listing.schema.json`` (JSON Schema 2020-12), every CSV against ``datapackage.json`` (Frictionless),
    and ``hsds/`` against the HSDS 3.0 descriptor.

    With the release before it (``verified``) and this release's files that are byte for byte that release's
    (``unchanged``), what passed then against the same schema files is not checked again: listings equal to one
    of ``verified``, and the CSV records that release held (``curate.table_check``: files among ``unchanged`` are
    not examined unless they reference one that changed).  ``listings``: ``listings.json`` as already read;
    ``suspect``: the only location files to compare with it (``rebuilt_differently``); ``pool``: worker processes
    for Frictionless; ``let_go``: called once the listings are no longer needed, before the CSV files are read;
    ``hsds_check``: the HSDS package's check, already started in ``pool`` (``hsds_check_started``).
    """
    import jsonschema_rs  # JSON Schema 2020-12 with format checks, 70 times the pure-Python jsonschema's speed

    hsds_package, _, _, previous, sha256 = hsds_args = hsds_check_args(folder, verified, unchanged)
    # the HSDS package is checked by a worker process while this one checks the listings (at 535k listings, 28 s
    # against 5 s); its Frictionless pieces are then checked in that worker too
    elsewhere = hsds_check if hsds_check is not None else hsds_check_started(hsds_args, pool)
    # so are the location files, by a worker, when the package's check has ended (its worker's memory let go of:
    # beside it, a first run's peak with the workers rose to 4.81 GB at 1M rows): at 534k listings, 2.1 s of this
    # process, when it is the last one at work
    located = None
    if pool is not None and (elsewhere is None or elsewhere.done()):
        located = table_check.submitted(
            pool, table_check.locations_checked_apart, folder / "datapackage.json", "", unchanged, previous, sha256
        )
    problems: list[str] = []
    schema = orjson.loads((folder / "schema" / "listing.schema.json").read_bytes())
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    listings = _listings(folder) if listings is None else listings
    passed = verified.listings if verified is not None and "schema/listing.schema.json" in unchanged else {}
    fresh = verified.fresh if passed and verified is not None and verified.fresh is not None else None
    for listing in listings if fresh is None else fresh:  # (at 534k listings, looking at each took 0.66 s)
        if passed and passed.get(str(listing.get("id"))) == listing:
            continue
        for error in validator.iter_errors(listing):
            message, value = error.message, error.instance
            if isinstance(value, str) and len(value) > 60:  # the message quotes the whole value
                message = message.replace(value, value[:60] + "...")
            problems.append(f"listings.json: {listing.get('id')}: {message}")
    compared = [p for p in sorted((folder / "locations").glob("*.json")) if suspect is None or f"locations/{p.name}" in suspect]
    by_id = {str(x.get("id")): x for x in listings} if compared else {}
    for path in compared:  # each listing there is one of listings.json, unchanged
        for listing in orjson.loads(path.read_bytes())["listings"]:
            if by_id.get(str(listing.get("id"))) != listing:
                problems.append(f"locations/{path.name}: {listing.get('id')} differs from the listing in listings.json")
    del by_id, listings, passed
    if let_go is not None:
        let_go()
    # else the location files while the worker checks the HSDS package: the listings are let go of by now (at 535k
    # listings this process holds 0.7 GB, then 1.5 GB with the location files' records, beside the worker's 1.3 GB)
    found_there = None
    with contextlib.suppress(Exception):  # the worker died: checked here (a bug in the check raises again here)
        found_there = located.result() if located is not None else None
    problems += (
        found_there
        if found_there is not None
        else table_check.check_package(folder / "datapackage.json", "", unchanged, previous, sha256, pool)
    )
    in_hsds: list[str] = []
    if hsds_package.is_file():
        found = None
        with contextlib.suppress(Exception):  # the worker died: checked here (a bug in the check raises again here)
            found = elsewhere.result() if elsewhere is not None else None
        in_hsds = found if found is not None else table_check.check_package(*hsds_args, pool)
    return problems + in_hsds


#: ``table_check.check_package``'s arguments for a release's HSDS package: its descriptor, its label, the files
#: unchanged since the verified release before it, that release's folder and its files' sha256
HsdsCheckArgs = tuple[Path, str, frozenset[str], Path | None, dict[str, str] | None]


def hsds_check_args(folder: Path, verified: Verified | None, unchanged: frozenset[str]) -> HsdsCheckArgs:
    previous, sha256 = (verified.folder, verified.sha256) if verified is not None else (None, None)
    return folder / "hsds" / "datapackage.json", "hsds/", unchanged, previous, sha256


def hsds_check_started(args: HsdsCheckArgs, pool: Executor | None) -> Future[list[str] | None] | None:
    """The check of a release's HSDS package (``table_check.checked_apart``), started in a worker of ``pool``; None
    when there is no package or no worker to take it (``validate_against_schemas`` then checks it itself)."""
    return table_check.submitted(pool, table_check.checked_apart, *args) if args[0].is_file() else None


def hsds_check_early(
    folder: Path, verified: Verified | None, entries: list[dict[str, object]], pool: Executor | None
) -> Future[list[str] | None] | None:
    """``hsds_check_started`` for a release's HSDS package once its files (``entries``: each one's ``file_entry``)
    are written, before the rest of the release is: which of them are unchanged since ``verified`` is known from
    their entries (the package's check looks only at its own files)."""
    same = verified.sha256 if verified is not None else {}
    unchanged = frozenset(str(e["path"]) for e in entries if same.get(str(e["path"])) == e["sha256"])
    return hsds_check_started(hsds_check_args(folder, verified, unchanged), pool)


#: listings from which a release is built and checked with worker processes (below, starting them costs more)
PARALLEL_MIN = 10_000


MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
URL_FIELDS = tuple(f.name for f in FIELDS if f.listing and f.pattern == HTTP_URL)
TEXT_FIELDS = tuple(f.name for f in FIELDS if f.listing and f.type == "string" and f.name not in URL_FIELDS)


HTTP = re.compile(r"https?://[^\s]+$")
#: either, in one pass
UNSAFE = re.compile(f"{MARKUP.pattern}|{CONTROL.pattern}")


def content_problems(listings: list[Listing]) -> list[str]:
    """Safe content (CONTRACT section 4): text fields plain (no markup, entities or control characters), URLs http(s).
    Staging guarantees this; a release that breaks it anyway is not published.

    A listing's text fields are searched together first, for either pattern at once, joined by line breaks (which
    neither pattern matches, nor lets an entity span two fields): only a listing where something is found is
    searched field by field (at 534k listings, 0.86 s against 1.15 s)."""
    problems = []
    texts_of = operator.itemgetter(*TEXT_FIELDS)
    for x in listings:
        try:
            joined = "\n".join([v for v in texts_of(x) if isinstance(v, str)])
        except (KeyError, TypeError):  # (a listing without some field: searched field by field)
            joined = None
        if joined is None or UNSAFE.search(joined):
            for name in TEXT_FIELDS:
                value = x.get(name)
                if isinstance(value, str) and (MARKUP.search(value) or CONTROL.search(value)):
                    problems.append(f"{x.get('id')}: {name} is not plain text: {value[:60]!r}")
        for name in URL_FIELDS:
            value = x.get(name)
            if value is not None and not (isinstance(value, str) and HTTP.match(value)):
                problems.append(f"{x.get('id')}: {name} is not an http(s) URL: {str(value)[:60]!r}")
    return problems


def _listings(folder: Path) -> list[Listing]:
    listings: list[Listing] = orjson.loads((folder / "listings.json").read_bytes())
    return listings


def count_problems(
    folder: Path, man: dict[str, object], listings: list[Listing] | None = None, suspect: frozenset[str] | None = None
) -> list[str]:
    """The counts a release states (manifest, index, location files) against the listings it holds (``listings``:
    ``listings.json`` as already read).  ``suspect``: the only location files to read (``rebuilt_differently``)."""
    problems = []
    listings = _listings(folder) if listings is None else listings
    counts: dict[str, int] = man["counts"]  # type: ignore[assignment]
    if counts.get("listings") != len(listings):
        problems.append(f"manifest counts {counts.get('listings')} listings, listings.json holds {len(listings)}")
    index = orjson.loads((folder / "index.json").read_bytes())["locations"]
    if counts.get("locations") != len(index):
        problems.append(f"manifest counts {counts.get('locations')} locations, index.json names {len(index)}")
    for loc in index:
        if suspect is not None and loc["json"] not in suspect:
            continue
        doc = orjson.loads((folder / loc["json"]).read_bytes())
        if not loc["count"] == doc["count"] == len(doc["listings"]):
            problems.append(f"{loc['json']}: counts disagree ({loc['count']}, {doc['count']}, {len(doc['listings'])} listings)")
    return problems


@collection_paused()
def verify(
    folder: Path,
    man: dict[str, object],
    verified: Verified | None = None,
    pool: Executor | None = None,
    written_from: list[Listing] | None = None,
    let_go: Callable[[], None] | None = None,
    hsds_check: Future[list[str] | None] | None = None,
    known: Mapping[str, tuple[int, ...]] | None = None,
) -> list[str]:
    """Problems of a written release: files against the manifest (sizes, checksums), counts, safe content, contents
    against its schemas (what ``verified``, the release before it, held already is not checked against the schemas
    again, nor for safe content when this same code built it).

    ``written_from``: the listings ``iter_release_files`` built the release from, whose bytes the manifest was made
    from (``publish``): once the files match the manifest, parsing ``listings.json`` would give these again (1.2 s
    and a second copy of every listing at 53k listings), so the checks take them, and the location files are what
    ``rebuilt_differently`` would build (8 s at 535k listings), so none is compared listing by listing.  ``let_go``:
    ``validate_against_schemas``'s.  ``hsds_check``: the HSDS package's check, started while the release was written
    (``hsds_check_early``).  ``known``: the files whose bytes this run hashed as it wrote them (their manifest entries),
    or found to be the release before's manifest's as it linked them (``Taken``), each with the ``_signature`` it
    had then, by path: one that still has it is not read and hashed again."""
    unchanged = unchanged_files(man, verified)
    # else the HSDS package's check (the longest) starts in a worker first, while this process reads every file
    # against the manifest (3.6-5.4 s at 535k listings); any problem found here fails the release all the same
    if hsds_check is None:
        hsds_check = hsds_check_started(hsds_check_args(folder, verified, unchanged), pool)
    if written_from is None:  # (the checks below read the files: a file that is not the manifest's is found first)
        problems = _manifest_problems(folder, man, known)
        return problems or _content_problems(folder, man, verified, pool, None, let_go, hsds_check, unchanged)
    # else the files not ``known`` (none, unless one changed since it was hashed or was copied) are hashed in a thread
    # (hashlib lets go of the GIL) while the listings this process built them from are checked; a file that is not
    # the manifest's is the release's problem
    with ThreadPoolExecutor(1) as hashing:
        hashed = hashing.submit(_manifest_problems, folder, man, known)
        try:
            problems = _content_problems(folder, man, verified, pool, written_from, let_go, hsds_check, unchanged)
        except Exception:
            if hashed.result():
                return hashed.result()
            raise
    return hashed.result() or problems


def _manifest_problems(folder: Path, man: dict[str, object], known: Mapping[str, tuple[int, ...]] | None = None) -> list[str]:
    """The files of a release that are missing or whose bytes are not those its manifest names (``verify``'s
    ``known``: not hashed again while they have the signature, and so the size, they had when they were hashed)."""
    problems = []
    known = known or {}
    for entry in man["files"]:  # type: ignore[attr-defined]
        path = folder / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif entry["path"] in known and _signature(path) == known[entry["path"]] and known[entry["path"]][2] == entry["bytes"]:
            continue  # the file hashed as it was written or taken, as it was then
        elif not _matches(path, entry["bytes"], entry["sha256"]):
            problems.append(f"{entry['path']} does not match the manifest")
    return problems


def _content_problems(
    folder: Path,
    man: dict[str, object],
    verified: Verified | None,
    pool: Executor | None,
    written_from: list[Listing] | None,
    let_go: Callable[[], None] | None,
    hsds_check: Future[list[str] | None] | None,
    unchanged: frozenset[str],
) -> list[str]:
    """``verify``'s checks of what a release holds, once its files are known to be its manifest's (or are being hashed
    beside, when they are built from ``written_from``)."""
    listings = _listings(folder) if written_from is None else written_from  # read once, for every check below
    # files that match a manifest made from what ``iter_release_files`` built from these listings are what it builds
    suspect = frozenset() if written_from is not None else rebuilt_differently(folder, listings)
    # the listings equal to one that passed then, with this same code (``written_from``'s own objects), are not checked again
    same = verified.listings if verified is not None and verified.built_by == builder() and written_from is not None else {}
    return (
        count_problems(folder, man, listings, suspect)
        or content_problems(_fresh(listings, same, verified.fresh if verified is not None else None) if same else listings)
        or validate_against_schemas(folder, verified, unchanged, listings, suspect, pool, let_go, hsds_check)
    )


def _fresh(listings: list[Listing], same: dict[str, Listing], fresh: list[Listing] | None) -> list[Listing]:
    """The listings not among ``same`` (by id, as the same objects): ``fresh`` when known (``Verified.fresh``)."""
    return fresh if fresh is not None else [x for x in listings if same.get(str(x.get("id"))) is not x]


def _matches(path: Path, size: int, sha256: str) -> bool:
    """Whether the file holds ``size`` bytes whose sha256 is ``sha256`` (read a piece at a time: the file is not
    held, beside the worker checking the HSDS package)."""
    if path.stat().st_size != size:
        return False
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest() == sha256


def rebuilt_differently(folder: Path, listings: list[Listing]) -> frozenset[str] | None:
    """The location JSON files (``index.json``'s paths) that are not byte for byte what ``listings`` (listings.json, as
    written) give for their location: only these can hold a wrong count or a listing unlike listings.json's, and only
    these are read and compared listing by listing.  None (compare them all) when index.json cannot be read."""
    try:
        index = orjson.loads((folder / "index.json").read_bytes())["locations"]
        locations = [indexed(x) for x in index]
        paths = {str(x["code"]): str(x["json"]) for x in index}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = {f"locations/{p.name}" for p in (folder / "locations").glob("*.json")} - set(paths.values())  # not in the index
    by_code = {x.code: x for x in locations}
    for code, chosen in listings_by_location(listings, locations).items():
        loc = by_code[code]
        head = {"code": loc.code, "name": loc.name, "type": loc.type, "parent": loc.parent}
        try:
            same = (folder / paths[code]).read_bytes() == json_bytes({"location": head, "count": len(chosen), "listings": chosen})
        except OSError:
            same = False
        if not same:
            out.add(paths[code])
    return frozenset(out)


def previous_release(
    exports_dir: Path, after: list[Listing] | None = None, after_data: bytes | None = None, by_id: bool = True
) -> tuple[list[Listing] | None, Verified | None]:
    """The listings of the current release (None when there is none, or it cannot be read), and what it verified
    (``verified_before``, its ``by_id``), with ``listings.json`` read once.  ``after``: the new release's listings,
    ``after_data`` its ``listings.json``: the listings written as one of them are that one (``listings_against``)."""
    try:
        data = (exports_dir / "current" / "listings.json").read_bytes()
        listings = listings_from_json(data) if after is None or after_data is None else listings_against(data, after, after_data)
    except (OSError, ValueError):
        return None, None
    if not isinstance(listings, list):
        return None, None
    return listings, verified_before(exports_dir, listings, data, by_id)


#: the steps of ``publish`` a checkpoint is called at (the SIGKILL tests stop a real run at each)
STEPS = ("start", "writing", "written", "verified", "renamed", "linked", "switched")


def pause_at(step_to_pause: str, marker_dir: Path, seconds: float = 120.0) -> Callable[[str], None]:
    """A checkpoint that, at ``step_to_pause``, writes ``<marker_dir>/.paused-<step>`` and sleeps (a test hook:
    ``CURATE_PAUSE_AT``; a test then kills the process there)."""

    def checkpoint(step: str) -> None:
        if step == step_to_pause:
            (marker_dir / f".paused-{step}").write_text(str(os.getpid()), encoding="utf-8")
            time.sleep(seconds)

    return checkpoint


def no_checkpoint(step: str) -> None:
    return None


@dataclass(frozen=True)
class Guard:
    """The mass-removal guard: hold a release removing more than ``share`` (of all, or of a location's listings where
    at least ``minimum`` would go), unless ``allow`` (``--allow-mass-removal``)."""

    share: float = 0.2
    minimum: int = 5
    allow: bool = False


@collection_paused()  # a rerun's 535k previous listings parsed beside the new ones: 7 s instead of 2.4 s
def publish(
    listings: list[Listing],
    exports_dir: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    sources: list[SourceMeta] | None = None,
    guard: Guard | None = None,
    checkpoint: Callable[[str], None] = no_checkpoint,
    let_go_of_listings: bool = False,
    writers: Writers = Writers(),
    compared: Compared | None = None,
) -> Release:
    """Write a release, check it, switch ``current`` to it atomically, and keep the newest ``keep``.

    Raises ``ReleaseHeld`` (nothing written, ``current`` untouched) when the guard finds a mass removal.
    ``let_go_of_listings``: empty ``listings`` once they are checked, before the release's CSV files are (the caller
    has no more use for them): at 535k listings, 1.4 GB is then not held beside the worker checking the HSDS files.
    ``writers``: ``iter_release_files``'; ``listings.parquet`` is built by a thread of its own from the start, beside
    the comparison with the release before (DuckDB and Arrow let go of the GIL: 1.8 s of a 534k-listing rerun); the
    files a rerun takes from the release before are hashed by another (``Reusable.hash_ahead``).  ``compared``:
    ``listings`` compared in the warehouse with the current release's (``compared_in_warehouse``), which is then
    not read (ignored when it is of another release).
    """
    # (a release held or failing waits for the parquet here: its connection is the caller's)
    # ahead: ``Reusable.hash_ahead``'s; flushing: each file written is flushed to disk while the rest is built and checked
    with ThreadPoolExecutor(1) as early, ThreadPoolExecutor(1) as ahead, ThreadPoolExecutor(1) as flushing:
        parquet = early.submit(writers.parquet, listings)
        try:
            return _publish(listings, exports_dir, now, keep, extra_counts, sources, guard, checkpoint, let_go_of_listings,
                            replace(writers, parquet=lambda _: parquet.result()), ahead, compared, flushing)  # fmt: skip
        finally:
            ahead.shutdown(cancel_futures=True)  # (the files not taken after all are not hashed)
            flushing.shutdown(cancel_futures=True)  # (a release that failed is not flushed; one published already was)


def _publish(
    listings: list[Listing],
    exports_dir: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    sources: list[SourceMeta] | None,
    guard: Guard | None,
    checkpoint: Callable[[str], None],
    let_go_of_listings: bool,
    writers: Writers,
    ahead: Executor,
    compared: Compared | None = None,
    flushing: Executor | None = None,
) -> Release:
    guard = guard or Guard()
    releases, previous, release_id = _begun(exports_dir, now)
    equal: dict[str, Listing] = {}  # the listings equal to one of the release before's, by id
    listings_json = json_bytes(listings)  # (compared with the release before's by ``listings_against``), then written
    compared_here = False  # (whether this release was compared in the warehouse, below)
    if compared is not None and previous is not None and compared.release == previous:
        compared_here = True
        # only the listings whose digests differ are compared (those of the release before made Python objects)
        later: list[Listing] = []
        for x in listings:  # (one pass: the others are equal)
            if (lid := str(x["id"])) in compared.different:
                later.append(x)
            else:
                equal[lid] = x
        made_changes = changes_between(compared.before, later, equal)
        unequal = [x for x in compared.before if str(x["id"]) not in equal]
        later_by_id = {lid: x for x in later if (lid := str(x["id"])) not in equal}
        placed = (compared.locations, compared.counts)
        removals = _removals(compared.count, unequal, later_by_id, lambda: placed, guard.share, guard.minimum) if compared.count else []
        if removals and not guard.allow:
            raise ReleaseHeld(release_id, removals, previous, guard.share, guard.minimum)
        # (what the files list, not its listings: those equal to one of this release's are put there)
        verified = _verified_files(exports_dir)
        if verified is not None:
            verified = replace(verified, listings=equal, fresh=list(later_by_id.values()))
        # the listings kept are in the order they were: this same code sorted them (``remember_release``'s ``builder``)
        reuse = _reusable(verified, lambda: [*unequal, *later_by_id.values()])
        del later, unequal, later_by_id
    else:
        # (what it verified holds none of its listings: those equal to one of this release's are put there below)
        before, verified = previous_release(exports_dir, listings, listings_json, by_id=False) if previous else (None, None)
        made_changes = changes_between(before, listings, equal)
        removals = mass_removals(before, listings, guard.share, guard.minimum, equal)
        if removals and not guard.allow:
            raise ReleaseHeld(release_id, removals, previous, guard.share, guard.minimum)
        if verified is not None:  # what passed then, as the equal listings of this release (the same objects)
            verified = replace(verified, listings=equal)
        reuse = reusable(verified, before, listings)
        del before  # its listings that are not this release's (removed, changed) are not held while it is built and checked
    if reuse is not None:
        reuse.hash_ahead(ahead)
    give_back_freed_memory()  # the heap the comparison took (kept by the C heap otherwise, beside the worker processes)
    checkpoint("start")
    with table_check.workers(len(listings) >= PARALLEL_MIN) as pool:  # for the HSDS build and Frictionless's checks
        table_check.warmed(pool)  # (a rerun builds its few HSDS parts here: the first work a worker gets is a check)
        partial = releases / f"{PARTIAL_PREFIX}{release_id}"
        written: list[Future[dict[str, object]]] = []
        known: dict[str, tuple[int, ...]] = {}  # the files written or linked, hashed as they were (``_written``)
        in_hsds: list[Future[dict[str, object]]] = []  # the HSDS package's files, as they are written
        hsds_check: Future[list[str] | None] | None = None
        with ThreadPoolExecutor(1) as writer:  # hashes and writes each file while the next is built (GIL let go)
            hsds_made: dict[str, object] = {}
            files = iter_release_files(listings, sources, None, pool, made_changes, reuse, listings_json, hsds_made, writers)
            del listings_json  # (let go of once written)
            for rel, data in files:
                if rel == "index.json":
                    checkpoint("writing")  # about half the files are written
                if len(written) >= WRITES_AHEAD:
                    written[-WRITES_AHEAD].result()  # (a few built files wait at most: a big release is not all held)
                if in_hsds and not rel.startswith("hsds/"):  # the package is all given: its check (the longest) starts
                    # in a worker beside the rest of the build (at 535k listings it ended 6 s after the other checks
                    # when it started with them); once (a pool that refuses it leaves it to ``verify``)
                    entries = [w.result() for w in in_hsds]
                    in_hsds.clear()
                    give_back_freed_memory()  # (the package's bytes, written: not held beside the worker checking them)
                    hsds_check = hsds_check_early(partial, verified, entries, pool)
                written.append(writer.submit(_written, partial, rel, data, known))
                if flushing is not None:  # (``_fsync_tree`` then finds the release's bytes on disk: at 534k listings, a
                    # rerun's 1 GB took it 0.4 s after the checks)
                    written[-1].add_done_callback(functools.partial(_flush_soon, flushing, partial / rel))
                if rel.startswith("hsds/"):
                    in_hsds.append(written[-1])
        entries = [w.result() for w in written]
        locs = [e for e in entries if str(e["path"]).startswith("locations/") and str(e["path"]).endswith(".json")]
        counts = {"listings": len(listings), "locations": len(locs), **extra_counts}
        counts.update({k: len(made_changes[k]) for k in ("added", "removed", "changed")})  # type: ignore[arg-type]
        man = manifest(entries, release_id, now, previous, counts)
        (partial / "manifest.json").write_bytes(json_bytes(man))
        checkpoint("written")
        give_back_freed_memory()  # the files built and written (checking reads them again, beside a worker process)

        def let_go() -> None:
            listings.clear()
            if verified is not None:
                verified.listings.clear()  # (the same objects)
            give_back_freed_memory()

        # a rerun compared in the warehouse checks few files once its listings are let go of: they are let go of
        # beside those checks (at 534k listings, 0.5-0.7 s of freeing); a first release checks every file after
        beside = threading.Thread(target=let_go, name="publish-let-go")
        letting = beside.start if compared_here else let_go
        problems = verify(partial, man, verified, pool, listings, letting if let_go_of_listings else None, hsds_check, known)
    if beside.ident is not None:  # (started)
        beside.join()
    if problems:
        raise RuntimeError(f"release {release_id} failed its checks: {problems}")
    final = _switched(exports_dir, partial, known, hsds_made, keep, checkpoint)
    return Release(release_id, final, previous, counts, tuple(reuse.taken) if reuse is not None else ())


def publish_unchanged(
    exports_dir: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    compared: Compared | None,
    sources: list[SourceMeta] | None = None,
    checkpoint: Callable[[str], None] = no_checkpoint,
) -> Release | None:
    """``publish`` for a rerun whose listings are every one the current release's (``compared``: none added, removed
    or changed): a release of that release's files, each taken as it is (linked), but ``changes.json`` (nothing
    changed) and its manifest.  Nothing is built, and nothing is checked again but the files against the manifest:
    each file taken is byte for byte one that passed its checks, against the same schema files, when that release
    was published, and it was built by this same code (``BUILT_BY``).  At 534k listings such a release took 10 s
    built as ``publish`` builds it (the listings read, every file written or taken, and checked).

    The files that hold more than the listings are made again and must be that release's: ``index.json`` (the
    locations' names), ``datapackage.json`` and ``hsds/datapackage.json`` (the sources' licences and attributions).
    None, with nothing written, when any of this is not so, or a file no longer matches that release's manifest:
    the release is then built by ``publish``."""
    previous = current_release(exports_dir)
    verified = _verified_files(exports_dir)
    if compared is None or compared.different or compared.release != previous or verified is None or verified.built is None:
        return None  # (``compared`` None: the listings were not compared in the warehouse)
    if previous is None or verified.built_by != builder():
        return None
    try:
        # each location of that release's index.json (``compared``'s, as it read them) as this code names it (a
        # country renamed since: its files are built again)
        places = [location(loc.code) for loc in compared.locations]
        again = [{"code": loc.code, "name": loc.name, "type": loc.type, "parent": loc.parent, "count": compared.counts[loc.code],
                  **location_paths(loc.code)} for loc in places]  # fmt: skip
        licences = sorted({s.licence for s in sources or [] if s.licence})
        made = {
            "index.json": json_bytes({"schema_version": SCHEMA_VERSION, "locations": again}),
            "datapackage.json": json_bytes(datapackage(sorted(str(x["csv"]) for x in again), sources or [])),
            "hsds/datapackage.json": hsds.descriptor_bytes(licences, source_entries(sources or [])),
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(hashlib.sha256(data).hexdigest() != verified.sha256.get(rel) for rel, data in made.items()):
        return None  # (a location renamed, a source's licence or attribution changed: built and checked as ``publish`` does)
    reuse = Reusable(verified.folder, verified.sha256, {}, frozenset(), signed=verified.signed)
    changes = json_bytes(changes_between([], []))
    releases, _, release_id = _begun(exports_dir, now)
    partial = releases / f"{PARTIAL_PREFIX}{release_id}"
    checkpoint("start")
    known: dict[str, tuple[int, ...]] = {}
    written = [_written(partial, "changes.json", changes, known)]
    rels = sorted(rel for rel in verified.sha256 if rel != "changes.json")
    for n, rel in enumerate(rels):
        if n == len(rels) // 2:
            checkpoint("writing")
        taken = reuse.take(rel)
        if taken is None:  # (it changed since that release was published: built by ``publish``)
            shutil.rmtree(partial, ignore_errors=True)
            return None
        written.append(_written(partial, rel, taken, known))
    counts = {"listings": compared.count, "locations": len(again), **extra_counts, "added": 0, "removed": 0, "changed": 0}
    man = manifest(written, release_id, now, previous, counts)
    (partial / "manifest.json").write_bytes(json_bytes(man))
    checkpoint("written")
    problems = _manifest_problems(partial, man, known)
    if problems:
        raise RuntimeError(f"release {release_id} failed its checks: {problems}")
    final = _switched(exports_dir, partial, known, verified.built.get("hsds"), keep, checkpoint)
    return Release(release_id, final, previous, counts, tuple(reuse.taken))


def _begun(exports_dir: Path, now: dt.datetime) -> tuple[Path, str | None, str]:
    """The releases' folder, cleared of what a killed run left there; the current release; the new release's id."""
    releases = exports_dir / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    for stale in releases.glob(PARTIAL_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed mid-write
    for link in exports_dir.glob(".current-*"):
        link.unlink(missing_ok=True)  # a symlink a killed run made but never moved into place
    return releases, current_release(exports_dir), new_release_id(releases, now)


def _switched(
    exports_dir: Path,
    partial: Path,
    known: dict[str, tuple[int, ...]],
    hsds_made: object,
    keep: int,
    checkpoint: Callable[[str], None],
) -> Path:
    """A release written to ``partial`` and checked: flushed to disk, renamed to its id, made ``current`` atomically,
    recorded in ``BUILT_BY`` (``hsds_made``: where its HSDS parts are; ``known``: the files hashed as they were
    written or taken, with their signatures then), and the oldest releases but ``keep`` pruned; returns its folder."""
    releases, release_id = partial.parent, partial.name.removeprefix(PARTIAL_PREFIX)
    checkpoint("verified")
    _fsync_tree(partial)
    final = releases / release_id
    os.rename(partial, final)
    checkpoint("renamed")
    tmp_link = exports_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(Path("releases") / release_id)
    checkpoint("linked")
    os.replace(tmp_link, exports_dir / "current")
    _fsync_dir(exports_dir)
    checkpoint("switched")
    # each file's signature as it was when the release passed its checks (``Reusable.signed``: those hashed as they
    # were written or taken, still as they were then; renaming the folder changes none)
    signed = {rel: list(seen) for rel, seen in sorted(known.items()) if _still(final / rel, seen)}
    _replaced(exports_dir / BUILT_BY, orjson.dumps({"release": release_id, "builder": builder(), "hsds": hsds_made, "signed": signed}))
    prune(releases, keep, release_id)
    return final


def _replaced(path: Path, data: bytes) -> None:
    """``path`` holds ``data``, or what it held before (written aside, then moved into place)."""
    aside = path.with_name(f"{path.name}.{os.getpid()}")
    aside.write_bytes(data)
    os.replace(aside, path)


#: built files waiting to be hashed and written (each a copy of a file: listings.json is 0.4 GB at 535k listings)
WRITES_AHEAD = 1


def _written(folder: Path, rel: str, data: bytes | Taken, known: dict[str, tuple[int, ...]] | None = None) -> dict[str, object]:
    """The file written (a file taken from the release before: linked to it, or copied where it cannot be), and its
    manifest entry.  ``known``: filled with the ``_signature`` of each file whose bytes were hashed as they are in it
    (those written here, hashed as they were written; those linked), by path (``verify``: reading a file just
    written reads back the bytes hashed, from the page cache: at 534k listings, 2.7 GB hashed twice)."""
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(data, Taken):
        target.write_bytes(data)
        if known is not None:
            known[rel] = _signature(target)
        return file_entry(rel, data)
    try:
        os.link(data.path, target)
    except OSError:  # (a file system without hard links: copied, and hashed again when the release is checked)
        shutil.copyfile(data.path, target)
    else:
        if known is not None and _signature(target) == data.stat:  # the file that was hashed, unchanged since
            known[rel] = data.stat
    return {"path": rel, "bytes": data.size, "sha256": data.sha256}


def _still(path: Path, seen: tuple[int, ...]) -> bool:
    try:
        return _signature(path) == seen
    except OSError:
        return False


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _flush_soon(flushing: Executor, path: Path, written: Future[Any]) -> None:
    """Have ``flushing`` flush the file ``path`` to disk once it is ``written`` (``_fsync_tree`` flushes every file of
    the release all the same: this only starts the work early)."""
    if written.cancelled() or written.exception() is not None:
        return
    with contextlib.suppress(RuntimeError):  # (shut down: the release failed, or was published already)
        flushing.submit(_fsync_file, path)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync_dir(path)


def prune(releases: Path, keep: int, current: str) -> list[str]:
    """Remove all but the newest ``keep`` releases (never the current one); returns what was removed."""
    done = sorted((p.name for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    removed = [name for name in done[keep:] if name != current]
    for name in removed:
        shutil.rmtree(releases / name)
    return removed
