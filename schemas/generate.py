"""Everything generated from the field registry: Pandera, DuckDB DDL, JSON Schema, column guide.

``python -m schemas.generate`` rewrites the generated files in ``schemas/``;
``tests/test_schemas.py`` fails when they drift from the registry.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas import checks as c
from schemas.distinct import Distinct
from schemas.fields import BY_NAME, CONTACT_FIELDS, CURATOR_COLUMNS, FIELDS, LISTING_FIELDS, STAGED_COLUMNS, Field

HERE = Path(__file__).parent
JSON_SCHEMA_FILE = HERE / "listing.schema.json"
COLUMN_GUIDE_FILE = HERE / "COLUMNS.md"

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "strings": "VARCHAR[]",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "sources": "STRUCT(source VARCHAR, record_id VARCHAR)[]",
}


# --- Pandera ----------------------------------------------------------------------------------


def value_predicates(f: Field, today: dt.date) -> dict[str, Callable[[str], bool]]:
    """Rule name -> predicate on one (element of a) value of ``f`` (checks that need the row's country are ROW_CHECKS)."""
    preds: dict[str, Callable[[str], bool]] = {}
    if f.vocabulary:
        vocab = frozenset(f.vocabulary)
        preds["vocabulary"] = vocab.__contains__
    for name in f.checks:
        if name in c.DATE_CHECKS:
            preds[name] = _on_day(c.DATE_CHECKS[name], today)
        elif name not in c.COUNTRY_CHECKS:
            preds[name] = c.VALUE_CHECKS[name]
    if f.max_length is not None:
        preds[c.too_long_rule(f.name)] = functools.partial(_fits, max_length=f.max_length)
    return preds


def _on_day(check: Callable[[str, dt.date], bool], today: dt.date) -> Callable[[str], bool]:
    return lambda value: check(value, today)


def _fits(value: str, max_length: int) -> bool:
    return len(value) <= max_length


def _each_value(pred: Callable[[str], bool], many: bool, rule: str = "") -> Callable[[pd.Series], pd.Series]:
    """A column check of each value (``curate.validate`` hands Pandera each distinct value once); nulls pass.

    Of a column of single values, those that Arrow finds certainly pass ``rule`` (``checks.certain_passes``)
    are not handed to ``pred``.
    """

    def one(value: object) -> bool:
        return value is None or (isinstance(value, str) and pred(value))

    def each(value: object) -> bool:
        return value is None or (isinstance(value, list) and all(isinstance(x, str) and pred(x) for x in value))

    judge = each if many else one

    def check(series: pd.Series) -> pd.Series:
        values = series.tolist()
        certain = None if many else c.certain_passes(rule, values)
        if certain is None:
            return pd.Series([judge(v) for v in values], index=series.index, dtype=bool)
        return pd.Series([sure or judge(v) for v, sure in zip(values, certain, strict=True)], index=series.index, dtype=bool)

    return check


def _column_check(f: Field, rule: str, pred: Callable[[str], bool]) -> Callable[[pd.Series], pd.Series]:
    """The Pandera check of one rule on ``f``'s column: the length of a text in one pass, other rules value by value."""
    if f.type == "string" and f.max_length is not None and rule == c.too_long_rule(f.name):
        cap = f.max_length
        return lambda series: series.isna() | (series.str.len() <= cap)
    return _each_value(pred, f.type == "strings", rule)


def _has_contact(df: pd.DataFrame) -> pd.Series:
    return df[list(CONTACT_FIELDS)].notna().any(axis=1)


def _region_in_country(df: pd.DataFrame) -> pd.Series:
    pairs = Distinct.by_identity(df["region"]).pair(Distinct.of(df["country"]))
    return pd.Series(pairs.test(lambda rk: all(r.startswith(f"{rk[1]}-") for r in rk[0])), index=df.index, dtype=bool)


def _verdict_in_country(judge: Callable[[str, str | None], str | None], value_country: tuple[object, object]) -> str | None:
    """The rule a (value, country) pair breaks, or None (module-level: it may run in worker processes)."""
    value, country = value_country
    return judge(value, country if isinstance(country, str) else None) if isinstance(value, str) else None


def _country_check(column: str, verdicts: c.Verdicts) -> Callable[[pd.DataFrame], pd.Series]:
    """Rows whose ``column`` breaks no rule inside the row's country (judged once per (value, country); the
    verdicts are remembered, so that the rule a failing row breaks is named without judging it again)."""

    def check(df: pd.DataFrame) -> pd.Series:
        pairs = Distinct.of(df[column]).pair(Distinct.of(df["country"]))
        keys = [(v, k if isinstance(k, str) else None) if isinstance(v, str) else None for v, k in pairs.values]
        unknown = [key for key in keys if key is not None and key not in verdicts.known]  # staging judged the others
        found = Distinct(np.arange(len(unknown)), unknown).map_in_processes(functools.partial(_verdict_in_country, verdicts.judge))
        verdicts.remember(unknown, found.values)
        rules = [None if key is None else verdicts(*key) for key in keys]
        return pd.Series(np.array([rule is None for rule in rules], dtype=bool)[pairs.codes], index=df.index, dtype=bool)

    return check


#: Checks across columns of a row: check name -> (rule, the column a problem is shown in, the check).
ROW_CHECKS: dict[str, tuple[str, str | None, Callable[[pd.DataFrame], pd.Series]]] = {
    "contact_required": ("contact_required", None, _has_contact),
    "region_in_country": ("region_in_country", "region", _region_in_country),
}
#: Row checks that read no more of their columns than whether each value is null.
NULLS_ONLY_ROW_CHECKS = frozenset({"contact_required"})
#: The columns each row check reads (it is run on those alone: pandera reports a failing row with every column).
ROW_CHECK_COLUMNS: dict[str, tuple[str, ...]] = {"contact_required": CONTACT_FIELDS, "region_in_country": ("region", "country")}

#: Checks of a column inside the row's country, from the registry's ``checks`` that are ``COUNTRY_CHECKS``:
#: check name -> (the column, the verdict naming the rule a value breaks).  One pass per column; the rule a
#: failing row breaks is the verdict's (one of the check's rules in ``COUNTRY_CHECKS``).
COUNTRY_ROW_CHECKS: dict[str, tuple[str, c.Verdicts]] = {
    f"{name}:{f.name}": (f.name, c.COUNTRY_CHECKS[name][0]) for f in FIELDS for name in f.checks if name in c.COUNTRY_CHECKS
}


@functools.cache
def to_pandera(today: dt.date) -> pa.DataFrameSchema:
    """The schema of staged rows, generated from the registry (``today`` bounds ``verified_at``): each column's checks."""
    columns = {}
    for name in STAGED_COLUMNS:
        f = BY_NAME[name]
        checks = [pa.Check(_column_check(f, rule, pred), name=rule) for rule, pred in value_predicates(f, today).items()]
        nullable = not (f.required or name == "record_id") and f.type != "strings"
        columns[name] = pa.Column(None, checks, nullable=nullable, required=True)
    return pa.DataFrameSchema(columns, name="stg_listings")


def reads_nulls_only(schema: pa.DataFrameSchema) -> bool:
    """Whether a schema of ``column_schemas`` or ``row_schemas`` reads no more of its columns than whether each value
    is null (a column with no check but that, ``NULLS_ONLY_ROW_CHECKS``): its rows can be judged by that alone."""
    return all(not column.checks for column in schema.columns.values()) and all(c.name in NULLS_ONLY_ROW_CHECKS for c in schema.checks)


@functools.cache
def column_schemas(today: dt.date) -> tuple[tuple[tuple[str, ...], pa.DataFrameSchema], ...]:
    """``to_pandera`` one column at a time: (the column, a schema of it alone), so that each can be handed distinct values."""
    schema = to_pandera(today)
    return tuple(((name,), pa.DataFrameSchema({name: column}, name=f"stg_listings {name}")) for name, column in schema.columns.items())


@functools.cache
def row_schemas() -> tuple[tuple[tuple[str, ...], pa.DataFrameSchema], ...]:
    """The checks across columns of a row (``ROW_CHECKS``, ``COUNTRY_ROW_CHECKS``): each a schema of the columns it reads.

    ``ignore_na=False``: a row is judged whatever its nulls (and pandera need not look for rows of nulls only).
    """
    schemas = [(ROW_CHECK_COLUMNS[name], pa.Check(fn, name=name, ignore_na=False)) for name, (_, _, fn) in ROW_CHECKS.items()]
    schemas += [
        ((column, "country"), pa.Check(_country_check(column, verdict), name=name, ignore_na=False))
        for name, (column, verdict) in COUNTRY_ROW_CHECKS.items()
    ]
    return tuple((columns, pa.DataFrameSchema(checks=[check], name=f"stg_listings {check.name}")) for columns, check in schemas)


# --- DuckDB -----------------------------------------------------------------------------------


def duckdb_columns(names: tuple[str, ...] | list[str]) -> str:
    """Column definitions for ``CREATE TABLE``, from the registry."""
    return ",\n  ".join(f"{n} {DUCKDB_TYPES[BY_NAME[n].type]}" for n in names)


# --- JSON Schema ------------------------------------------------------------------------------


def _json_type(f: Field) -> dict[str, object]:
    nullable = f.name not in ("id", "name", "kind", "link_status", "always_open")
    if f.type == "strings":
        item: dict[str, object] = {"type": "string"}
        if f.vocabulary:
            item["enum"] = list(f.vocabulary)
        if f.pattern:
            item["pattern"] = f.pattern
        return {"type": "array", "items": item}
    if f.type == "sources":
        return {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["source", "record_id"],
                "additionalProperties": False,
                "properties": {"source": {"type": "string"}, "record_id": {"type": "string"}},
            },
        }
    base: dict[str, object] = {"type": ["string", "null"] if nullable else "string"}
    if f.type == "boolean":
        base = {"type": "boolean"}
    elif f.type == "date":
        base["format"] = "date"
    elif f.type == "timestamp":
        base["format"] = "date-time"
    if f.vocabulary:
        base["enum"] = [*f.vocabulary, *([None] if nullable else [])]
    if "enum" in f.extra:
        base["enum"] = f.extra["enum"].split(",")
    if f.pattern:
        base["pattern"] = f.pattern
    if f.max_length:
        base["maxLength"] = f.max_length
    return base


