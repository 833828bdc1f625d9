"""Staging: a source's raw table renamed to contract columns and normalised (no merging here).

``stage_listings`` is pure: it takes the raw frame (strings as read) and the
source's options and returns the staged frame (one row per raw row, canonical
values, ``_row`` kept) and the problems staging itself finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curate import normalise as n
from curate.collector import collection_paused
from curate.problems import Problem, problem
from curate.read import ROW
from curate.sources import SourceOptions
from schemas import checks as c
from schemas.distinct import Distinct
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
#: What every formula-like value matches (RE2): a value starting with a letter or digit has no prefix, even after lstrip().
FORMULA_CANDIDATES = "^[^A-Za-z0-9]"
#: What every value that may have markup or look like a formula matches (RE2).
MARKUP_OR_FORMULA = f"{n.MAYBE_MARKUP_RE2}|{FORMULA_CANDIDATES}"


def formula_like(value: str | None) -> bool:
    """A cell a spreadsheet would take for a formula (it starts with one of ``FORMULA_PREFIXES``, spaces aside)."""
    return value is not None and value.lstrip()[:1] in FORMULA_PREFIXES


@dataclass
class Staged:
    """The staged rows of one source, and what staging found."""

    frame: pd.DataFrame | None
    mapping: dict[str, str] = field(default_factory=dict)  # source column -> contract column
    problems: list[Problem] = field(default_factory=list)
    #: Staged columns as the distinct values staging made and each row's code (rows sharing a raw cell share a
    #: code): validation judges these values instead of hashing the rows again.  Not every column is here.
    columns: dict[str, Distinct] = field(default_factory=dict)


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


def phone_in_country(number_country: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
    """``normalise.phone`` of a (number, country) pair and the rule it breaks in that country (``checks.judge_phone``),
    the number parsed once for both (module-level: it may run in worker processes)."""
    number, country = number_country
    staged, parsed, kind = n.parsed_phone(number, country)
    if staged is None:
        return None, None
    return staged, c.judge_phone(staged, country, None if parsed is None else (parsed, kind))


def start_staged_phones(numbers: Distinct, country: Distinct) -> Callable[[], Distinct]:
    """The staged numbers of a column of numbers in their rows' countries, begun (``Distinct.start_map_in_processes``:
    call the result for the column).  What each breaks there is handed to validation (``checks.phone_verdict``),
    which then need not parse it again."""
    pairs = numbers.compact().pair(country)  # after the split of a cell, many cells hold no sms: one None
    judging = pairs.start_map_in_processes(phone_in_country)

    def finish() -> Distinct:
        judged = judging()
        verdicts = [((staged, where), rule) for (_, where), (staged, rule) in zip(pairs.values, judged.values, strict=True) if staged]
        c.phone_verdict.remember([pair for pair, _ in verdicts], [rule for _, rule in verdicts])
        return judged.map(lambda staged_rule: staged_rule[0])

    return finish


@collection_paused()
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
    frame, notes, distinct = stage_columns(raw, inverse, options)
    for row_index, _, rule, column, value, detail in sorted(notes, key=lambda x: (x[0], x[1])):
        problems.append(problem(source, file, rule, row=int(raw[ROW].iloc[row_index]), column=column, value=value, detail=detail))
    return Staged(frame, mapping, problems, distinct)


Note = tuple[int, int, str, str, object, str]  # row index, order within the row, rule, column, value, detail


def stage_columns(
    raw: pd.DataFrame, inverse: dict[str, str], options: SourceOptions
) -> tuple[pd.DataFrame, list[Note], dict[str, Distinct]]:
    """Every staged column at once, each value normalised once per distinct value (or value and country).

    Also each staged column but ``record_id`` as a ``Distinct``: the raw cells' codes and their staged values.
    """
    size = len(raw)
    rows = raw[ROW].to_numpy(dtype=np.int64)
    empty = np.full(size, None, dtype=object)
    cells = {c: _cells(raw[inverse[c]] if c in inverse else empty) for c in ("phone", "sms", "country")}
    default_country, default_kind = n.country(options.country), n.term(options.kind, "KINDS")
    country = cells["country"].map(lambda v: n.country(v) or default_country).compact()
    numbers = cells["phone"].pair(cells["sms"]).map(lambda ps: contact_numbers(*ps))
    # phonenumbers' work dominates: begun first, so that workers (``distinct.workers_forked``) do it while this
    # process stages the other columns
    phones = start_staged_phones(numbers.map(lambda x: x[0]), country)
    smses = start_staged_phones(numbers.map(lambda x: x[1]), country)
    cells |= {c: _cells(raw[inverse[c]] if c in inverse else empty) for c in CURATOR_COLUMNS if c not in cells}
    where = cells["region"].pair(country)
    regions = where.map(lambda rc: n.regions(*rc))
    hours = cells["hours"].map(n.hours)
    name = cells["name"].map_unless(n.PLAIN_ASCII_RE2, n.text)
    record_id = cells["record_id"].map_unless(n.PLAIN_ASCII_RE2, n.text).rows()
    unnamed = np.flatnonzero(pd.isna(record_id))
    record_id[unnamed] = rows[unnamed].astype(str)
    distinct: dict[str, Distinct] = {
        "name": name,
        "kind": cells["kind"].map(lambda v: n.term(v, "KINDS") or default_kind),
        "description": cells["description"].map_unless(n.PLAIN_ASCII_RE2, n.text),
        "url": cells["url"].map_unless(n.CANONICAL_URL_RE2, n.url, rewrite=n.URL_REWRITE),
        "chat_url": cells["chat_url"].map_unless(n.CANONICAL_URL_RE2, n.url, rewrite=n.URL_REWRITE),
        "email": cells["email"].map(n.email),
        "country": country,
        "region": regions,
        "areas": Distinct(where.codes, [n.areas(c, r) for (_, c), r in zip(where.values, regions.values, strict=True)]),
        "languages": cells["languages"].map(n.languages),
        "topics": cells["topics"].map(lambda v: n.terms(v, "TOPICS")),
        "audience": cells["audience"].map(lambda v: n.terms(v, "AUDIENCES")),
        "moderation": cells["moderation"].map(lambda v: n.term(v, "MODERATION")),
        "cost": cells["cost"].map(lambda v: n.term(v, "COSTS")),
        "hours": hours,
        "always_open": hours.map(lambda h: h == "24/7"),
        "verified_at": cells["verified_at"].map(n.date),
    }
    columns: dict[str, np.ndarray] = {ROW: rows, "record_id": record_id, **{c: d.rows() for c, d in distinct.items()}}
    if "record_id" in inverse:
        columns[MATCH] = np.array(["id:" + rid for rid in record_id.tolist()], dtype=object)
    else:
        columns[MATCH] = name.pair(country).map(lambda nk: f"name:{(nk[0] or '').casefold()}|{nk[1] or ''}").rows()
    notes: list[Note] = []
    for order, column in enumerate(TEXT_COLUMNS):
        values = cells[column]
        maybe = values.matches(MARKUP_OR_FORMULA, otherwise=True)  # one pass of Arrow for both notes
        for i in values.rows_where(n.has_markup, candidates=maybe):
            notes.append((int(i), 2 * order, "markup_removed", column, values.values[values.codes[i]], ""))
        if column != "email":
            for i in values.rows_where(formula_like, candidates=maybe):
                value = values.values[values.codes[i]]
                notes.append((int(i), 2 * order + 1, "formula_like", column, value, value.lstrip()[0]))
    for i in numbers.rows_where(lambda x: bool(x[2])):
        notes.append((int(i), 100, "extra_numbers", "phone", numbers.values[numbers.codes[i]][2], ""))
    for i in np.flatnonzero(pd.Series(record_id).duplicated().to_numpy()):
        notes.append((int(i), 101, "duplicate_record_id", "record_id", record_id[i], ""))
    distinct |= {"phone": phones(), "sms": smses()}  # the workers' share, collected last
    columns |= {c: distinct[c].rows() for c in ("phone", "sms")}
    # the arrays are this function's own: no copy (copying 25 object columns into one block took 1.2 s per 1M rows)
    frame = pd.DataFrame({c: pd.Series(columns[c], dtype=object, copy=False) for c in (ROW, *STAGED_COLUMNS, MATCH)}, copy=False)
    return frame, notes, distinct


def _cells(column: pd.Series | np.ndarray) -> Distinct:
    """A raw column's distinct cells (``Distinct.of_cells``), each a string or None (readers give strings; anything else
    is made one)."""
    cells = Distinct.of_cells(column)
    return cells if pd.api.types.infer_dtype(cells.values, skipna=True) in ("string", "empty") else cells.map(_cell)


def _cell(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)
