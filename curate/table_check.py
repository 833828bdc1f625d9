"""Frictionless checks of a release's CSV files, judging each distinct record once.

Whether a row passes its Table Schema (types, formats, ``required``, ``pattern``, ``enum``, the number of cells) depends
on the row and the schema alone.  So each distinct record of a schema is validated once, however many files hold it
(a worldwide listing's row is in every location file), and, with the release before it, the records that release
held under the same schema files are not validated again.  What spans rows is checked here on every row of every
file examined: primary keys and ``unique`` fields, and foreign keys (look-ups in the referenced file's keys, where
Frictionless reads the referenced file again for each resource).  The header of each file goes to Frictionless with
its records.

A file is examined when it is not byte for byte the verified release's, or when a file it references lost key values
it held then (a listing removed, not one renamed).  Records of a schema's own header are judged a value at a time by
Frictionless's own cell readers (``_ColumnCheck``, ``faulted``); Frictionless's validation words what they find.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import hashlib
import io
import itertools
import multiprocessing
import operator
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from curate.collector import collection_paused, give_back_freed_memory

Record = tuple[str, ...]
#: the cells of a key in a row: the cell itself for a key of one column (most are; with no tuple made per row for
#: them, the checks over the rows of 535k listings took 4.0 s instead of 5.7 s), a tuple of them for a longer one
Key = str | Record
#: problems shown per file (as Frictionless's own report, the rest are left out)
SHOWN = 5


@dataclass
class _File:
    name: str  # the resource's name
    path: str  # from the package's folder
    schema: dict[str, Any]
    #: (row, or 0 for the whole file; the text)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def schema_key(self) -> str:
        return orjson.dumps(self.schema, option=orjson.OPT_SORT_KEYS).decode()


#: the key values of a file's columns: (its path, the set) or None when the file has no such columns
KeySet = tuple[str, set[Key] | None] | None


#: bytes of a CSV file decoded at a time by ``read_records``
PIECE = 8 << 20


def read_records(data: bytes, piece: int = PIECE, same: dict[Record, Record] | None = None) -> list[Record]:
    """The records of a CSV file (UTF-8, comma, double quotes; cells may hold line breaks).

    ``same``: records already held, by themselves: a record equal to one of them is that one (the file of a rerun
    holds mostly the records of the file before it, which are then not held twice).

    The bytes are decoded ``piece`` at a time, each cut just after a line feed: a whole file in one ``StringIO``
    takes four bytes a character (reading a 125 MB HSDS table peaked 0.48 GB above its records; in pieces, 0.03 GB).
    Lines end where ``StringIO(newline="")`` ends them over the whole text (a cut after ``\\n`` never parts
    ``\\r\\n``, and UTF-8 holds no ``\\n`` byte inside a character), and the reader carries a quoted cell across
    lines, so the records are those of the whole text; a file that is not UTF-8 raises the whole text's error."""
    rows = map(tuple, csv.reader(itertools.chain.from_iterable(_text_pieces(data, piece))))
    return list(rows) if same is None else [same.get(r, r) for r in rows]


def _text_pieces(data: bytes, piece: int) -> Iterator[io.StringIO]:
    start = 0
    while start < len(data):
        cut = data.find(b"\n", start + piece - 1) + 1 or len(data)
        try:
            text = data[start:cut].decode("utf-8")
        except UnicodeDecodeError:
            data.decode("utf-8")  # raises with the position in the whole file
            raise
        yield io.StringIO(text, newline="")
        start = cut


def _row_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without what spans rows (checked here); primary key fields stay required, as the key made them."""
    out = copy.deepcopy(schema)
    keys = _key_fields(out.pop("primaryKey", None))
    out.pop("foreignKeys", None)
    for f in out.get("fields", []):
        constraints = f.setdefault("constraints", {})
        constraints.pop("unique", None)
        if f.get("name") in keys:
            constraints["required"] = True
    return out


def _key_fields(key: object) -> list[str]:
    if isinstance(key, str):
        return [key]
    return [str(k) for k in key] if isinstance(key, list) else []


def _missing(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("missingValues", [""]))


def _columns(header: Record, names: list[str]) -> list[int] | None:
    return [header.index(n) for n in names] if all(n in header for n in names) else None


def _key_values(header: Record, rows: list[Record], names: list[str]) -> set[Key] | None:
    cols = _columns(header, names)
    if cols is None:
        return None
    values = _values(rows, cols)
    return set(values) if values is not None else {_key(r, cols) for r in rows}


def _values(rows: list[Record], cols: list[int]) -> list[Key] | None:
    """Each row's ``Key`` of the cells in ``cols``, when every row has them (None when a row is short: it is then
    taken a cell at a time, a missing cell as "")."""
    if not cols or (rows and min(map(len, rows)) <= max(cols)):
        return None
    if len(cols) == 1:
        return list(map(operator.itemgetter(cols[0]), rows))
    return list(zip(*(map(operator.itemgetter(c), rows) for c in cols), strict=True))


def _key(row: Record, cols: list[int]) -> Key:
    """A row's ``Key`` of the cells in ``cols``, a missing cell as ""."""
    if len(cols) == 1:
        return row[cols[0]] if cols[0] < len(row) else ""
    return tuple(row[c] if c < len(row) else "" for c in cols)