def to_json_schema() -> dict[str, object]:
    """JSON Schema (2020-12) of one published listing."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "listing.schema.json",
        "title": "Listing",
        "description": "One service of the support directory, as published in a release.",
        "type": "object",
        "required": list(LISTING_FIELDS),
        "additionalProperties": False,
        "properties": {n: {"description": BY_NAME[n].description, **_json_type(BY_NAME[n])} for n in LISTING_FIELDS},
    }


# --- Frictionless Table Schema ----------------------------------------------------------------

TABLE_TYPES = {"string": "string", "strings": "string", "date": "date", "boolean": "boolean", "timestamp": "datetime", "sources": "string"}


def to_table_schema() -> dict[str, object]:
    """Frictionless Table Schema of a location CSV (lists are joined with '; ', sources as source:record_id)."""
    fields = []
    for name in LISTING_FIELDS:
        f = BY_NAME[name]
        field: dict[str, object] = {"name": name, "type": TABLE_TYPES[f.type], "description": f.description}
        if f.type == "boolean":
            field.update(trueValues=["true"], falseValues=["false"])
        if name in ("id", "name", "kind"):
            field["constraints"] = {"required": True, **({"unique": True} if name == "id" else {})}
        if f.max_length:
            field["constraints"] = {**field.get("constraints", {}), "maxLength": f.max_length}  # type: ignore[dict-item]
        if f.vocabulary and f.type == "string":
            field["constraints"] = {**field.get("constraints", {}), "enum": list(f.vocabulary)}  # type: ignore[dict-item]
        fields.append(field)
    return {"fields": fields, "primaryKey": ["id"], "missingValues": [""]}


# --- Apache Arrow / Parquet ------------------------------------------------------------------


def to_arrow_schema() -> object:
    """Arrow schema of ``listings.parquet`` (lists stay lists, sources a list of structs, times in UTC)."""
    import pyarrow as pa_

    types = {
        "string": pa_.string(),
        "strings": pa_.list_(pa_.string()),
        "date": pa_.date32(),
        "boolean": pa_.bool_(),
        "timestamp": pa_.timestamp("s", tz="UTC"),
        "sources": pa_.list_(pa_.struct([("source", pa_.string()), ("record_id", pa_.string())])),
    }
    fields = [
        pa_.field(n, types[BY_NAME[n].type], nullable=n not in ("id", "name", "kind"), metadata={"description": BY_NAME[n].description})
        for n in LISTING_FIELDS
    ]
    return pa_.schema(fields)


# --- curator column guide ---------------------------------------------------------------------


def to_column_guide() -> str:
    """Markdown guide to the columns of a curator file."""
    lines = [
        "# Columns of a curator file",
        "",
        "Generated from `schemas/fields.py` by `python -m schemas.generate`; do not edit by hand.",
        "Header names match case- and space-insensitively; the other names listed are accepted too.",
        "Cells holding several values separate them with `;`. One of url, phone, sms or chat_url is needed.",
        "",
        "| column | required | meaning | other accepted names | example |",
        "|---|---|---|---|---|",
    ]
    for name in CURATOR_COLUMNS:
        f = BY_NAME[name]
        aliases = ", ".join(f"`{a}`" for a in f.aliases)
        lines.append(f"| `{name}` | {'yes' if f.required else 'no'} | {f.description} | {aliases} | {f.example} |")
    for f in FIELDS:
        if f.vocabulary and f.curator:
            lines += ["", f"## Values of `{f.name}`", "", "| value | meaning | also accepted |", "|---|---|---|"]
            for value, term in f.vocabulary.items():
                synonyms = ", ".join(f"`{s}`" for s in term.synonyms if s)
                lines.append(f"| `{value}` | {term.description} | {synonyms} |")
    return "\n".join(lines) + "\n"


def generated_files() -> dict[Path, str]:
    return {
        JSON_SCHEMA_FILE: json.dumps(to_json_schema(), indent=2, ensure_ascii=False) + "\n",
        COLUMN_GUIDE_FILE: to_column_guide(),
    }


def main() -> None:
    for path, content in generated_files().items():
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
