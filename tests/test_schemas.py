"""STYLE 1: everything is generated from the field registry, and generated files never drift."""

from __future__ import annotations

import datetime as dt

from schemas import generate
from schemas.fields import BY_NAME, CURATOR_COLUMNS, FIELDS, LISTING_FIELDS, STAGED_COLUMNS
from schemas.vocabularies import lookup_table


def test_generated_files_match_the_registry():
    for path, content in generate.generated_files().items():
        assert path.read_text(encoding="utf-8") == content, f"{path.name} drifted: run `make generate`"


def test_pandera_schema_is_the_registry():
    schema = generate.to_pandera(dt.date(2026, 11, 25))
    assert list(schema.columns) == list(STAGED_COLUMNS)
    for name, column in schema.columns.items():
        f = BY_NAME[name]
        assert {c.name for c in column.checks} == set(generate.value_predicates(f, dt.date(2026, 11, 25))), name
        if f.required:
            assert not column.nullable


def test_contract_listing_fields_in_contract_order():
    assert LISTING_FIELDS == (
        "id",
        "name",
        "kind",
        "description",
        "url",
        "phone",
        "sms",
        "chat_url",
        "email",
        "areas",
        "languages",
        "topics",
        "audience",
        "moderation",
        "cost",
        "hours",
        "always_open",
        "verified_at",
        "link_status",
        "link_checked_at",
        "sources",
        "first_seen",
        "updated_at",
    )
    assert CURATOR_COLUMNS == (
        "record_id",
        "name",
        "kind",
        "description",
        "url",
        "phone",
        "sms",
        "chat_url",
        "email",
        "country",
        "region",
        "languages",
        "topics",
        "audience",
        "moderation",
        "cost",
        "hours",
        "verified_at",
    )


def test_ddl_and_json_schema_cover_every_field():
    ddl = generate.duckdb_columns(LISTING_FIELDS)
    assert all(f"\n  {n} " in "\n  " + ddl for n in LISTING_FIELDS)
    props = generate.to_json_schema()["properties"]
    assert list(props) == list(LISTING_FIELDS)
    assert props["kind"]["enum"] == list(BY_NAME["kind"].vocabulary or {})


def test_no_synonym_points_at_two_values():
    for f in FIELDS:
        if f.vocabulary:
            spellings = [s for term in f.vocabulary.values() for s in term.synonyms if s]
            table = lookup_table(f.vocabulary)
            for canonical in f.vocabulary:
                assert table[canonical.replace("_", " ")] == canonical
            assert len(spellings) == len(set(spellings)), f.name


def test_header_aliases_are_unambiguous():
    from schemas.vocabularies import vocabulary_key

    seen: dict[str, str] = {}
    for f in FIELDS:
        if f.curator:
            for alias in (f.name, *f.aliases):
                key = vocabulary_key(alias)
                assert seen.setdefault(key, f.name) == f.name, f"{alias!r} names both {seen[key]} and {f.name}"


def test_curator_template_and_column_guide_match_the_registry():
    from schemas import curator_aids

    for path, content in curator_aids.generated_files().items():
        assert path.read_bytes().decode("utf-8") == content, f"{path.name} drifted: run `make generate`"
    header = curator_aids.TEMPLATE_FILE.read_text(encoding="utf-8").strip().split(",")
    assert tuple(header) == CURATOR_COLUMNS
    guide = curator_aids.README_FILE.read_text(encoding="utf-8")
    assert all(f"| `{c}` |" in guide for c in CURATOR_COLUMNS)


def test_the_template_is_not_read_as_a_source(tmp_path):
    from curate.sources import discover
    from schemas import curator_aids

    (tmp_path / "TEMPLATE.csv").write_text(curator_aids.template_csv(), encoding="utf-8")
    (tmp_path / "mine.csv").write_text(curator_aids.template_csv() + "A,B\n", encoding="utf-8")
    assert [s.source_id for s in discover(tmp_path)[0]] == ["mine"]


def test_a_field_of_an_unknown_type_is_refused():
    import pytest

    from schemas.fields import Field

    with pytest.raises(ValueError, match="not one of"):
        Field("nonsense", "integer", "A type the registry cannot generate.")


def test_schemas_that_read_nulls_only_are_the_bare_columns_and_the_contact_check():
    """Validation judges these by null or not alone (``Distinct.by_null``): a check that read a value would be fooled."""
    today = dt.date(2026, 11, 25)
    bare = {names for names, schema in generate.column_schemas(today) if generate.reads_nulls_only(schema)}
    unchecked = {(f.name,) for f in FIELDS if f.name in STAGED_COLUMNS and not generate.value_predicates(f, today)}
    assert bare == unchecked and ("record_id",) in bare and ("url",) not in bare
    rows = [schema.checks[0].name for _, schema in generate.row_schemas() if generate.reads_nulls_only(schema)]
    assert rows == ["contact_required"]