def _cells(key: Key) -> Record:
    """The cells of a ``Key``."""
    return (key,) if isinstance(key, str) else key


def _cross_row(f: _File, header: Record, rows: list[Record], keys_of: Callable[[str, list[str]], KeySet]) -> list[tuple[int, str]]:
    """Primary key, unique fields and foreign keys over every row of ``f`` (``keys_of``: a referenced file's keys)."""
    problems: list[tuple[int, str]] = []
    missing = _missing(f.schema)
    uniques = [[k] for k in (x["name"] for x in f.schema.get("fields", []) if x.get("constraints", {}).get("unique"))]
    pk = _key_fields(f.schema.get("primaryKey"))
    for names, what in [(pk, "primary key")] * bool(pk) + [(u, "unique field") for u in uniques]:
        cols = _columns(header, names)
        if cols is None:
            continue  # a missing column is Frictionless's label error
        values = _values(rows, cols)
        if values is not None and len(set(values)) == len(values):
            continue  # no value repeats
        seen: dict[Key, int] = {}
        for n, row in enumerate(rows, start=2):
            value = _key(row, cols)
            if all(v in missing for v in _cells(value)):
                continue
            if value in seen:
                problems.append((n, f"row {n}: {what} {', '.join(names)} = {', '.join(_cells(value))} repeats row {seen[value]}"))
            else:
                seen[value] = n
    for fk in f.schema.get("foreignKeys", []):
        names, ref = _key_fields(fk.get("fields")), fk.get("reference", {})
        cols = _columns(header, names)
        ref_fields = _key_fields(ref.get("fields"))
        target = (f.path, _key_values(header, rows, ref_fields)) if not ref.get("resource") else keys_of(str(ref["resource"]), ref_fields)
        if cols is None:
            continue  # Frictionless's label error
        path, keys = target if target is not None else ("", None)
        if keys is None:
            problems.append((0, f"foreign key {', '.join(names)}: {ref.get('resource')} has no column {', '.join(ref_fields)}"))
            continue
        if len(cols) != len(ref_fields):
            keys = set()  # (no value is a key of another width)
        values = _values(rows, cols)
        if values is not None and all(all(v in missing for v in _cells(value)) for value in set(values) - keys):
            continue  # every value is a key of the referenced file, or missing
        for n, row in enumerate(rows, start=2):
            value = _key(row, cols)
            if not all(v in missing for v in _cells(value)) and value not in keys:
                problems.append((n, f"row {n}: foreign key {', '.join(names)} = {', '.join(_cells(value))} is not in {path}"))
    return problems


#: what ``frictionless_errors`` gives: (row number, or None; field; message) each
Found = list[tuple[int | None, str, str]]

#: records Frictionless checks in one piece of work (a worker process's share when there are workers)
CHUNK = 20_000


@collection_paused()
def frictionless_errors(header: Record, records: list[Record], schema: dict[str, Any]) -> Found:
    """Frictionless's findings on ``records`` under ``schema`` less what spans rows: (row number, the header's being 1,
    or None; field; message) each.  Plain data in and out, for a worker process."""
    from frictionless import Resource, Schema

    # the rows from a function, not in a list: Frictionless deep-copies a list of inline data (a sixth of its time)
    report = Resource(data=lambda: itertools.chain((header,), records), schema=Schema.from_descriptor(_row_schema(schema))).validate()
    out: Found = []
    for task in report.tasks:
        for e in task.errors:
            row = getattr(e, "row_number", None)
            cell = getattr(e, "field_name", "") or ""
            if row is None or not 2 <= row < len(records) + 2:
                out.append((None, "", e.message))
            else:
                out.append((row, cell, f"{e.title}: {e.note}"))
    return out + [(None, "", e.message) for e in report.errors]


#: records of one schema not validated before, by header: the files with that header, and each record with the file
#: and row that hold it first
Pending = dict[Record, tuple[list[_File], dict[Record, tuple[_File, int]]]]


