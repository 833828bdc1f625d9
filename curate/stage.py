"""Staging: a source's raw table renamed to contract columns and normalised (no merging here).

``stage_listings`` is pure: it takes the raw frame (strings as read) and the
source's options and returns the staged frame (one row per raw row, canonical
values, ``_row`` kept) and the problems staging itself finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from curate import normalise as n
from curate.problems import Problem, problem
from curate.read import ROW
from curate.sources import SourceOptions
from schemas.fields import BY_NAME, CURATOR_COLUMNS, FIELDS, STAGED_COLUMNS
from schemas.vocabularies import vocabulary_key

#: How a row is recognised in the next version of its source: its record_id, or its name and country.
MATCH = "_match"

T = TypeVar("T")

#: header spelling (as ``vocabulary_key``) -> curator column
HEADER_ALIASES: dict[str, str] = {}
for _f in FIELDS:
    if _f.curator:
        for _alias in (_f.name, *_f.aliases):
            HEADER_ALIASES.setdefault(vocabulary_key(_alias), _f.name)

#: columns whose text is checked for markup and spreadsheet formulas
TEXT_COLUMNS = ("record_id", "name", "description", "hours", "email")
FORMULA_PREFIXES = ("=", "+", "-", "@")


@dataclass
class Staged:
    """The staged rows of one source, and what staging found."""

    frame: pd.DataFrame | None
    mapping: dict[str, str] = field(default_factory=dict)  # source column -> contract column
    problems: list[Problem] = field(default_factory=list)


def header_mapping(columns: list[str], renames: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Source column -> contract column (first match wins), and the columns left unknown."""
    renames = {vocabulary_key(k): v for k, v in (renames or {}).items()}
    mapping: dict[str, str] = {}
    # renames from sources.toml first, so that they win over a header that is merely an alias
    for column in columns:
        target = renames.get(vocabulary_key(column))
        if target in CURATOR_COLUMNS and target not in mapping.values():
            mapping[column] = target
    for column in columns:
        target = HEADER_ALIASES.get(vocabulary_key(column))
        if column not in mapping and vocabulary_key(column) not in renames and target and target not in mapping.values():
            mapping[column] = target
    unknown = [c for c in columns if c not in mapping]
    return {c: mapping[c] for c in columns if c in mapping}, unknown


def contact_numbers(phone_cell: str | None, sms_cell: str | None) -> tuple[str | None, str | None, list[str]]:
    """The phone and sms to stage from their cells, and the numbers left over ("116 123 / SMS 2222")."""
    voice, texts = n.split_numbers(phone_cell)
    sms_voice, sms_texts = n.split_numbers(sms_cell)
    phones = voice
    smses = sms_texts + sms_voice + texts
    leftover = phones[1:] + smses[1:]
    return (phones[0] if phones else None), (smses[0] if smses else None), leftover


def distinct(fn: Callable[..., T], *columns: list[Any]) -> list[T]:
    """``fn`` applied row by row, but computed once per distinct tuple of values (files repeat values a lot)."""
    cache: dict[tuple[Any, ...], T] = {}
    out = []
    for key in zip(*columns, strict=True):
        if key not in cache:
            cache[key] = fn(*key)
        out.append(cache[key])
    return out


def stage_listings(raw: pd.DataFrame, source: str, file: str, options: SourceOptions) -> Staged:
    """Rename, normalise and derive; file-level problems leave ``frame`` as None."""
    columns = [c for c in raw.columns if c != ROW]
    mapping, unknown = header_mapping(columns, options.columns)
    problems = [problem(source, file, "unknown_column", value=c) for c in unknown]
    present = set(mapping.values())
    defaults = {"kind": options.kind, "country": options.country}
    missing = [c for c in CURATOR_COLUMNS if BY_NAME[c].required and c not in present and not defaults.get(c)]
    if missing:
        return Staged(None, mapping, problems + [problem(source, file, "missing_column", column=c) for c in missing])
    inverse = {target: column for column, target in mapping.items()}
    frame, notes = stage_columns(raw, inverse, options)
    for row_index, _, rule, column, value, detail in sorted(notes, key=lambda x: (x[0], x[1])):
        problems.append(problem(source, file, rule, row=int(raw[ROW].iloc[row_index]), column=column, value=value, detail=detail))
    return Staged(frame, mapping, problems)


