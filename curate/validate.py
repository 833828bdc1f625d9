"""Validation of staged rows with the Pandera schema generated from the registry.

``validate_listings`` is pure: staged frame in, problems out (lazily: every
failure of every row).  ``split_rows`` then keeps the rows without errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa

from curate import normalise as n
from curate.problems import Problem, problem
from curate.read import ROW
from schemas import checks as c
from schemas.fields import BY_NAME, FIELDS, STAGED_COLUMNS
from schemas.generate import COUNTRY_ROW_CHECKS, ROW_CHECKS, row_schemas, to_pandera, value_predicates


def validate_listings(staged: pd.DataFrame, source: str, file: str, today: dt.date) -> list[Problem]:
    """Every problem Pandera finds in the staged rows, in a curator's words."""
    found = []
    for columns, schema in ((STAGED_COLUMNS, to_pandera(today)), *row_schemas()):
        try:
            schema.validate(staged[list(columns)], lazy=True)
        except pa.errors.SchemaErrors as exc:
            found.append(exc.failure_cases)
    return _problems(pd.concat(found, ignore_index=True), staged, source, file, today) if found else []


def _problems(cases: pd.DataFrame, staged: pd.DataFrame, source: str, file: str, today: dt.date) -> list[Problem]:
    out: list[Problem] = []
    cases = cases[cases["index"].notna()]
    frame_wide = cases["check"].isin([*ROW_CHECKS, *COUNTRY_ROW_CHECKS])
    # row checks repeat their failure once per column they read: one problem per row and check
    cases = pd.concat([cases[~frame_wide], cases[frame_wide].drop_duplicates(["index", "check"])])
    at = staged.index.get_indexer(pd.Index(cases["index"]))
    rows = staged[ROW].to_numpy()[at].tolist()
    column_values = {c: staged[c].to_numpy(dtype=object) for c in STAGED_COLUMNS}
    country = column_values["country"]
    predicates: dict[str, dict[str, Callable[[str], bool]]] = {}
    failing: dict[tuple[str, str, int], list[str]] = {}  # the elements of a list value that break a rule
    details: dict[tuple[str, str], str] = {}
    for row, position, check, column, value in zip(
        rows, at.tolist(), *(cases[k].to_numpy(dtype=object).tolist() for k in ("check", "column", "failure_case")), strict=True
    ):
        if check in ROW_CHECKS:
            rule, shown, _ = ROW_CHECKS[check]
            out.append(problem(source, file, rule, row=row, column=shown, value=column_values[shown][position] if shown else None))
            continue
        if check in COUNTRY_ROW_CHECKS:
            shown, verdict = COUNTRY_ROW_CHECKS[check]
            number, where = str(column_values[shown][position]), country[position]
            broken = verdict(number, where if isinstance(where, str) else None)
            if broken:
                out.append(problem(source, file, broken, row=row, column=shown, value=number))
            continue
        rule = "required" if check == "not_nullable" else check
        if column not in predicates:
            predicates[column] = value_predicates(BY_NAME[column], today)
        if isinstance(value, list) and rule in predicates[column]:
            key = (column, rule, id(value))  # equal lists are one object per distinct value (staging)
            if key not in failing:
                pred = predicates[column][rule]
                failing[key] = [x for x in value if not pred(x)]
            value = failing[key]
        detail = ""
        if rule in ("vocabulary", "country_code"):
            shown_value = "; ".join(value) if isinstance(value, list) else str(value)
            if (column, shown_value) not in details:
                details[column, shown_value] = _detail(rule, column, value)
            detail = details[column, shown_value]
        out.append(problem(source, file, rule, row=row, column=column, value=None if rule == "required" else value, detail=detail))
    return sorted(out, key=lambda p: (p.row or 0, p.column or "", p.rule))


def _detail(rule: str, column: str, value: object) -> str:
    """What a problem adds to its rule's message: a suggestion for a near miss of a vocabulary."""
    if rule == "country_code":
        return " Write a two-letter code (NO, GB) or WW for worldwide."
    vocab = BY_NAME[column].vocabulary or {}
    return "".join(c.suggestion(str(x), vocab) for x in (value if isinstance(value, list) else [value]))


def split_rows(staged: pd.DataFrame, problems: list[Problem]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted, rejected) rows: a row with any error is rejected, warnings keep it.

    Accepted rows go on to be published, so their texts are cut to the registry's ``max_length`` here (after
    validation has warned about the full text: ``<field>_too_long``).
    """
    bad_rows = {p.row for p in problems if p.severity == "error" and p.row is not None}
    rejected = staged[ROW].isin(bad_rows)
    return capped_texts(staged[~rejected].reset_index(drop=True)), staged[rejected].reset_index(drop=True)


def capped_texts(staged: pd.DataFrame) -> pd.DataFrame:
    """The rows with every text field that has a ``max_length`` cut to it (``normalise.shorten``; idempotent)."""
    out = staged.copy()
    for f in FIELDS:
        if f.max_length is not None and f.name in out.columns:
            cap = f.max_length
            out[f.name] = pd.Series([n.shorten(v, cap) if isinstance(v, str) else v for v in out[f.name]], index=out.index, dtype=object)
    return out