def _validate_records(pending: Pending, schema: dict[str, Any], pool: Executor | None) -> None:
    """Frictionless on ``pending`` records, in pieces of ``CHUNK`` rows, given to ``pool``'s worker processes when
    there is one; each problem goes to the file (and row) holding the record.

    Records under a header that is the schema's own field names are checked a column at a time (``_column_tables``):
    Frictionless sees each distinct value of a column once.  Records of another width, blank ones, and every record
    under any other header go to Frictionless whole, as they are."""
    names = tuple(str(x["name"]) for x in schema.get("fields", []))
    missing = _missing(schema)
    jobs: list[tuple[tuple[Any, ...], Future[Any] | None, Callable[[Found], None]]] = []

    def add(args: tuple[Any, ...], handle: Callable[[Found], None]) -> None:
        jobs.append((args, submitted(pool, frictionless_errors, *args) if len(args[1]) > CHUNK // 10 else None, handle))

    def whole(header: Record, holders: list[_File], where: dict[Record, tuple[_File, int]], records: list[Record]) -> None:
        for start in range(0, max(len(records), 1), CHUNK):
            piece = records[start : start + CHUNK]
            add((header, piece, schema), functools.partial(_record_errors, holders, where, piece, start == 0))

    for header, (holders, where) in pending.items():
        records = list(where)
        if not records and header == names:
            continue
        if header != names or not records:
            whole(header, holders, where, records)
            continue
        odd = [r for r in records if len(r) != len(names) or missing.issuperset(r)]
        if odd:
            whole(header, holders, where, odd)
            records = [r for r in records if len(r) == len(names) and not missing.issuperset(r)]
        if records:
            check = _ColumnCheck(names, records, where, functools.partial(whole, header, holders, where, records))
            for args, handle in check.pieces(_row_schema(schema)):
                add(args, handle)
            jobs.append(((), None, check.finish))  # once its pieces are in: the records' problems, or whole records
    while jobs:  # (a fallback may add jobs)
        args, done, handle = jobs.pop(0)
        if not args:
            handle([])
            continue
        try:
            errors = done.result() if done is not None else frictionless_errors(*args)
        except Exception:  # a worker that died: the piece is checked here
            errors = frictionless_errors(*args)
        handle(errors)


def _record_errors(holders: list[_File], where: dict[Record, tuple[_File, int]], piece: list[Record], first: bool, errors: Found) -> None:
    """Frictionless's findings on a piece of whole records, to the files holding them."""
    for number, cell, message in errors:
        if number is None:
            if first:  # a header's problem, reported once for each file with that header
                for f in holders:
                    f.problems.append((0, message))
            continue
        f, n = where[piece[number - 2]]
        f.problems.append((n, f"row {n}{', field ' + cell if cell else ''}: {message}"))


#: a column's name in the tables ``_ColumnCheck`` makes that no schema field has, and the value it holds
SPARE, SPARE_VALUE = "\u2063spare", "x"


class _ColumnCheck:
    """Records of a schema's width checked a column at a time.  A cell's verdict depends on its field alone (types,
    formats, constraints: the row-spanning ones are checked apart), so each distinct value of a column is judged
    once, by the cell reader Frictionless's row checks call (``faulted``), and the values it finds fault with are
    given to Frictionless, which words the problems.  Columns of about as many such values share a table (each its
    own field), padded with their first value (padding's findings are ignored), beside a spare column that keeps every
    row from being blank.  A finding Frictionless ties to no cell of a column sends the records to it whole (``fallback``)."""

    def __init__(self, names: Record, records: list[Record], where: dict[Record, tuple[_File, int]], fallback: Callable[[], None]) -> None:
        self.names, self.records, self.where, self.fallback = names, records, where, fallback
        self.values = [list(dict.fromkeys(column)) for column in zip(*records, strict=True)]
        self.bad: list[dict[str, list[str]]] = [{} for _ in names]
        self.unexpected = False

    def pieces(self, row_schema: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], Callable[[Found], None]]]:
        fields = {str(x["name"]): x for x in row_schema.get("fields", [])}
        faults = faulted(row_schema)  # only what Frictionless's own cell readers find fault with goes to Frictionless
        self.values = [faults[self.names[j]](values) for j, values in enumerate(self.values)]
        buckets: dict[int, list[int]] = {}
        for j, values in enumerate(self.values):
            if values:
                buckets.setdefault(len(values).bit_length(), []).append(j)
        spare_field = {"name": SPARE, "type": "string"}
        for columns in buckets.values():
            schema = {**row_schema, "fields": [fields[self.names[j]] for j in columns] + [spare_field]}
            header = (*(self.names[j] for j in columns), SPARE)
            height = max(len(self.values[j]) for j in columns)
            for start in range(0, height, CHUNK):
                rows = [
                    (*(v[k] if k < len(v) else v[0] for v in (self.values[j] for j in columns)), SPARE_VALUE)
                    for k in range(start, min(height, start + CHUNK))
                ]
                yield (header, rows, schema), functools.partial(self._found, columns, start)

    def _found(self, columns: list[int], start: int, errors: Found) -> None:
        by_name = {self.names[j]: j for j in columns}
        for number, cell, message in errors:
            j = by_name.get(cell)
            if number is None or j is None:
                self.unexpected = True
                continue
            k = start + number - 2
            if k < len(self.values[j]):
                self.bad[j].setdefault(self.values[j][k], []).append(message)

    def finish(self, errors: Found) -> None:
        if self.unexpected:
            self.fallback()
            return
        wrong = [j for j, bad in enumerate(self.bad) if bad]
        for record in self.records if wrong else ():
            found = [(j, self.bad[j][record[j]]) for j in wrong if record[j] in self.bad[j]]
            if found:
                f, n = self.where[record]
                f.problems += [(n, f"row {n}, field {self.names[j]}: {message}") for j, messages in found for message in messages]


