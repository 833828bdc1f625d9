"""Validation of staged rows with the Pandera schema generated from the registry.

``validate_listings`` is pure: staged frame in, problems out (lazily: every
failure of every row).  ``split_rows`` then keeps the rows without errors.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa

from curate.problems import Problem, problem
from curate.read import ROW
from schemas import checks as c
from schemas.fields import BY_NAME, STAGED_COLUMNS
from schemas.generate import ROW_CHECKS, to_pandera, value_predicates


def validate_listings(staged: pd.DataFrame, source: str, file: str, today: dt.date) -> list[Problem]:
    """Every problem Pandera finds in the staged rows, in a curator's words."""
    try:
        to_pandera(today).validate(staged[list(STAGED_COLUMNS)], lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _problems(exc.failure_cases, staged, source, file, today)
    return []


def _problems(cases: pd.DataFrame, staged: pd.DataFrame, source: str, file: str, today: dt.date) -> list[Problem]:
    out: list[Problem] = []
    seen: set[tuple[object, str]] = set()
    for case in cases.to_dict("records"):
        index, check, column = case["index"], str(case["check"]), case["column"]
        if index is None or pd.isna(index):
            continue
        row = int(staged.loc[index, ROW])
        if check in ROW_CHECKS:
            if (index, check) in seen:
                continue  # frame-wide checks repeat their failure once per column
            seen.add((index, check))
            rule, shown, _ = ROW_CHECKS[check]
            value = staged.loc[index, shown] if shown else None
            out.append(problem(source, file, rule, row=row, column=shown, value=value))
            continue
        rule = "required" if check == "not_nullable" else check
        value = case["failure_case"]
        if isinstance(value, list) and rule in value_predicates(BY_NAME[column], today):
            pred = value_predicates(BY_NAME[column], today)[rule]
            value = [x for x in value if not pred(x)]
        detail = ""
        if rule == "vocabulary":
            vocab = BY_NAME[column].vocabulary or {}
            detail = "".join(c.suggestion(x, vocab) for x in (value if isinstance(value, list) else [value]))
        elif rule == "country_code":
            detail = " Write a two-letter code (NO, GB) or WW for worldwide."
        out.append(problem(source, file, rule, row=row, column=column, value=None if rule == "required" else value, detail=detail))
    return sorted(out, key=lambda p: (p.row or 0, p.column or "", p.rule))


def split_rows(staged: pd.DataFrame, problems: list[Problem]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted, rejected) rows: a row with any error is rejected, warnings keep it."""
    bad_rows = {p.row for p in problems if p.severity == "error" and p.row is not None}
    rejected = staged[ROW].isin(bad_rows)
    return staged[~rejected].reset_index(drop=True), staged[rejected].reset_index(drop=True)
