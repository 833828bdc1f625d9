"""Staging: a source's raw table renamed to contract columns and normalised (no merging here).

``stage_listings`` is pure: it takes the raw frame (strings as read) and the
source's options and returns the staged frame (one row per raw row, canonical
values, ``_row`` kept) and the problems staging itself finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from curate import normalise as n
from curate.problems import Problem, problem
from curate.read import ROW
from curate.sources import SourceOptions
from schemas.fields import BY_NAME, CURATOR_COLUMNS, FIELDS, STAGED_COLUMNS
from schemas.vocabularies import vocabulary_key

#: How a row is recognised in the next version of its source: its record_id, or its name and country.
MATCH = "_match"

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


def stage_row(cells: dict[str, str | None], row: int, options: SourceOptions) -> dict[str, object]:
    """One raw row (contract column -> cell) to its staged values."""
    country = n.country(cells.get("country")) or n.country(options.country)
    regions = n.regions(cells.get("region"), country)
    hours = n.hours(cells.get("hours"))
    phone, sms, _ = contact_numbers(cells.get("phone"), cells.get("sms"))
    return {
        ROW: row,
        "record_id": n.record_id(cells.get("record_id"), row),
        "name": n.text(cells.get("name")),
        "kind": n.term(cells.get("kind"), "KINDS") or n.term(options.kind, "KINDS"),
        "description": n.text(cells.get("description")),
        "url": n.url(cells.get("url")),
        "phone": n.phone(phone, country),
        "sms": n.phone(sms, country),
        "chat_url": n.url(cells.get("chat_url")),
        "email": n.email(cells.get("email")),
        "country": country,
        "region": regions,
        "areas": n.areas(country, regions),
        "languages": n.languages(cells.get("languages")),
        "topics": n.terms(cells.get("topics"), "TOPICS"),
        "audience": n.terms(cells.get("audience"), "AUDIENCES"),
        "moderation": n.term(cells.get("moderation"), "MODERATION"),
        "cost": n.term(cells.get("cost"), "COSTS"),
        "hours": hours,
        "always_open": hours == "24/7",
        "verified_at": n.date(cells.get("verified_at")),
    }


def match_key(staged: dict[str, object], has_ids: bool) -> str:
    """``id:<record_id>`` when the source gives ids, else ``name:<name>|<country>`` (casefolded)."""
    if has_ids:
        return f"id:{staged['record_id']}"
    return f"name:{str(staged['name'] or '').casefold()}|{staged['country'] or ''}"


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
    records = []
    seen_ids: set[str] = set()
    for record in raw.to_dict("records"):
        row = int(record[ROW])
        cells = {c: _cell(record.get(inverse[c])) for c in CURATOR_COLUMNS if c in inverse}
        staged = stage_row(cells, row, options)
        records.append(staged)
        for column in TEXT_COLUMNS:
            value = cells.get(column)
            if value and n.has_markup(value):
                problems.append(problem(source, file, "markup_removed", row=row, column=column, value=value))
            if value and value.lstrip()[:1] in FORMULA_PREFIXES and column != "email":
                problems.append(problem(source, file, "formula_like", row=row, column=column, value=value, detail=value.lstrip()[0]))
        leftover = contact_numbers(cells.get("phone"), cells.get("sms"))[2]
        if leftover:
            problems.append(problem(source, file, "extra_numbers", row=row, column="phone", value=leftover))
        rid = str(staged["record_id"])
        if rid in seen_ids:
            problems.append(problem(source, file, "duplicate_record_id", row=row, column="record_id", value=rid))
        seen_ids.add(rid)
    frame = pd.DataFrame.from_records(records, columns=[ROW, *STAGED_COLUMNS])
    frame[MATCH] = [match_key(r, "record_id" in inverse) for r in records]
    frame = frame.astype(object)
    return Staged(frame.where(frame.notna(), None), mapping, problems)


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)