#: by format: values that format's check in Frictionless always accepts.  A UUID as ``uuid`` writes it (the check is
#: ``validators.uuid``); an http(s) URL of a plain host with no user information, spaces or non-ASCII characters (the
#: check is rfc3986's: a scheme, and no password)
SURE = {
    "uuid": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "uri": re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!-?A-~]*)?"),
    # a plain address: at most 64 characters of dot-separated words before the @, a domain of at most 253 characters
    # in labels of at most 63 (letters, digits, inner hyphens) and a top-level domain of letters (``validators.email``
    # takes more; at 535k listings, judging 182k addresses with it took about 1.5 s)
    "email": re.compile(
        r"(?=[^@]{1,64}@)[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?=[^@]{1,253}$)"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    ),
}


def faulted(row_schema: dict[str, Any]) -> dict[str, Callable[[list[str]], list[str]]]:
    """By field name: the values of a list that Frictionless finds fault with in that field.

    The verdict on each value is that of the cell reader Frictionless makes of the field (``Field.create_cell_reader``:
    missing values, type and format, constraints), which its row checks call on each cell and take every cell's
    problems from.  A string that the field's format surely accepts (``SURE``) is judged by the field without its
    format: those checks run at a tenth of the speed, and at 535k listings HSDS holds millions of ids and URLs.  A
    field that takes any string (``_plain``) finds fault with its missing values only, and only when it is required:
    no reader is called for the others (most of the HSDS tables' columns, millions of distinct values)."""
    from frictionless import Schema

    fields = row_schema.get("fields", [])
    readers = [f.create_cell_reader() for f in Schema.from_descriptor(row_schema).fields]
    unformatted = {**row_schema, "fields": [{k: v for k, v in f.items() if k != "format"} for f in fields]}
    plain_fields = Schema.from_descriptor(unformatted).fields
    out: dict[str, Callable[[list[str]], list[str]]] = {}
    for f, read, unformatted_field in zip(fields, readers, plain_fields, strict=True):
        without_format = unformatted_field.create_cell_reader()
        sure = SURE.get(f.get("format", "")) if f.get("type") == "string" else None
        plain = _plain(unformatted_field, without_format)  # without the format: any string
        missing = plain if plain is not None and unformatted_field.required else frozenset()
        if plain is not None and (f.get("format") or "default") == "default":
            judge = functools.partial(_missing_faults, missing)
        elif plain is not None and sure is not None:
            judge = functools.partial(_sure_plain_faults, read, missing, sure)
        elif sure is not None:
            judge = functools.partial(_sure_faults, read, without_format, sure)
        else:
            judge = functools.partial(_faults, read)
        out[str(f["name"])] = judge
    return out


CellReader = Callable[[str], tuple[Any, Any]]
#: strings ``_plain`` tries a field's reader on: when it takes them as a plain string field would, it is one
PROBES = ("", " ", "x", "NA", "N/A", "-", "null", "None", "0", "ä", "a,b", 'a"b', "\n")


def _plain(field: Any, read: CellReader) -> frozenset[str] | None:
    """The missing values of a field that takes any string (type string, no format, no constraint but ``required``):
    its reader makes a missing value None, finds fault with None when the field is required, and gives any other
    string back as it is.  None for any other field (its reader judges each value).  The reader is tried on a few
    strings (``PROBES``) and on the missing values: a Frictionless that judged otherwise would have its reader called."""
    try:
        constraints = {k for k, v in (field.constraints or {}).items() if v is not None}
        if field.type != "string" or (field.format or "default") != "default" or not constraints <= {"required"}:
            return None
        missing = field.missing_values if field.has_defined("missing_values") or not field.schema else field.schema.missing_values
        missing = frozenset(str(m) for m in missing)
        required = bool(field.required)
        for value in (*PROBES, *missing):
            cell, notes = read(value)
            if value in missing:
                if cell is not None or bool(notes) != required:
                    return None
            elif cell != value or notes:
                return None
        return missing
    except Exception:  # a Frictionless of other ways: its readers judge
        return None


