"""A rerun's release patched from the current release: the few listings that differ are cut out of its files and put
into them (``publish_patched``), every other byte is the release before's.

``publish`` builds a release from every listing: at 534k listings a rerun that changed one national listing spent
10-15 s reading the listings from the warehouse, writing them again and placing them in their locations.  Here the
files are edited instead.  Each file of listings (``listings.json``, a location's JSON, CSV and preview script) holds
them in one order (kind, then name, then id, as ``export.public_listings`` reads them), so a listing's place in a file
is found by bisection, a few listings parsed on the way (``Listed``); the text a listing is written as in each file is
the one ``export`` writes for it, so the text cut out is checked to be the old listing's, byte for byte.  The HSDS
parts (``export.hsds_pieces``) whose listings changed are built again, the others taken from the tables of the release
before (``export.Reusable.hsds_parts``).

The release is the one ``publish`` would build from the same listings, byte for byte (the tests hold them to each
other).  None, with nothing written, whenever something is not as this expects (the release before built by other
code, a location added or gone, a file that is not where a listing should be, ``PATCH_MAX`` exceeded): ``publish``
then builds the release.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import shutil
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

from curate import export, hsds, preview, table_check
from curate.export import (
    BETWEEN,
    CLOSED,
    CLOSES,
    OPENS,
    Compared,
    Guard,
    Listing,
    Release,
    ReleaseHeld,
    SourceMeta,
    Taken,
    json_bytes,
)
from schemas.fields import LISTING_FIELDS
from schemas.generate import to_table_schema

#: listings added, removed or changed up to which a release is patched (above, ``publish`` builds it: each listing
#: costs a few bisections of every file it is in, and its HSDS part built again in this process)
PATCH_MAX = 64

#: the fields a release's listings are ordered by (``export.LISTING_ORDER_SQL``)
ORDER = ("kind", "name", "id")

#: how a location's JSON file goes on after its head (``export.location_json``), and how it ends
LOCATION_LISTINGS, LOCATION_CLOSES = b',\n  "listings": [\n    {', b"\n    }\n  ]\n}\n"
#: the line a listing's text begins with in ``listings.json`` (its id is its first key, four spaces in)
ID_LINE = b'\n    "id": '


class NotPatched(Exception):
    """Something is not as a patch expects: the release is built by ``publish`` instead."""


def order_key(listing: Mapping[str, object]) -> tuple[str, ...]:
    """A listing's place in a release's order: kind, name, id compared as strings, a missing value as "None"."""
    return tuple("None" if listing.get(name) is None else str(listing.get(name)) for name in ORDER)


def listing_text(listing: Listing) -> bytes:
    """The text of a listing in ``listings.json``, within its braces (``json_bytes`` of the list)."""
    return json_bytes([listing])[len(OPENS) : -len(CLOSES)]


def deeper(text: bytes) -> bytes:
    """A listing's text in ``listings.json`` as a location's JSON file holds it (one level further in)."""
    return text.replace(b"\n", b"\n  ")


@dataclass
class Listed:
    """A file's list of listings: the objects from ``first`` to ``last_end`` in ``data``, each two parted by ``sep``.

    When ``sep`` is found between two objects and nowhere else (a JSON file's, with its line breaks), a listing's
    place is found by bisection, parsing the objects met (``parse``)."""

    data: bytes
    first: int
    last_end: int
    sep: bytes
    parse: Callable[[bytes], Any] | None = None

    def start_from(self, pos: int) -> int | None:
        """The first object's start at or after ``pos`` (None: there is none)."""
        if pos <= self.first:
            return self.first
        found = self.data.find(self.sep, max(pos - len(self.sep), 0), self.last_end)
        return None if found < 0 else found + len(self.sep)

    def end_of(self, start: int) -> int:
        found = self.data.find(self.sep, start, self.last_end)
        return self.last_end if found < 0 else found

    def object_at(self, start: int) -> Any:
        assert self.parse is not None
        try:
            return self.parse(self.data[start : self.end_of(start)])
        except ValueError as exc:
            raise NotPatched(f"an object that does not parse at {start}") from exc

    def bound(self, key: tuple[str, ...], after: bool) -> int:
        """Where the first object whose key is above ``key`` (``after``; else not below it) starts, or ``last_end``."""
        lo, hi = self.first, self.last_end  # every object before ``lo`` is below; ``hi`` starts one that is not
        while lo < hi:
            start = self.start_from((lo + hi) // 2)
            if start is None or start >= hi:
                start = lo  # (no object starts between the middle and ``hi``: the one at ``lo`` is looked at)
            end = self.end_of(start)
            got = order_key(self.object_at(start))
            if got > key or (not after and got == key):
                hi = start
            else:
                lo = end + len(self.sep) if end < self.last_end else self.last_end
        return hi

    def span(self, start: int, text: bytes) -> tuple[int, int]:
        """The object at ``start``, which must be ``text`` and whole."""
        end = start + len(text)
        if (
            start >= self.last_end
            or self.data[start:end] != text
            or (end != self.last_end and self.data[end : end + len(self.sep)] != self.sep)
        ):
            raise NotPatched(f"the object at {start} is not the one expected")
        return start, end

    def located(self, listing: Listing, text: bytes) -> tuple[int, int]:
        """Where ``listing``, written as ``text``, is (found by bisection)."""
        return self.span(self.bound(order_key(listing), after=False), text)

    def joined(self, cut: list[tuple[int, int]], put: list[tuple[int, tuple[str, ...], bytes]]) -> list[bytes | memoryview]:
        """The objects from ``first`` to ``last_end`` without those ``cut`` (their spans), with each text ``put`` before
        the object starting at its place (``last_end``: after the last), as runs of objects (views of ``data``, not
        copies) and texts to join with ``sep``."""
        events = sorted([(at, 0, key, text) for at, key, text in put] + [(start, 1, (), end) for start, end in cut])
        data, last_end, gap = memoryview(self.data), self.last_end, len(self.sep)
        chunks: list[bytes | memoryview] = []
        cur = self.first  # where the next object not yet taken starts

        def run_to(at: int) -> None:
            if cur < min(at, last_end):
                chunks.append(data[cur : at - gap if at < last_end else last_end])

        for at, kind, _, what in events:
            run_to(at)
            if kind == 0:
                cur = max(cur, at if at < last_end else last_end + gap)
                chunks.append(what)  # type: ignore[arg-type]
            else:
                cur = what + gap  # type: ignore[operator]
        run_to(last_end)
        return chunks

    def spliced(self, head: bytes, cut: list[tuple[int, int]], put: list[tuple[int, tuple[str, ...], bytes]]) -> bytes:
        """The file with ``joined``'s objects, after ``head`` (the file's own, when unchanged)."""
        chunks = self.joined(cut, put)
        if not chunks:
            raise NotPatched("a file left without listings")
        parts: list[bytes | memoryview] = [head]
        for chunk in chunks:  # (joined once: a file of 0.4 GB is copied once)
            parts += (chunk, self.sep)
        parts[-1] = memoryview(self.data)[self.last_end :]
        return b"".join(parts)


def _listing_of(text: bytes) -> Any:
    return orjson.loads(b"".join((b"{", text, b"}")))


def listings_listed(data: bytes) -> Listed:
    """``listings.json`` (``json_bytes`` of a list of listings)."""
    if not (data.startswith(OPENS) and data.endswith(CLOSES)) or len(data) <= len(OPENS) + len(CLOSES):
        raise NotPatched("listings.json is not written as expected")
    return Listed(data, len(OPENS), len(data) - len(CLOSES), BETWEEN, _listing_of)


def location_opening(head: Mapping[str, object], count: int) -> bytes:
    """A location's JSON file up to its first listing's text (``export.location_json``)."""
    opening = orjson.dumps({"location": head, "count": count}, option=orjson.OPT_INDENT_2)
    return opening[: -len(b"\n}")] + LOCATION_LISTINGS


def location_listed(data: bytes, head: Mapping[str, object], count: int) -> Listed:
    """A location's JSON file of ``count`` listings."""
    opening = location_opening(head, count)
    if count < 1 or not (data.startswith(opening) and data.endswith(LOCATION_CLOSES)):
        raise NotPatched(f"locations/{head['code']}.json is not written as expected")
    between = export.DEEPER_BETWEEN
    return Listed(data, len(opening), len(data) - len(LOCATION_CLOSES), between, _listing_of)


def found_once(data: bytes, text: bytes, start: int, end: int) -> int:
    """Where ``text`` is in ``data[start:end]``, when it is there once."""
    at = data.find(text, start, end)
    if at < 0 or data.find(text, at + 1, end) >= 0:
        raise NotPatched("a record not found once")
    return at


@dataclass
class Touched:
    """What changes in one location: the listings it no longer holds as they were (``gone``) and those it holds anew."""

    gone: list[Listing]
    new: list[Listing]


def patched_location(head: Mapping[str, object], count: int, files: Mapping[str, bytes], touched: Touched) -> tuple[dict[str, bytes], int]:
    """A location's JSON file, CSV file and preview script (``files``, by kind: ``json``, ``csv``, ``js``) with its
    ``touched`` listings cut out and put in, and its new count.  The JSON file is bisected; a new listing goes into
    the CSV file and the script before the listing it goes before there, whose record and text are found once."""
    code = str(head["code"])
    listed = location_listed(files["json"], head, count)
    cut = [listed.located(x, deeper(listing_text(x))) for x in touched.gone]
    put: list[tuple[int, tuple[str, ...], bytes]] = []
    before: list[Listing | None] = []  # the listing each new one goes before (None: after the last)
    for x in touched.new:
        at = listed.bound(order_key(x), after=True)
        put.append((at, order_key(x), deeper(listing_text(x))))
        before.append(listed.object_at(at) if at < listed.last_end else None)
    new_count = count + len(put) - len(cut)
    out = {"json": listed.spliced(location_opening(head, new_count), cut, put)}

    # the CSV file: the header, then each listing's record (which may hold quoted line breaks: found whole, once)
    data = files["csv"]
    header = export.csv_records([])[0]
    if not data.startswith(header):
        raise NotPatched(f"locations/{code}.csv is not written as expected")
    records = Listed(data, len(header), len(data), b"")

    def record_at(x: Listing) -> int:
        record = export.csv_records([x])[1]
        return found_once(data, b"\r\n" + record, len(header) - 2, len(data)) + 2

    cut_csv = [records.span(record_at(x), export.csv_records([x])[1]) for x in touched.gone]
    put_csv = [
        (record_at(y) if y is not None else len(data), order_key(x), export.csv_records([x])[1])
        for x, y in zip(touched.new, before, strict=True)
    ]
    out["csv"] = records.spliced(header, cut_csv, put_csv)

    # the preview script: each listing's shown JSON, parted by commas; one begins where its id's key is (a string
    # escapes its double quotes: '{"id":' is nowhere else)
    data = files["js"]
    opening = f"window.previewData({orjson.dumps(code).decode()},[".encode()
    if not (data.startswith(opening) and data.endswith(b"]);\n")):
        raise NotPatched(f"{preview.script_path(code)} is not written as expected")
    shown = Listed(data, len(opening), len(data) - len(b"]);\n"), b",")

    def shown_at(x: Listing) -> int:
        at = data.find(b'{"id":' + orjson.dumps(x["id"]) + b",", shown.first, shown.last_end)
        if at < 0 or data[at - 1 : at] not in (b",", b"["):
            raise NotPatched(f"{x['id']} not found in {preview.script_path(code)}")
        return at

    def shown_text(x: Listing) -> bytes:
        return preview._shown_json(x).encode()

    cut_js = [shown.span(shown_at(x), shown_text(x)) for x in touched.gone]
    put_js = [
        (shown_at(y) if y is not None else shown.last_end, order_key(x), shown_text(x)) for x, y in zip(touched.new, before, strict=True)
    ]
    out["js"] = shown.spliced(opening, cut_js, put_js)
    return out, new_count


# --- the HSDS parts -------------------------------------------------------------------------------


def _id_at(data: bytes, start: int) -> str:
    """The id of the listing whose text starts at ``start`` in ``listings.json`` (its first line)."""
    if data[start : start + len(ID_LINE)] != ID_LINE:
        raise NotPatched("a listing whose id is not its first key")
    end = data.find(b",\n", start + len(ID_LINE))  # (a string holds no line break)
    value = orjson.loads(data[start + len(ID_LINE) : end])
    return str(value)


def ends_a_part(listing_id: str) -> bool:
    """Whether an HSDS part ends after this listing (``export.hsds_pieces``)."""
    return zlib.crc32(listing_id.encode()) % export.HSDS_PART_EVERY == 0


def part_around(listed: Listed, start: int) -> tuple[int, int]:
    """The span in ``listings.json`` of the HSDS part holding the listing that starts at ``start``: from the first
    listing after the last one before it that ends a part, to the end of the first from it on that ends one."""
    data, first = listed.data, listed.first
    begin, at = first, start
    while at > first:
        found = data.rfind(BETWEEN, first, at - len(BETWEEN))  # (the one before the listing before)
        prev_start = found + len(BETWEEN) if found >= 0 else first
        if ends_a_part(_id_at(data, prev_start)):
            begin = at
            break
        at = prev_start
    at = start
    while True:
        end = listed.end_of(at)
        if end >= listed.last_end or ends_a_part(_id_at(data, at)):
            return begin, end
        at = end + len(BETWEEN)


def pieces_of(texts: list[bytes]) -> list[list[bytes]]:
    """The texts of listings in order, cut into HSDS parts' pieces as ``export.hsds_pieces`` cuts them."""
    pieces: list[list[bytes]] = []
    start = 0
    for i, text in enumerate(texts):
        if ends_a_part(_id_at(text, 0)):
            pieces.append(texts[start : i + 1])
            start = i + 1
    if start < len(texts):
        pieces.append(texts[start:])
    return pieces


def piece_text(texts: list[bytes]) -> bytes:
    """A piece's listings as ``export.piece_texts`` finds them in ``listings.json``."""
    return b"".join((b"{", BETWEEN.join(texts), CLOSED))


@dataclass
class Region:
    """Consecutive HSDS parts of the release before (``begin`` to ``end`` in its ``listings.json``) and what they hold now."""

    begin: int
    end: int
    old: list[bytes]
    new: list[bytes]


def changed_regions(listed: Listed, cut: list[tuple[int, int]], put: list[tuple[int, tuple[str, ...], bytes]]) -> list[Region]:
    """The HSDS parts of ``listings.json`` that ``cut`` and ``put`` change, as regions each ending where a part ends
    both before and after (so that the parts after are the same)."""
    spans = [part_around(listed, start) for start, _ in cut]
    for at, _, _ in put:
        last = listed.data.rfind(BETWEEN, listed.first, listed.last_end)  # (after the last: the last one's part)
        spans.append(part_around(listed, at if at < listed.last_end else last + len(BETWEEN) if last >= 0 else listed.first))
    spans.sort()
    regions: list[list[int]] = []
    for begin, end in spans:
        if regions and begin <= regions[-1][1] + len(BETWEEN):
            regions[-1][1] = max(regions[-1][1], end)
        else:
            regions.append([begin, end])
    out: list[Region] = []
    i = 0
    while i < len(regions):
        begin, end = regions[i]
        sub = Listed(listed.data, begin, end, BETWEEN)
        inside_cut = [(s, e) for s, e in cut if begin <= s < end]
        inside_put = [(at, k, t) for at, k, t in put if begin <= at < end or (at == end == listed.last_end)]
        new = sub.joined(inside_cut, inside_put)
        texts = BETWEEN.join(new).split(BETWEEN) if new else []
        last_ends = bool(texts) and ends_a_part(_id_at(texts[-1], 0))
        if end < listed.last_end and not last_ends:
            # the listing that ended the region's last part is gone: the part after joins it
            _, next_end = part_around(listed, end + len(BETWEEN))
            regions[i][1] = next_end
            while i + 1 < len(regions) and regions[i + 1][0] <= regions[i][1] + len(BETWEEN):
                regions[i][1] = max(regions[i][1], regions.pop(i + 1)[1])
            continue
        out.append(Region(begin, end, listed.data[begin:end].split(BETWEEN), texts))
        i += 1
    return out


def regions_parts(
    regions: list[Region], keys: list[str], named: bytes
) -> tuple[list[str], dict[str, list[Any]], list[tuple[list[str], list[str]]]]:
    """The HSDS parts' keys once ``regions`` are patched (``keys``: the release before's, in order), the listings of
    each part built anew, by key, and each region's keys before and after.  A part's key is ``export.part_keys``': of
    the locations' names (``named``) and of the part's listings as ``listings.json`` writes them."""
    out = list(keys)
    built: dict[str, list[Any]] = {}
    replaced: list[tuple[list[str], list[str]]] = []
    for region in sorted(regions, key=lambda r: -r.begin):  # (the last first: the places of those before stay)
        old = [export._parts_sha256((named, piece_text(p))) for p in pieces_of(region.old)]
        if not old or old[0] not in out:
            raise NotPatched("an HSDS part not recorded")
        at = out.index(old[0])
        if out[at : at + len(old)] != old:
            raise NotPatched("HSDS parts not recorded in order")
        new = []
        for piece in pieces_of(region.new):
            text = piece_text(piece)
            key = export._parts_sha256((named, text))
            built[key] = orjson.loads(b"".join((b"[", text, b"]")))
            new.append(key)
        out[at : at + len(old)] = new
        replaced.append((old, new))
    return out, built, replaced


def parquet_patched(old: bytes, fresh: Any, gone: Iterable[str]) -> bytes:
    """``listings.parquet`` (``old``, the release before's) without the listings of ids ``gone``, with those of
    ``fresh`` (an Arrow table of ``export.PARQUET_COLUMNS_SQL``'s columns), in the release's order: the bytes
    ``publish`` writes from the warehouse (the listings kept read and written again by Arrow, in their order: at 534k
    listings, DuckDB took 2-3 s to sort them all and write them)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from schemas.generate import to_arrow_schema

    schema: Any = to_arrow_schema()
    table = pq.read_table(pa.BufferReader(old))
    table, fresh = (
        pa.Table.from_arrays([t.column(n).cast(schema.field(n).type) for n in LISTING_FIELDS], schema=schema) for t in (table, fresh)
    )
    # the rows cut (those of the ids ``gone``), and each new listing's place among the rows (in the release's order):
    # how many come before it; the table is then sliced around them, not copied but once, when it is written
    cut = pc.indices_nonzero(pc.is_in(table.column("id"), value_set=pa.array(sorted(gone), pa.string()))).to_pylist()
    columns = [pc.fill_null(table.column(name), "None") for name in ORDER]  # (as ``order_key``)
    events: list[tuple[int, int, tuple[str, ...], int]] = [(at, 1, (), 0) for at in cut]
    for i, x in enumerate(fresh.select(list(ORDER)).to_pylist()):
        key = order_key(x)
        before = pc.less(columns[0], key[0])
        same = pc.equal(columns[0], key[0])
        for column, value in zip(columns[1:], key[1:], strict=True):
            before = pc.or_(before, pc.and_(same, pc.less(column, value)))
            same = pc.and_(same, pc.equal(column, value))
        events.append((pc.sum(before).as_py() or 0, 0, key, i))
    pieces, start = [], 0
    for at, kind, _, i in sorted(events):  # (a new listing before the row cut at its place: its version before)
        pieces.append(table.slice(start, at - start))
        if kind == 0:
            pieces.append(fresh.slice(i, 1))
            start = at
        else:
            start = at + 1
    both = pa.concat_tables([*pieces, table.slice(start)])
    return export.parquet_written([both.column(n).combine_chunks() for n in LISTING_FIELDS], schema)


def _parquet(con: duckdb.DuckDBPyConnection, old: Callable[[], bytes], gone: list[str]) -> bytes | None:
    """``parquet_patched`` of the warehouse's listings whose ids are ``gone`` (those that differ), None when it fails
    (the release is then built by ``publish``)."""
    try:
        with con.cursor() as cursor:  # (a connection of its own, which does not see the caller's temporary tables)
            query = f"SELECT {export.PARQUET_COLUMNS_SQL} FROM out_listings WHERE list_contains(?, id)"
            fresh = cursor.sql(query, params=[gone]).to_arrow_table()
        return parquet_patched(old(), fresh, gone)
    except Exception:
        return None


def schema_problems(schema: bytes, listings: list[Listing]) -> list[str]:
    """``listings`` against ``schema`` (``schema/listing.schema.json``'s bytes; ``export.validate_against_schemas``')."""
    import jsonschema_rs

    validator = jsonschema_rs.Draft202012Validator(orjson.loads(schema), validate_formats=True)
    return [f"listings.json: {x.get('id')}: {error.message}" for x in listings for error in validator.iter_errors(x)]


def publish_patched(
    con: duckdb.DuckDBPyConnection,
    exports_dir: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    compared: Compared | None,
    sources: list[SourceMeta] | None = None,
    guard: Guard | None = None,
    checkpoint: Callable[[str], None] = export.no_checkpoint,
) -> Release | None:
    """``publish`` for a rerun whose listings differ from the current release's in a few (``compared``: at most
    ``PATCH_MAX`` added, removed or changed): the release before's files patched (see the module's docstring), the
    others taken as they are (linked).  The listings that differ are read from the warehouse (``compared``'s
    ``release_different``, on ``con``), ``listings.parquet`` is written by DuckDB from ``out_listings``.

    Checked as ``publish`` checks a rerun's release: every file against the manifest, the listings that differ for
    safe content and against the listing schema, the CSV files and the HSDS package that changed with Frictionless
    (``table_check``: the records the release before held are not checked again).  Raises ``ReleaseHeld`` when the
    guard finds a mass removal (nothing written).  None, with nothing written, when it does not apply or a check
    fails: ``publish`` then builds the release (and checks it whole)."""
    previous = export.current_release(exports_dir)
    verified = export._verified_files(exports_dir)
    if compared is None or not compared.different or len(compared.different) > PATCH_MAX or compared.release != previous:
        return None
    if previous is None or verified is None or verified.built is None or verified.built_by != export.builder():
        return None
    guard = guard or Guard()
    try:
        cols = ", ".join(LISTING_FIELDS)
        fresh = export._listings_read(
            con, f"SELECT {cols} FROM out_listings SEMI JOIN release_different USING (id) ORDER BY {export.LISTING_ORDER_SQL}"
        )
        areas = {str(r[0]) for r in con.execute("SELECT DISTINCT unnest(areas) FROM out_listings").fetchall()}
    except duckdb.Error:
        return None
    codes = {"WW", *areas, *(a.split("-", 1)[0] for a in areas if "-" in a)}
    if sorted(codes, key=lambda c: (c != "WW", c)) != [loc.code for loc in compared.locations]:
        return None  # (a location added or gone: ``index.json`` and ``datapackage.json`` change)
    equal: dict[str, Listing] = {}
    changes = export.changes_between(compared.before, fresh, equal)
    gone = [x for x in compared.before if str(x["id"]) not in equal]
    new = [x for x in fresh if str(x["id"]) not in equal]
    if not gone and not new:
        return None
    new_by_id = {str(x["id"]): x for x in new}
    placed = (compared.locations, compared.counts)
    removals = export._removals(compared.count, gone, new_by_id, lambda: placed, guard.share, guard.minimum) if compared.count else []
    releases, _, release_id = export._begun(exports_dir, now)
    if removals and not guard.allow:
        raise ReleaseHeld(release_id, removals, previous, guard.share, guard.minimum)
    partial = releases / f"{export.PARTIAL_PREFIX}{release_id}"
    # beside this process's work: ``listings.parquet`` patched by Arrow (which lets go of the GIL), and each file hashed
    # and written by a thread
    with ThreadPoolExecutor(1) as early, ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as flushing:
        reuse = export.Reusable(verified.folder, verified.sha256, {}, frozenset(), signed=verified.signed)
        parquet = early.submit(_parquet, con, functools.partial(_read, reuse, previous, "listings.parquet"), sorted(compared.different))
        apart = partial.with_name(partial.name + ".checked-apart")  # (cleared by ``export._begun`` after a kill)
        try:
            apart.mkdir()
            return _published(exports_dir, partial, now, keep, extra_counts, compared, sources or [], checkpoint,
                              verified, gone, new, changes, parquet.result, writer, flushing, apart)  # fmt: skip
        except (NotPatched, OSError, ValueError, KeyError, TypeError, IndexError):
            writer.shutdown(cancel_futures=True)
            shutil.rmtree(partial, ignore_errors=True)
            return None
        finally:
            shutil.rmtree(apart, ignore_errors=True)


def _read(reuse: export.Reusable, release: str, rel: str) -> bytes:
    """A file of the release before (``reuse``'s), which must still be the one its manifest names."""
    signed = reuse._signed_hash(rel)
    data = (reuse.folder / rel).read_bytes()
    if (signed is None or reuse._signed_hash(rel) != signed) and hashlib.sha256(data).hexdigest() != reuse.sha256.get(rel):
        raise NotPatched(f"{rel} no longer matches the manifest of release {release}")
    return data


def _published(
    exports_dir: Path,
    partial: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    compared: Compared,
    sources: list[SourceMeta],
    checkpoint: Callable[[str], None],
    verified: export.Verified,
    gone: list[Listing],
    new: list[Listing],
    changes: dict[str, object],
    parquet: Callable[[], bytes | None],
    writer: Executor,
    flushing: Executor,
    apart: Path,
) -> Release | None:
    folder, previous = verified.folder, compared.release
    for loc in compared.locations:
        if export.location(loc.code) != loc:
            raise NotPatched(f"{loc.code} is named otherwise now")
    names = {loc.code: loc.name for loc in compared.locations}
    assert isinstance(verified.built, Mapping)
    reuse = export.Reusable(folder, verified.sha256, {}, frozenset(), hsds_at=verified.built.get("hsds"), signed=verified.signed)

    read = functools.partial(_read, reuse, previous)

    def taken(rel: str) -> Taken:
        """A file of the release before, taken as it is."""
        got = reuse.take(rel)
        if got is None:
            raise NotPatched(f"{rel} no longer matches the manifest of release {previous}")
        return got

    written: list[Future[dict[str, object]]] = []
    known: dict[str, tuple[int, ...]] = {}
    done: set[str] = set()

    def put(rel: str, data: bytes | Taken) -> None:
        if rel in done:
            raise NotPatched(f"{rel} made twice")
        done.add(rel)
        written.append(writer.submit(export._written, partial, rel, data, known))
        written[-1].add_done_callback(functools.partial(export._flush_soon, flushing, partial / rel))  # (``_switched``
        # then finds the release's bytes on disk)

    checkpoint("start")
    data = read("listings.json")
    listed = listings_listed(data)
    cut = [listed.located(x, listing_text(x)) for x in gone]
    put_in = [(listed.bound(order_key(x), after=True), order_key(x), listing_text(x)) for x in new]
    regions = changed_regions(listed, cut, put_in)
    count = compared.count + len(put_in) - len(cut)
    put("listings.json", listed.spliced(data[: listed.first], cut, put_in))  # (written first, beside the rest: the largest)
    del data, listed
    checkpoint("writing")

    # the HSDS package: the parts that changed built here, the others taken from the release before's tables, and a
    # table none of whose bytes changed taken as it is
    record = verified.built.get("hsds")
    if not isinstance(record, dict):
        raise NotPatched("no record of the HSDS parts")
    named = orjson.dumps(names, option=orjson.OPT_SORT_KEYS)
    keys, built, replaced = regions_parts(regions, [str(p["key"]) for p in record["parts"]], named)
    del regions
    old_keys = {k for before, _ in replaced for k in before}
    ready = reuse.hsds_parts([k for k in keys if k not in built] + sorted(old_keys))  # (those replaced: compared below)
    if len(ready) != len(keys) - len(built) + len(old_keys):
        raise NotPatched("an HSDS part of the release before could not be taken")
    fresh = {key: hsds.part_bodies(listings, names, export.csv_cell) for key, listings in built.items()}
    parts = [fresh[k] if k in fresh else ready[k] for k in keys]
    heads = hsds.table_heads([terms for _, terms in parts], export.csv_cell)
    tables = export.hsds_tables()
    old_heads = dict(zip(tables, (int(n) for n in record["heads"]), strict=True))
    hsds_made = export.hsds_record(keys, parts, {}, reuse.hsds_sha256, [len(heads[t]) for t in tables])
    # a table none of whose bytes changed (its head, and each region's rows) is taken, the others joined anew
    hsds_files: dict[str, bytes | None] = {}
    for table in tables:
        with (folder / "hsds" / table).open("rb") as fh:
            same = fh.read(old_heads[table]) == heads[table]
        for before, after in replaced:
            if not same:
                break
            was = [ready[k] if k in ready else fresh[k] for k in before]
            same = b"".join(p[0][table] for p in was) == b"".join(p[0][table] for p in (fresh.get(k) or ready[k] for k in after))
        hsds_files[f"hsds/{table}"] = None if same else b"".join([heads[table], *(bodies[table] for bodies, _ in parts)])
    descriptor = hsds.descriptor_bytes(sorted({s.licence for s in sources if s.licence}), export.source_entries(sources))
    if hashlib.sha256(descriptor).hexdigest() != verified.sha256.get("hsds/datapackage.json"):
        raise NotPatched("the HSDS package's licences or sources changed")
    hsds_files["hsds/datapackage.json"] = None
    del parts, ready, built
    # the parts built anew are checked as a package of their own (in ``apart``), with the tables' heads (the
    # taxonomies): every id of a part is made from its listing's id, and every reference is to a row of the same
    # listing or to a taxonomy term, so the parts taken (checked when the release before was published) and these
    # hold no key twice and refer to nothing outside (at 534k listings, checking the two tables whose bytes changed,
    # whole, took 3.6 s)
    (apart / "hsds").mkdir()
    for table in tables:
        (apart / "hsds" / table).write_bytes(b"".join([heads[table], *(fresh[k][0][table] for k in keys if k in fresh)]))
    (apart / "hsds" / "datapackage.json").write_bytes(descriptor)
    del fresh
    for rel, table_bytes in hsds_files.items():  # (a table none of whose bytes changed is taken)
        put(rel, table_bytes if table_bytes is not None else taken(rel))
    del hsds_files

    # each location's files: those of a location a listing that differs is in patched, the others taken
    served = export._placing(compared.locations)
    touched: dict[str, Touched] = {}
    for x in gone:
        for code in served(x["areas"]):  # type: ignore[arg-type]
            touched.setdefault(code, Touched([], [])).gone.append(x)
    for x in new:
        for code in served(x["areas"]):  # type: ignore[arg-type]
            touched.setdefault(code, Touched([], [])).new.append(x)
    index = []
    for loc in compared.locations:
        head = {"code": loc.code, "name": loc.name, "type": loc.type, "parent": loc.parent}
        paths = {**export.location_paths(loc.code), "js": preview.script_path(loc.code)}
        n = compared.counts[loc.code]
        if loc.code in touched:
            made, n = patched_location(head, n, {kind: read(rel) for kind, rel in paths.items()}, touched[loc.code])
            for kind, rel in paths.items():
                put(rel, made[kind])
        else:
            for rel in paths.values():
                put(rel, taken(rel))
        index.append({**head, "count": n, **export.location_paths(loc.code)})
    package = json_bytes(export.datapackage(sorted(str(x["csv"]) for x in index), sources))
    if hashlib.sha256(package).hexdigest() != verified.sha256.get("datapackage.json"):
        raise NotPatched("the data package's licences or sources changed")
    put("datapackage.json", package)
    fixed = _fixed_files(index)
    for rel, body in fixed.items():
        put(rel, body)
    # the location files' new records are checked as a package of their own too (each listing's id is one only it
    # has, and each file holds it once: its record before was cut out)
    for rel in ("datapackage.json", export.TABLE_SCHEMA_PATH):
        (apart / "release" / rel).parent.mkdir(parents=True, exist_ok=True)
        (apart / "release" / rel).write_bytes(package if rel == "datapackage.json" else json_bytes(to_table_schema()))
    (apart / "release" / "locations").mkdir()
    for entry in index:
        records = export.csv_records(touched[str(entry["code"])].new if str(entry["code"]) in touched else [])
        (apart / "release" / str(entry["csv"])).write_bytes(b"".join(records))
    # checked while the files are being written
    problems = _problems(new, fixed["schema/listing.schema.json"], apart)
    if problems:
        raise NotPatched(f"the patched release failed its checks: {problems[:5]}")
    put("index.json", json_bytes({"schema_version": export.SCHEMA_VERSION, "locations": index}))
    put("changes.json", json_bytes(changes))
    parquet_data = parquet()
    if parquet_data is None:
        raise NotPatched("listings.parquet could not be written from the warehouse")
    put("listings.parquet", parquet_data)
    if done != set(verified.sha256):
        raise NotPatched("the files are not the release before's")
    counts = {"listings": count, "locations": len(index), **extra_counts}
    counts.update({k: len(changes[k]) for k in ("added", "removed", "changed")})  # type: ignore[arg-type]
    man = export.manifest([w.result() for w in written], partial.name.removeprefix(export.PARTIAL_PREFIX), now, previous, counts)
    (partial / "manifest.json").write_bytes(json_bytes(man))
    checkpoint("written")
    problems = export._manifest_problems(partial, man, known)
    if problems:
        raise NotPatched(f"the patched release failed its checks: {problems[:5]}")
    final = export._switched(exports_dir, partial, known, hsds_made, keep, checkpoint)
    return Release(final.name, final, previous, counts, tuple(reuse.taken))


def _fixed_files(index: list[dict[str, Any]]) -> dict[str, bytes]:
    """The files that hold no listing: the schemas, the preview's page and assets."""
    from schemas.generate import to_json_schema

    out = {
        "schema/listing.schema.json": json_bytes(to_json_schema()),
        export.TABLE_SCHEMA_PATH: json_bytes(to_table_schema()),
        "index.html": preview.index_html(index),
    }
    out.update({f"preview/{name}": preview._asset(name) for name in preview.ASSETS})
    return out


def _problems(new: list[Listing], schema: bytes, apart: Path) -> list[str]:
    """``export.verify``'s checks of a patched release, of what is not the release before's (its files are checked
    against the manifest once written): the listings that differ (``new``) for safe content and against the listing
    schema (``schema``), the CSV records and HSDS rows made of them with Frictionless, as packages of their own in
    ``apart`` (a problem found fails the patch: ``publish`` then builds the release, checks it whole, and names the
    rows of its files)."""
    problems = export.content_problems(new) + schema_problems(schema, new)
    problems += table_check.check_package(apart / "release" / "datapackage.json", "")
    return problems + table_check.check_package(apart / "hsds" / "datapackage.json", "hsds/")
