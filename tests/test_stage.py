"""Tests of ``curate.stage``: header mapping and staging of tiny inline frames shaped like ``read_table`` output."""

from __future__ import annotations

import pandas as pd
import pytest

from curate.read import ROW
from curate.sources import SourceOptions
from curate.stage import header_mapping, stage_listings
from schemas.fields import STAGED_COLUMNS

SOURCE, FILE = "helplines_no", "helplines_no.csv"


def raw(*rows: dict[str, str], first_row: int = 2) -> pd.DataFrame:
    """A frame as ``read_table`` returns it: every cell a string, ``_row`` the spreadsheet row."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    frame = pd.DataFrame([[r.get(c, "") for c in columns] for r in rows], columns=columns, dtype=object)
    frame[ROW] = list(range(first_row, first_row + len(rows)))
    return frame


def stage(*rows: dict[str, str], options: SourceOptions | None = None, **kw: int):
    return stage_listings(raw(*rows, **kw), SOURCE, FILE, options or SourceOptions())


def only(frame: pd.DataFrame) -> dict[str, object]:
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def rules(problems) -> list[tuple[str, str, int | None, str | None, str | None]]:
    return [(p.rule, p.severity, p.row, p.column, p.value) for p in problems]


FULL = {"name": "Fjordhjelp", "kind": "helpline", "country": "NO", "phone": "22 40 00 40"}

# --- header_mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("name", "name"),
        ("  NAME ", "name"),
        ("Service Name", "name"),
        ("service_name", "name"),
        ("Navn", "name"),
        ("Namn", "name"),
        ("Nom", "name"),
        ("Nombre", "name"),
        ("Type", "kind"),
        ("Land", "country"),
        ("Pays", "country"),
        ("country_code", "country"),
        ("Country Code", "country"),
        ("COUNTRY-CODE", "country"),
        ("Telefon", "phone"),
        ("Téléphone", "phone"),
        ("TELEPHONE", "phone"),
        ("Website", "url"),
        ("Web Site", "url"),
        ("Chat URL", "chat_url"),
        ("E-Mail", "email"),
        ("Fylke", "region"),
        ("Sprache", "languages"),
        ("Målgruppe", "audience"),
        ("Öffnungszeiten", "hours"),
        ("Last verified", "verified_at"),
        ("verified_at", "verified_at"),
        ("ID", "record_id"),
    ],
)
def test_header_mapping_names_and_aliases(header, field):
    assert header_mapping([header]) == ({header: field}, [])


def test_header_mapping_returns_unknown_columns_in_order():
    mapping, unknown = header_mapping(["Name", "Colour", "kind", "Internal notes 2", "areas", "link_status"])
    assert mapping == {"Name": "name", "kind": "kind"}
    assert unknown == ["Colour", "Internal notes 2", "areas", "link_status"]  # derived fields are not curator columns


@pytest.mark.parametrize(
    ("columns", "mapping", "unknown"),
    [
        (["Navn", "Nom"], {"Navn": "name"}, ["Nom"]),
        (["Land", "country_code", "Pays"], {"Land": "country"}, ["country_code", "Pays"]),
        (["phone", "Telefon"], {"phone": "phone"}, ["Telefon"]),
        (["Website", "url"], {"Website": "url"}, ["url"]),
    ],
)
def test_second_header_for_the_same_field_is_unknown(columns, mapping, unknown):
    assert header_mapping(columns) == (mapping, unknown)


def test_renames_map_columns_no_alias_knows():
    assert header_mapping(["Org", "Tlf"], {"Org": "name"}) == ({"Org": "name", "Tlf": "phone"}, [])


def test_renames_match_case_and_space_insensitively():
    assert header_mapping(["  org  "], {"ORG": "name"}) == ({"  org  ": "name"}, [])


def test_renames_win_over_aliases():
    mapping, unknown = header_mapping(["Name", "Service"], {"Name": "description"})
    assert mapping == {"Name": "description", "Service": "name"}
    assert unknown == []


def test_a_renamed_column_wins_over_an_earlier_alias_of_the_same_field():
    # sources.toml says "Org" is the name column; a 'name' header written before it must not take its place
    mapping, unknown = header_mapping(["name", "Org"], {"Org": "name"})
    assert mapping == {"Org": "name"}
    assert unknown == ["name"]


@pytest.mark.parametrize("target", ["bogus", "areas", "always_open"])
def test_renames_to_a_non_curator_column_leave_it_unknown(target):
    assert header_mapping(["X"], {"X": target}) == ({}, ["X"])


# --- stage_listings: values -------------------------------------------------------------------


def test_frame_has_the_staged_columns_and_keeps_row_numbers():
    staged = stage(FULL, {**FULL, "name": "Nattlinja"}, first_row=5)
    assert staged.frame is not None
    assert list(staged.frame.columns) == [ROW, *STAGED_COLUMNS, "_match"]
    assert staged.frame[ROW].tolist() == [5, 6]
    assert staged.frame["name"].tolist() == ["Fjordhjelp", "Nattlinja"]
    assert staged.mapping == {"name": "name", "kind": "kind", "country": "country", "phone": "phone"}
    assert staged.problems == []


def test_values_are_normalised():
    staged = stage(
        {
            "Navn": "  Fjordhjelp   Telefonen ",
            "Type": "Hotline",
            "Land": "Norge",
            "Telefon": "22 40 00 40",
            "SMS": "+47 22 40 00 40",
            "Website": "FjordHjelp.EXAMPLE/",
            "Chat": "https://fjordhjelp.example/chat#chat",
            "E-post": "mailto:Post@FjordHjelp.EXAMPLE",
            "Languages": "Norwegian Bokmål; en-gb",
            "Topics": "PTSD, Low mood",
            "Audience": "teens",
            "Moderation": "Volunteers",
            "Cost": "gratis",
            "Verified": "30.06.2025",
        }
    )
    row = only(staged.frame)
    assert row.pop("_match") == "name:fjordhjelp telefonen|NO"  # no record_id column: matched by name and country
    assert row == {
        ROW: 2,
        "record_id": "2",
        "name": "Fjordhjelp Telefonen",
        "kind": "helpline",
        "description": None,
        "url": "https://fjordhjelp.example",
        "phone": "+4722400040",
        "sms": "+4722400040",
        "chat_url": "https://fjordhjelp.example/chat",
        "email": "Post@fjordhjelp.example",
        "country": "NO",
        "region": [],
        "areas": ["NO"],
        "languages": ["nb", "en-GB"],
        "topics": ["trauma", "depression"],
        "audience": ["youth"],
        "moderation": "peer",
        "cost": "free",
        "hours": None,
        "always_open": False,
        "verified_at": "2025-06-30",
    }
    assert staged.problems == []


def test_empty_cells_become_none_not_nan():
    row = only(stage({**FULL, "description": "", "url": "  ", "email": ""}).frame)
    assert row["description"] is None and row["url"] is None and row["email"] is None
    assert row["moderation"] is None and row["verified_at"] is None


def test_defaults_from_source_options():
    staged = stage({"name": "Linja", "phone": "116 123"}, options=SourceOptions(country="NO", kind="helpline"))
    row = only(staged.frame)
    assert (row["country"], row["kind"], row["phone"], row["areas"]) == ("NO", "helpline", "116123", ["NO"])
    assert staged.problems == []


def test_defaults_are_normalised_too():
    row = only(stage({"name": "Linja", "phone": "116 123"}, options=SourceOptions(country="Norway", kind="Hotline")).frame)
    assert (row["country"], row["kind"]) == ("NO", "helpline")


def test_row_values_win_over_defaults_and_empty_cells_take_them():
    staged = stage(
        {"name": "A", "kind": "chat", "country": "SE", "url": "https://a.example"},
        {"name": "B", "kind": "", "country": "", "url": "https://b.example"},
        options=SourceOptions(country="NO", kind="helpline"),
    )
    assert staged.frame is not None
    assert staged.frame[["kind", "country"]].values.tolist() == [["chat", "SE"], ["helpline", "NO"]]


def test_phone_is_read_in_the_rows_own_country():
    staged = stage({**FULL, "country": "GB", "phone": "0800 58 58 58"}, options=SourceOptions(country="NO"))
    assert only(staged.frame)["phone"] == "+44800585858"


@pytest.mark.parametrize(
    ("region", "country", "regions", "areas"),
    [
        ("", "NO", [], ["NO"]),
        ("Oslo", "NO", ["NO-03"], ["NO-03"]),
        ("Vestland; Oslo", "NO", ["NO-46", "NO-03"], ["NO-03", "NO-46"]),
        ("Scotland", "GB", ["GB-SCT"], ["GB-SCT"]),
        ("", "worldwide", [], ["WW"]),
    ],
)
def test_areas_are_the_regions_or_else_the_country(region, country, regions, areas):
    row = only(stage({**FULL, "phone": "", "url": "https://x.example", "country": country, "region": region}).frame)
    assert row["region"] == regions
    assert row["areas"] == areas


@pytest.mark.parametrize(
    ("hours", "staged_hours", "always_open"),
    [("24h", "24/7", True), ("Døgnåpen", "24/7", True), ("24/7", "24/7", True), ("Mon-Fri 9-17", "Mon-Fri 9-17", False), ("", None, False)],
)
def test_always_open(hours, staged_hours, always_open):
    row = only(stage({**FULL, "hours": hours}).frame)
    assert row["hours"] == staged_hours
    assert row["always_open"] is always_open


def test_record_id_defaults_to_the_row_number():
    staged = stage({**FULL, "record_id": "mh-1"}, {**FULL, "record_id": ""}, {**FULL, "record_id": " mh-3 "}, first_row=2)
    assert staged.frame is not None
    assert staged.frame["record_id"].tolist() == ["mh-1", "3", "mh-3"]
    assert staged.problems == []


def test_record_id_is_the_row_number_without_the_column():
    staged = stage(FULL, FULL, first_row=10)
    assert staged.frame is not None and staged.frame["record_id"].tolist() == ["10", "11"]


# --- stage_listings: problems -----------------------------------------------------------------


def test_duplicate_record_id():
    staged = stage({**FULL, "record_id": "a"}, {**FULL, "record_id": "b"}, {**FULL, "record_id": " a "}, {**FULL, "record_id": ""})
    assert rules(staged.problems) == [("duplicate_record_id", "error", 4, "record_id", "a")]
    problem = staged.problems[0]
    assert (problem.source, problem.file) == (SOURCE, FILE)
    assert "'a'" in problem.message and problem.fix
    assert staged.frame is not None and len(staged.frame) == 4  # staging keeps every row; validation rejects


def test_an_explicit_record_id_may_clash_with_a_row_number():
    staged = stage({**FULL, "record_id": "3"}, {**FULL, "record_id": ""})
    assert rules(staged.problems) == [("duplicate_record_id", "error", 3, "record_id", "3")]


@pytest.mark.parametrize(
    ("column", "value", "cleaned"),
    [
        ("name", "<b>Fjordhjelp</b>", "Fjordhjelp"),
        ("description", "<p>Free &amp; anonymous</p>", "Free & anonymous"),
        ("description", "&lt;script&gt;alert(1)&lt;/script&gt;", "alert(1)"),
        ("hours", "Mon\x00-Fri", "Mon -Fri"),
        ("record_id", "<i>x1</i>", "x1"),
    ],
)
def test_markup_removed_warning(column, value, cleaned):
    staged = stage({**FULL, column: value})
    assert rules(staged.problems) == [("markup_removed", "warning", 2, column, value)]
    assert column in staged.problems[0].message
    assert only(staged.frame)[column] == cleaned


def test_no_markup_warning_for_plain_text_or_spacing():
    assert stage({**FULL, "description": "  Free,   anonymous  & open < 24 hours "}).problems == []


@pytest.mark.parametrize(
    ("column", "value", "prefix"),
    [
        ("name", '=HYPERLINK("https://evil.example")', "="),
        ("name", "  =1+1", "="),
        ("description", "+ free", "+"),
        ("description", "- peer support", "-"),
        ("hours", "@all times", "@"),
        ("record_id", "-5", "-"),
    ],
)
def test_formula_like_warning(column, value, prefix):
    staged = stage({**FULL, column: value})
    assert rules(staged.problems) == [("formula_like", "warning", 2, column, value)]
    problem = staged.problems[0]
    assert f"'{prefix}'" in problem.message and f"'{prefix}'" in problem.fix


@pytest.mark.parametrize(("column", "value"), [("phone", "+47 22 40 00 40"), ("email", "@help@example.org"), ("url", "=x.example")])
def test_no_formula_warning_outside_text_columns(column, value):
    problems = stage({**FULL, column: value}).problems
    assert [p for p in problems if p.rule == "formula_like"] == []


def test_markup_and_formula_together_on_one_cell():
    staged = stage({**FULL, "name": "=<b>X</b>"})
    assert sorted(rules(staged.problems)) == [
        ("formula_like", "warning", 2, "name", "=<b>X</b>"),
        ("markup_removed", "warning", 2, "name", "=<b>X</b>"),
    ]


def test_missing_required_columns():
    staged = stage({"phone": "22 40 00 40", "Colour": "x"})
    assert staged.frame is None
    assert rules(staged.problems) == [
        ("unknown_column", "warning", None, None, "Colour"),
        ("missing_column", "error", None, "name", None),
        ("missing_column", "error", None, "kind", None),
        ("missing_column", "error", None, "country", None),
    ]
    assert all(p.message and p.fix for p in staged.problems)
    assert "'kind'" in staged.problems[2].message


def test_defaults_satisfy_required_columns_but_not_name():
    staged = stage({"phone": "22 40 00 40"}, options=SourceOptions(country="NO", kind="helpline"))
    assert staged.frame is None
    assert rules(staged.problems) == [("missing_column", "error", None, "name", None)]


def test_unknown_column_warning_keeps_the_rows():
    staged = stage({**FULL, "Colour": "blue", "Navn": "Other name"})
    assert rules(staged.problems) == [
        ("unknown_column", "warning", None, None, "Colour"),
        ("unknown_column", "warning", None, None, "Navn"),
    ]
    assert "'Colour'" in staged.problems[0].message
    assert only(staged.frame)["name"] == "Fjordhjelp"


def test_cells_that_are_not_strings_are_staged_as_their_text():
    frame = raw({**FULL, "record_id": "x"})
    frame["record_id"] = [12345]  # a reader that kept a number
    staged = stage_listings(frame, SOURCE, FILE, SourceOptions())
    assert staged.frame is not None
    assert staged.frame["record_id"].tolist() == ["12345"]


def test_staging_and_validating_hold_the_garbage_collector_off(monkeypatch):
    """Both make an object per cell and problem, never in cycles: the cyclic collector, run over and over as they do,
    would walk every object alive each time (validating 1M rows took a third longer)."""
    import datetime as dt
    import gc

    from curate import normalise as n
    from curate import validate

    seen: list[bool] = []
    hours = n.hours
    monkeypatch.setattr(n, "hours", lambda v: seen.append(gc.isenabled()) or hours(v))
    staged = stage(FULL)
    monkeypatch.setattr(validate, "_fan_out", lambda *a: seen.append(gc.isenabled()) or [])
    validate.validate_listings(staged.frame.assign(verified_at="2001-01-01"), SOURCE, FILE, dt.date(2026, 11, 25), staged.columns)
    assert seen == [False, False] and gc.isenabled()