def _missing_faults(missing: frozenset[str], values: list[str]) -> list[str]:
    return [v for v in values if v in missing] if missing else []


def _faults(read: CellReader, values: list[str]) -> list[str]:
    return [v for v in values if read(v)[1] is not None]


def _sure_faults(read: CellReader, without_format: CellReader, sure: re.Pattern[str], values: list[str]) -> list[str]:
    accepted = sure.fullmatch
    return [v for v in values if without_format(v)[1] is not None or (accepted(v) is None and read(v)[1] is not None)]


def _sure_plain_faults(read: CellReader, missing: frozenset[str], sure: re.Pattern[str], values: list[str]) -> list[str]:
    """``_sure_faults`` of a field that, without its format, takes any string (``_plain``): ``missing`` is its missing
    values when it is required, else empty."""
    accepted = sure.fullmatch
    return [v for v in values if v in missing or (accepted(v) is None and read(v)[1] is not None)]


def ready_to_check() -> None:
    """Import what a package's check needs (a worker given it at once, ``warmed``, is ready when the check comes)."""
    import frictionless  # noqa: F401
    import pyarrow.csv  # noqa: F401


def warmed(pool: Executor | None) -> Future[Any] | None:
    """A worker of ``pool`` started and ready to check a package (``ready_to_check``), while its caller builds it."""
    return submitted(pool, ready_to_check)


def submitted(pool: Executor | None, fn: Callable[..., Any], *args: Any) -> Future[Any] | None:
    """``pool.submit(fn, *args)``, or None (do it here) when there is no pool or it cannot take work (a broken
    pool, or a daemonic process, which may not start children)."""
    if pool is None:
        return None
    try:
        return pool.submit(fn, *args)
    except Exception:
        return None


def submitted_in_turn(pool: Executor | None, fn: Callable[..., Any], args: list[Callable[[], tuple[Any, ...]]]) -> list[Future[Any] | None]:
    """``fn(*make())`` for each of ``args`` in ``pool``, in turn: a piece's arguments are made (``make()``) only when
    one submitted before it is done, so that no more than one more than the pool's workers wait with theirs.  All
    None when there is no pool; a piece the pool refuses is a future holding the error (its work is then done here).

    ``args`` is emptied as the pieces are submitted: nothing here holds a piece's ``make`` (nor what it would make
    from, a release's listings) once it is sent, nor its result once the caller lets go of the futures (the pool may
    hold its last work items, and their callbacks, long after)."""
    if pool is None:
        return [None] * len(args)
    out: list[Future[Any]] = [Future() for _ in args]
    waiting = list(zip(out, args, strict=True))[::-1]  # taken from the end: the first piece first
    args.clear()
    lock = threading.Lock()

    def start() -> None:
        with lock:
            item = waiting.pop() if waiting else None
        if item is None:
            return
        into, make = item
        del item
        try:
            running = pool.submit(fn, *make())
        except Exception as exc:  # a broken pool: this piece and those after it fail, to be done by the caller
            into.set_exception(exc)
            start()
            return
        finally:
            del make
        running.add_done_callback(functools.partial(_done, weakref.ref(into), start))

    for _ in range(getattr(pool, "_max_workers", 1) + 1):  # (the worker count of concurrent.futures' pools)
        start()
    return list(out)


def _done(into_ref: Callable[[], Future[Any] | None], then: Callable[[], None], done: Future[Any]) -> None:
    into = into_ref()
    if into is None:  # (the caller let go of it: nobody wants the result)
        pass
    elif done.cancelled():  # (a pool shut down early)
        into.cancel()
    elif (error := done.exception()) is not None:
        into.set_exception(error)
    else:
        into.set_result(done.result())
    then()