Note = tuple[int, int, str, str, object, str]  # row index, order within the row, rule, column, value, detail


def stage_columns(raw: pd.DataFrame, inverse: dict[str, str], options: SourceOptions) -> tuple[pd.DataFrame, list[Note]]:
    """Every staged column at once, each value normalised once per distinct value (or value and country)."""
    size = len(raw)
    rows = [int(r) for r in raw[ROW]]
    cells = {c: [_cell(v) for v in raw[inverse[c]]] if c in inverse else [None] * size for c in CURATOR_COLUMNS}
    default_country, default_kind = n.country(options.country), n.term(options.kind, "KINDS")
    country = [c or default_country for c in distinct(n.country, cells["country"])]
    regions = distinct(n.regions, cells["region"], country)
    numbers = distinct(contact_numbers, cells["phone"], cells["sms"])
    hours = distinct(n.hours, cells["hours"])
    record_id = [t or str(r) for t, r in zip(distinct(n.text, cells["record_id"]), rows, strict=True)]
    name = distinct(n.text, cells["name"])
    columns: dict[str, list[Any]] = {
        ROW: rows,
        "record_id": record_id,
        "name": name,
        "kind": [k or default_kind for k in distinct(lambda v: n.term(v, "KINDS"), cells["kind"])],
        "description": distinct(n.text, cells["description"]),
        "url": distinct(n.url, cells["url"]),
        "phone": distinct(n.phone, [x[0] for x in numbers], country),
        "sms": distinct(n.phone, [x[1] for x in numbers], country),
        "chat_url": distinct(n.url, cells["chat_url"]),
        "email": distinct(n.email, cells["email"]),
        "country": country,
        "region": regions,
        "areas": [n.areas(c, r) for c, r in zip(country, regions, strict=True)],
        "languages": distinct(n.languages, cells["languages"]),
        "topics": distinct(lambda v: n.terms(v, "TOPICS"), cells["topics"]),
        "audience": distinct(lambda v: n.terms(v, "AUDIENCES"), cells["audience"]),
        "moderation": distinct(lambda v: n.term(v, "MODERATION"), cells["moderation"]),
        "cost": distinct(lambda v: n.term(v, "COSTS"), cells["cost"]),
        "hours": hours,
        "always_open": [h == "24/7" for h in hours],
        "verified_at": distinct(n.date, cells["verified_at"]),
    }
    has_ids = "record_id" in inverse
    columns[MATCH] = [
        f"id:{rid}" if has_ids else f"name:{(nm or '').casefold()}|{k or ''}" for rid, nm, k in zip(record_id, name, country, strict=True)
    ]
    notes: list[Note] = []
    for order, column in enumerate(TEXT_COLUMNS):
        marked = distinct(lambda v: bool(v) and n.has_markup(v), cells[column])
        formula = distinct(lambda v: bool(v) and v.lstrip()[:1] in FORMULA_PREFIXES, cells[column])
        for i, value in enumerate(cells[column]):
            if marked[i]:
                notes.append((i, 2 * order, "markup_removed", column, value, ""))
            if formula[i] and column != "email":
                notes.append((i, 2 * order + 1, "formula_like", column, value, str(value).lstrip()[0]))
    for i, (_, _, leftover) in enumerate(numbers):
        if leftover:
            notes.append((i, 100, "extra_numbers", "phone", leftover, ""))
    seen: set[str] = set()
    for i, rid in enumerate(record_id):
        if rid in seen:
            notes.append((i, 101, "duplicate_record_id", "record_id", rid, ""))
        seen.add(rid)
    frame = pd.DataFrame({c: pd.Series(columns[c], dtype=object) for c in (ROW, *STAGED_COLUMNS, MATCH)})
    return frame.where(frame.notna(), None), notes


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)
