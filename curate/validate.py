"""Validation of staged rows with the Pandera schema generated from the registry.

``validate_listings`` is pure: staged frame in, problems out (lazily: every
failure of every row).  ``split_rows`` then keeps the rows without errors.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa

from curate import normalise as n
from curate.collector import collection_paused
from curate.problems import Problem, problem
from curate.read import ROW
from schemas import checks as c
from schemas.distinct import Distinct, combined_codes, first_rows
from schemas.fields import BY_NAME, FIELDS, STAGED_COLUMNS
from schemas.generate import COUNTRY_ROW_CHECKS, ROW_CHECKS, column_schemas, reads_nulls_only, row_schemas, value_predicates


@collection_paused()
def validate_listings(
    staged: pd.DataFrame, source: str, file: str, today: dt.date, distinct: dict[str, Distinct] | None = None
) -> list[Problem]:
    """Every problem Pandera finds in the staged rows, in a curator's words.

    Pandera is handed, for each column and for each check across columns, the distinct values (or tuples of
    values) the rows hold, each once; what it finds of a value is told of every row that holds it.
    ``distinct`` may give some columns' codes and values as staging made them (``Staged.columns``), so that
    those columns are not hashed again; a column whose codes do not cover the rows is hashed all the same.
    """
    values = {c: staged[c].to_numpy(dtype=object) for c in STAGED_COLUMNS}
    rows = staged[ROW].to_numpy()
    columns = {name: d for name, d in (distinct or {}).items() if name in values and len(d.codes) == len(staged)}
    nulls: dict[str, Distinct] = {}  # columns told apart by null or not, for schemas that read no more (reads_nulls_only)
    out: list[Problem] = []
    for names, schema in (*column_schemas(today), *row_schemas()):
        made = nulls if reads_nulls_only(schema) else columns
        for name in names:
            if name not in made:
                made[name] = Distinct.by_null(values[name]) if made is nulls else _distinct(values[name], BY_NAME[name].type)
        judged = [made[name] for name in names]
        codes = combined_codes(judged)
        first = first_rows(codes)
        try:
            schema.validate(pd.DataFrame({name: pd.Series(values[name][first], dtype=object) for name in names}), lazy=True)
        except pa.errors.SchemaErrors as exc:
            findings = _findings(exc.failure_cases, {name: values[name][first] for name in names}, today)
            out += _fan_out(findings, codes, rows, source, file)
    return sorted(out, key=lambda p: (p.row or 0, p.column or "", p.rule))


def _distinct(column: np.ndarray, kind: str) -> Distinct:
    return Distinct.by_identity(column) if kind == "strings" else Distinct.of(column)


Finding = tuple[str, str | None, object, str]  # rule, column, value shown, detail


def _findings(cases: pd.DataFrame, sample: dict[str, np.ndarray], today: dt.date) -> dict[tuple[str, int], Finding]:
    """(check, distinct value's code) -> the problem every row holding that value has."""
    cases = cases[cases["index"].notna()].drop_duplicates(["index", "check"])  # a row check fails once per column it reads
    out: dict[tuple[str, int], Finding] = {}
    for code, check, column, value in zip(
        cases["index"].astype(int).tolist(),
        *(cases[k].to_numpy(dtype=object).tolist() for k in ("check", "column", "failure_case")),
        strict=True,
    ):
        check = str(check)
        if check in ROW_CHECKS:
            rule, shown, _ = ROW_CHECKS[check]
            out[check, code] = (rule, shown, sample[shown][code] if shown else None, "")
            continue
        if check in COUNTRY_ROW_CHECKS:
            shown, verdict = COUNTRY_ROW_CHECKS[check]
            number, where = str(sample[shown][code]), sample["country"][code]
            broken = verdict(number, where if isinstance(where, str) else None)
            if broken:
                out[check, code] = (broken, shown, number, "")
            continue
        rule = "required" if check == "not_nullable" else check
        pred = value_predicates(BY_NAME[column], today).get(rule)
        if isinstance(value, list) and pred is not None:
            value = [x for x in value if not pred(x)]  # the elements of a list that break the rule
        detail = _detail(rule, column, value) if rule in ("vocabulary", "country_code") else ""
        out[check, code] = (rule, column, None if rule == "required" else value, detail)
    return out


def _fan_out(findings: dict[tuple[str, int], Finding], codes: np.ndarray, rows: np.ndarray, source: str, file: str) -> list[Problem]:
    """The problems of every row whose distinct value has a finding (one pass over the rows per check)."""
    out: list[Problem] = []
    make = tuple.__new__  # a Problem from its fields without a call per field: rows with one finding share all but the row
    for check in {check for check, _ in findings}:
        after_row = {code: problem(source, file, rule, column=column, value=value, detail=detail)[3:]
                     for (name, code), (rule, column, value, detail) in findings.items() if name == check}  # fmt: skip
        failing = np.zeros(int(codes.max()) + 1, dtype=bool)
        failing[list(after_row)] = True
        positions = np.flatnonzero(failing[codes])
        out += [
            make(Problem, (source, file, row, *after_row[code]))
            for row, code in zip(rows[positions].tolist(), codes[positions].tolist(), strict=True)
        ]
    return out


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
    out = staged.copy(deep=False)  # columns that change are replaced whole (a deep copy of 1M rows took 1 s)
    for f in FIELDS:
        if f.max_length is not None and f.name in out.columns:
            cap, column = f.max_length, out[f.name].to_numpy(dtype=object)
            longer = np.flatnonzero(pd.Series(column, dtype=object).str.len().to_numpy(dtype=float, na_value=0) > cap)
            if len(longer):  # few texts are: only those are looked at
                column = column.copy()
                column[longer] = [n.shorten(v, cap) if isinstance(v, str) else v for v in column[longer]]
                out[f.name] = pd.Series(column, index=out.index, dtype=object)
    return out