@contextlib.contextmanager
def workers(wanted: bool = True) -> Iterator[Executor | None]:
    """Worker processes for Frictionless (from multiprocessing's fork server), when ``wanted`` and there are several
    CPUs; None otherwise, or when they cannot be started (the work is then done in this process)."""
    from schemas.distinct import PROCESS_MAX_WORKERS, _cpus

    count = min(_cpus(), PROCESS_MAX_WORKERS)
    pool = None
    if wanted and count >= 2:
        try:
            pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("forkserver"))
        except Exception:
            pool = None
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@collection_paused()  # millions of records, tuples that never form cycles
def check_package(
    descriptor: Path,
    label: str,
    unchanged: frozenset[str] = frozenset(),
    previous: Path | None = None,
    previous_sha256: dict[str, str] | None = None,
    pool: Executor | None = None,
) -> list[str]:
    """Problems of a package's CSV files against its descriptor (Frictionless), each as ``<label><path>: ...``.

    ``unchanged``: the release's files (paths from its root; the package's folder is ``label``) that are byte for byte
    those of the verified release before it, at ``previous`` (its files' sha256 by path: ``previous_sha256``).  When the
    descriptor is among them, only the files that changed and those referencing one that lost key values are
    examined, and their records the previous release held are not validated again.
    """
    from frictionless import FrictionlessException, Package

    try:
        package = Package(str(descriptor))
        resources = [(r.name, str(r.path), r.schema.to_descriptor()) for r in package.resources if r.path and r.schema]
    except FrictionlessException as exc:
        return [f"{label}{descriptor.name}: {exc.error.message}"]
    folder = descriptor.parent
    try:  # schema files the descriptor names by path must be unchanged too
        schema_files = {r["schema"] for r in orjson.loads(descriptor.read_bytes()).get("resources", []) if isinstance(r.get("schema"), str)}
    except (OSError, ValueError, AttributeError, TypeError):
        schema_files = {"?"}
    same_package = previous is not None and all(label + name in unchanged for name in (descriptor.name, *schema_files))
    files = {name: _File(name, path, schema) for name, path, schema in resources}
    # the files that changed (all of them, unless the package is the verified release's) and those referencing one
    changed = {n for n, f in files.items() if not same_package or label + f.path not in unchanged}
    examined = changed | {
        n for n, f in files.items() for fk in f.schema.get("foreignKeys", []) if fk.get("reference", {}).get("resource") in changed
    }
    if clean_by_columns(folder, files, examined):
        return []  # each file examined passes every check below (what it cannot tell, they do)
    problems: list[str] = []
    unreadable: set[str] = set()

    def parsed(name: str, old: bool = False, same: dict[Record, Record] | None = None) -> tuple[Record, list[Record]] | None:
        """A file's header and rows (``old``: as the verified release held it, if still intact), read anew each time:
        a big release's tables are not all held at once.  ``same``: ``read_records``'s."""
        f = files[name]
        if old:
            records = _previous_records(previous, label + f.path, previous_sha256 or {}) if same_package and previous else None
        else:
            try:
                records = read_records((folder / f.path).read_bytes(), same=same)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                if name not in unreadable:
                    problems.append(f"{label}{f.path}: cannot be read as UTF-8 CSV ({exc})")
                    unreadable.add(name)
                return None
        if records is None:
            return None
        header, rows = (records[0], records[1:]) if records else ((), [])
        for fields in referenced.get(name, ()):  # kept now: the file need not be read again for them
            if (name, fields, old) not in key_sets:
                key_sets[name, fields, old] = _key_values(header, rows, list(fields))
        return header, rows

    key_sets: dict[tuple[str, tuple[str, ...], bool], set[Key] | None] = {}
    referenced: dict[str, set[tuple[str, ...]]] = {}  # the fields by which other files reference a file
    for f in files.values():
        for fk in f.schema.get("foreignKeys", []):
            ref = fk.get("reference", {})
            if ref.get("resource"):
                referenced.setdefault(str(ref["resource"]), set()).add(tuple(_key_fields(ref.get("fields"))))

    def keys_of(name: str, fields: list[str], old: bool = False) -> KeySet:
        """A file's values of ``fields`` (``old``: the verified release's), read once for every file referencing it."""
        if name not in files:
            return None
        if (name, tuple(fields), old) not in key_sets:
            got = parsed(name, old)
            key_sets[name, tuple(fields), old] = None if got is None else _key_values(got[0], got[1], fields)
        return files[name].path, key_sets[name, tuple(fields), old]

    def lost_keys(name: str, fields: list[str]) -> bool:
        """Whether a changed file lost key values of ``fields`` that the verified release's file held (files
        referencing it by them that did not change are then examined again; else their references still hold)."""
        old, new = keys_of(name, fields, old=True), keys_of(name, fields)
        return old is None or new is None or old[1] is None or new[1] is None or not old[1] <= new[1]

    def examine(names: set[str]) -> None:
        groups: dict[str, list[_File]] = {}
        for name in sorted(names, key=lambda n: (n not in referenced, n)):  # files others reference first (their keys kept)
            groups.setdefault(files[name].schema_key, []).append(files[name])
        for members in groups.values():  # a schema's files at a time: the records of one table are held, then let go
            passed: dict[Record, Record] = {}  # the records the verified release held, each by itself
            for f in members:
                old_rows = (parsed(f.name, old=True) or ((), []))[1]
                passed.update(zip(old_rows, old_rows, strict=True))
                del old_rows
            pending: Pending = {}
            for f in members:
                got = parsed(f.name, same=passed or None)  # a record as it was is held once (none to look up: no look-up)
                if got is None:
                    continue
                header, rows = got
                holders, where = pending.setdefault(header, ([], {}))
                holders.append(f)
                for n, row in enumerate(rows, start=2):
                    if row not in passed and row not in where:
                        where[row] = (f, n)
                f.problems += _cross_row(f, header, rows, keys_of)
            del passed
            _validate_records(pending, members[0].schema, pool)

    # the files that changed first: reading them (as they are and as they were) gives the key values that tell
    # which of the files referencing them, unchanged, are examined too
    examine(changed)
    referencing = set()
    for n, f in files.items():
        for fk in f.schema.get("foreignKeys", []) if n not in changed else ():
            ref = fk.get("reference", {}).get("resource")
            if ref in changed and lost_keys(ref, _key_fields(fk["reference"].get("fields"))):
                referencing.add(n)
    examine(referencing)
    examined = changed | referencing
    for f in sorted((files[n] for n in examined), key=lambda f: f.name):
        f.problems.sort(key=lambda p: p[0])  # the whole file's problems first, then by row
        problems += [f"{label}{f.path}: {text}" for _, text in f.problems[:SHOWN]]
        if len(f.problems) > SHOWN:
            problems.append(f"{label}{f.path}: and {len(f.problems) - SHOWN} more problems")
    return problems


