"""Frictionless checks of a release's CSV files, giving each distinct record to Frictionless once.

Whether a row passes its Table Schema (types, formats, ``required``, ``pattern``, ``enum``, the number of cells) depends
on the row and the schema alone.  So each distinct record of a schema is validated once, however many files hold it
(a worldwide listing's row is in every location file), and, with the release before it, the records that release
held under the same schema files are not validated again.  What spans rows is checked here on every row of every
file examined: primary keys and ``unique`` fields, and foreign keys (look-ups in the referenced file's keys, where
Frictionless reads the referenced file again for each resource).  The header of each file goes to Frictionless with
its records.

A file is examined when it is not byte for byte the verified release's, or when a resource it references is.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

Record = tuple[str, ...]
#: problems shown per file (as Frictionless's own report, the rest are left out)
SHOWN = 5


@dataclass
class _File:
    name: str  # the resource's name
    path: str  # from the package's folder
    schema: dict[str, Any]
    header: Record = ()
    rows: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_records(data: bytes) -> list[Record]:
    """The records of a CSV file (UTF-8, comma, double quotes; cells may hold line breaks)."""
    return [tuple(r) for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]


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


def _cross_row(f: _File, files: dict[str, _File]) -> list[str]:
    """Primary key, unique fields and foreign keys over every row of ``f``."""
    problems: list[str] = []
    missing = _missing(f.schema)
    uniques = [[k] for k in (x["name"] for x in f.schema.get("fields", []) if x.get("constraints", {}).get("unique"))]
    pk = _key_fields(f.schema.get("primaryKey"))
    for names, what in [(pk, "primary key")] * bool(pk) + [(u, "unique field") for u in uniques]:
        cols = _columns(f.header, names)
        if cols is None:
            continue  # a missing column is Frictionless's label error
        seen: dict[Record, int] = {}
        for n, row in enumerate(f.rows, start=2):
            value = tuple(row[c] if c < len(row) else "" for c in cols)
            if all(v in missing for v in value):
                continue
            if value in seen:
                problems.append(f"row {n}: {what} {', '.join(names)} = {', '.join(value)} repeats row {seen[value]}")
            else:
                seen[value] = n
    for fk in f.schema.get("foreignKeys", []):
        names, ref = _key_fields(fk.get("fields")), fk.get("reference", {})
        target = f if not ref.get("resource") else files.get(str(ref["resource"]))
        cols = _columns(f.header, names)
        if target is None or cols is None:
            problems.append(f"foreign key {names} references {ref.get('resource')!r}, which is not a table of the package")
            continue
        ref_cols = _columns(target.header, _key_fields(ref.get("fields")))
        if ref_cols is None:
            problems.append(f"foreign key {names}: {ref.get('resource')} has no column {ref.get('fields')}")
            continue
        keys = {tuple(r[c] if c < len(r) else "" for c in ref_cols) for r in target.rows}
        for n, row in enumerate(f.rows, start=2):
            value = tuple(row[c] if c < len(row) else "" for c in cols)
            if not all(v in missing for v in value) and value not in keys:
                problems.append(f"row {n}: foreign key {', '.join(names)} = {', '.join(value)} is not in {target.path}")
    return problems


def _validate_records(files: list[_File], verified: dict[str, set[Record]]) -> None:
    """Frictionless on each distinct record of these files not in ``verified`` (by schema); problems go to the file
    that holds the record first."""
    from frictionless import Resource, Schema

    groups: dict[tuple[str, Record], list[_File]] = {}
    for f in files:
        groups.setdefault((orjson.dumps(f.schema, option=orjson.OPT_SORT_KEYS).decode(), f.header), []).append(f)
    for (key, header), members in groups.items():
        passed = verified.get(key, set())
        where: dict[Record, tuple[_File, int]] = {}
        for f in members:
            for n, row in enumerate(f.rows, start=2):
                if row not in passed and row not in where:
                    where[row] = (f, n)
        records = list(where)
        if not records and header == tuple(x["name"] for x in members[0].schema.get("fields", [])):
            continue
        report = Resource(
            data=[list(header), *map(list, records)], schema=Schema.from_descriptor(_row_schema(members[0].schema))
        ).validate()
        for task in report.tasks:
            for e in task.errors:
                row_number = getattr(e, "row_number", None)
                if row_number is None or not 2 <= row_number < len(records) + 2:
                    for f in members:
                        f.problems.append(e.message)
                    continue
                f, n = where[records[row_number - 2]]
                cell = getattr(e, "field_name", "") or ""
                f.problems.append(f"row {n}{', field ' + cell if cell else ''}: {e.title}: {e.note}")
        for e in report.errors:
            members[0].problems.append(e.message)


def check_package(
    descriptor: Path,
    label: str,
    unchanged: frozenset[str] = frozenset(),
    previous: Path | None = None,
    previous_sha256: dict[str, str] | None = None,
) -> list[str]:
    """Problems of a package's CSV files against its descriptor (Frictionless), each as ``<label><path>: ...``.

    ``unchanged``: the release's files (paths from its root; the package's folder is ``label``) that are byte for byte
    those of the verified release before it, at ``previous`` (its files' sha256 by path: ``previous_sha256``).  When the
    descriptor is among them, only the files that changed and those referencing one are examined, and their records
    the previous release held are not validated again.
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
    changed = {n for n, f in files.items() if not same_package or label + f.path not in unchanged}
    examined = changed | {
        n for n, f in files.items() for fk in f.schema.get("foreignKeys", []) if fk.get("reference", {}).get("resource") in changed
    }
    needed = examined | {
        str(fk["reference"]["resource"])
        for n in examined
        for fk in files[n].schema.get("foreignKeys", [])
        if fk.get("reference", {}).get("resource")
    }
    problems: list[str] = []
    for name in sorted(needed):
        f = files.get(name)
        if f is None:
            continue
        try:
            records = read_records((folder / f.path).read_bytes())
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            problems.append(f"{label}{f.path}: cannot be read as UTF-8 CSV ({exc})")
            examined.discard(name)
            continue
        f.header, f.rows = (records[0], records[1:]) if records else ((), [])
    verified: dict[str, set[Record]] = {}
    if same_package and previous is not None:
        for name in examined:
            f = files[name]
            key = orjson.dumps(f.schema, option=orjson.OPT_SORT_KEYS).decode()
            verified.setdefault(key, set()).update(_previous_records(previous, label + f.path, previous_sha256 or {}))
    examined_files = [files[n] for n in sorted(examined)]
    _validate_records(examined_files, verified)
    for f in examined_files:
        f.problems += _cross_row(f, files)
        problems += [f"{label}{f.path}: {p}" for p in f.problems[:SHOWN]]
        if len(f.problems) > SHOWN:
            problems.append(f"{label}{f.path}: and {len(f.problems) - SHOWN} more problems")
    return problems


def _previous_records(previous: Path, rel: str, sha256: dict[str, str]) -> Iterable[Record]:
    """The records of a file of the verified release, if it is still the file that was verified."""
    try:
        data = (previous / rel).read_bytes()
    except OSError:
        return ()
    if hashlib.sha256(data).hexdigest() != sha256.get(rel):
        return ()
    try:
        return read_records(data)[1:]
    except (UnicodeDecodeError, csv.Error):
        return ()