#: by format (``SURE``): the same pattern for Arrow's regular expressions (RE2), matched against the whole value
SURE_RE2 = {name: f"^(?:{pattern.pattern})$" for name, pattern in SURE.items() if "(?=" not in pattern.pattern}


@collection_paused()
def clean_by_columns(folder: Path, files: dict[str, _File], examined: set[str] | None = None) -> bool:
    """Whether every file of a package (or each of ``examined``, with the files they reference, and those these
    reference) surely passes ``check_package``'s checks, told a column at a time by Arrow.

    True only when, for every such file: its bytes read as UTF-8 CSV (no byte-order mark, no NUL byte); its header is its
    schema's field names; no row is of another width or blank; each distinct value of a column is one its field's
    judge (``faulted``) finds no fault with; primary keys and unique fields do not repeat (missing values aside);
    and each foreign key of one field is missing or a value of the field it references.  Those are the checks that
    ``check_package`` makes row by row, here in C: reading the HSDS package of 534k listings and telling each
    distinct value apart took 15.6 s there.  Anything else (a fault, a key of several fields, a file Arrow reads
    otherwise or not at all, missing values without "") gives False, and the files are checked row by row, which
    finds and words every problem.  Arrow's reader splits records as Python's ``csv`` module does, quoted line breaks
    and quotes inside cells included (tests hold the two to the same verdict on broken files); an empty line, which
    ``csv`` reads as a record of no cells and Arrow as one of empty cells, is blank here either way."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
    except ImportError:  # (pyarrow is a dependency: never, unless it is broken)
        return False
    judges: dict[str, dict[str, Callable[[list[str]], list[str]]]] = {}  # by schema
    references: dict[tuple[str, str], Any] = {}  # (file, field) -> the distinct values other files reference
    wanted: set[tuple[str, str]] = set()
    links: list[tuple[Any, set[str], str, str]] = []  # (a foreign key's distinct values, missing, file, field)
    todo = set(files) if examined is None else set(examined)
    growing = list(todo)
    while growing:  # the files referenced, which give the keys
        f = files[growing.pop()]
        for fk in f.schema.get("foreignKeys", []):
            ref = fk.get("reference", {})
            target = str(ref.get("resource") or f.name)  # (no resource: the file itself)
            fields, ref_fields = _key_fields(fk.get("fields")), _key_fields(ref.get("fields"))
            if len(fields) != 1 or len(ref_fields) != 1 or target not in files:
                return False
            wanted.add((target, ref_fields[0]))
            if target not in todo:
                todo.add(target)
                growing.append(target)
    try:
        for f in (f for name, f in files.items() if name in todo):
            data = (folder / f.path).read_bytes()
            names = [str(x["name"]) for x in f.schema.get("fields", [])]
            missing = _missing(f.schema)
            if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data or "" not in missing or len(set(names)) != len(names) or not all(names):
                return False
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(use_threads=False, block_size=32 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
            del data
            if table.column_names != names:
                return False
            absent = pa.array(sorted(missing), pa.string())
            distinct = {name: pc.unique(table.column(name)) for name in names}
            # how many of each column's distinct values are missing ones (a column with none has no blank row)
            gone = {name: pc.sum(pc.is_in(values, value_set=absent)).as_py() or 0 for name, values in distinct.items()}
            if all(gone.values()):  # (no column without missing values: each row is looked at)
                blank = functools.reduce(pc.and_, (pc.is_in(column, value_set=absent) for column in table.columns))
                if pc.any(blank).as_py():
                    return False
            judge = judges.get(f.schema_key) or judges.setdefault(f.schema_key, faulted(_row_schema(f.schema)))
            if any(_faults_found(judge[name], values, absent) for name, values in distinct.items()):
                return False
            pk = _key_fields(f.schema.get("primaryKey"))
            uniques = [[str(x["name"])] for x in f.schema.get("fields", []) if x.get("constraints", {}).get("unique")]
            for key in [pk] * bool(pk) + uniques:
                if len(key) != 1:
                    return False
                column = table.column(key[0])
                present = len(column) - (pc.sum(pc.is_in(column, value_set=absent)).as_py() or 0 if gone[key[0]] else 0)
                if len(distinct[key[0]]) - gone[key[0]] != present:  # a value that is not missing repeats
                    return False
            for fk in f.schema.get("foreignKeys", []):
                ref = fk.get("reference", {})
                links.append(
                    (
                        distinct[_key_fields(fk.get("fields"))[0]],
                        missing,
                        str(ref.get("resource") or f.name),
                        _key_fields(ref.get("fields"))[0],
                    )
                )
            for name, field in wanted:
                if name == f.name:
                    references[name, field] = distinct[field]
            del table, distinct
        # each foreign key's values but its missing ones, looked up with those of every key referencing the same
        # field at once (a lookup builds its set of the referenced values: the HSDS package's 31 keys, each on its
        # own, took 1.65 s at 534k listings)
        referencing: dict[tuple[str, str], list[Any]] = {}
        for values, unset, name, field in links:
            if unset:
                values = pc.filter(values, pc.invert(pc.is_in(values, value_set=pa.array(sorted(unset), pa.string()))))
            referencing.setdefault((name, field), []).append(values)
        for (name, field), parts in referencing.items():
            values = pa.chunked_array(parts, pa.string())
            if len(values) and not pc.all(pc.is_in(values, value_set=references[name, field])).as_py():  # (``all`` of nothing is null)
                return False
    except Exception:  # unreadable, or read otherwise: row by row
        return False
    return True


def _faults_found(judge: Callable[[list[str]], list[str]], values: Any, absent: Any) -> bool:
    """Whether ``judge`` (``faulted``'s) finds fault with any of ``values`` (an Arrow array of distinct strings; ``absent``:
    the missing values).  A field whose faults are its missing values alone, or those and values its format may not
    take, is judged on those values only (Arrow finds them); any other field on every value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    made: functools.partial[list[str]] | None = judge if isinstance(judge, functools.partial) else None
    kind = made.func if made is not None else None
    if made is not None and kind is _missing_faults:
        return bool(made.args[0]) and bool(pc.any(pc.is_in(values, value_set=pa.array(sorted(made.args[0]), pa.string()))).as_py())
    if made is not None and kind is _sure_plain_faults:
        sure = made.args[2]
        pattern = next((SURE_RE2[k] for k, v in SURE.items() if v is sure and k in SURE_RE2), None)
        if pattern is not None:  # the values its format surely takes are fine unless missing: the others are judged
            taken = pc.and_(pc.match_substring_regex(values, pattern), pc.invert(pc.is_in(values, value_set=absent)))
            values = pc.filter(values, pc.invert(taken))
    return bool(judge(values.to_pylist()))


def checked_apart(
    descriptor: Path, label: str, unchanged: frozenset[str], previous: Path | None, previous_sha256: dict[str, str] | None
) -> list[str]:
    """``check_package`` in a worker process, which then hands the heap it freed back to the system (its records are
    not held while the worker waits, beside the process that is still building or checking)."""
    problems = check_package(descriptor, label, unchanged, previous, previous_sha256)
    give_back_freed_memory()
    return problems


def locations_checked_apart(
    descriptor: Path, label: str, unchanged: frozenset[str], previous: Path | None, previous_sha256: dict[str, str] | None
) -> list[str]:
    """``checked_apart`` of a release's own package (its location files), told apart from its HSDS package's."""
    return checked_apart(descriptor, label, unchanged, previous, previous_sha256)


def _previous_records(previous: Path, rel: str, sha256: dict[str, str]) -> list[Record] | None:
    """The records (header first) of a file of the verified release, if it is still the file that was verified."""
    try:
        data = (previous / rel).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha256.get(rel):
        return None
    try:
        return read_records(data)
    except (UnicodeDecodeError, csv.Error):
        return None
