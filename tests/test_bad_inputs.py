"""Bad input never crashes and never loses data: each case has one exact, curator-readable outcome."""

from __future__ import annotations

import datetime as dt

from curate.checking import check_source
from curate.export import csv_bytes
from curate.sources import SourceOptions

TODAY = dt.date(2026, 11, 25)
HEADER = "name,kind,url,phone,country,description\n"


def check(data: bytes, file: str = "list.csv"):
    return check_source(data, file, file.rsplit(".", 1)[0], SourceOptions(), TODAY)


def only(problems, **want):
    found = [p for p in problems if all(getattr(p, k) == v for k, v in want.items())]
    assert len(found) == 1, (want, problems)
    return found[0]


def test_empty_file_is_one_file_level_error():
    for data in (b"", b"   \n\n", HEADER.encode()):
        r = check(data)
        assert not r.usable and r.rows_read == 0
        p = only(r.problems, rule="empty_file")
        assert (p.row, p.severity) == (None, "error") and "no rows" in p.message


def test_unknown_headers_reject_the_file_and_name_the_missing_column():
    r = check(b"Foo,Bar,Baz\n1,2,3\n")
    assert not r.usable
    assert {p.column for p in r.problems if p.rule == "missing_column"} == {"name", "kind", "country"}
    assert {p.value for p in r.problems if p.rule == "unknown_column"} == {"Foo", "Bar", "Baz"}
    assert r.raw is not None and r.raw.loc[0, "Foo"] == "1"  # the raw input is kept


def test_unknown_extra_header_is_a_warning_and_the_rows_go_on():
    r = check(b"name,kind,url,country,Favourite colour\nLine One,helpline,https://one.example,GB,blue\n")
    assert r.rows_accepted == 1
    p = only(r.problems, rule="unknown_column")
    assert (p.severity, p.value) == ("warning", "Favourite colour")


def test_latin1_with_semicolons_is_read():
    data = "navn;type;telefon;land;nettside\nKrisetelefonen Tromsø;hjelpetelefon;116 123;Norge;https://tromsø.example\n".encode("latin-1")
    r = check(data)
    assert r.problems == [] and r.rows_accepted == 1
    row = r.accepted.iloc[0]
    assert row["name"] == "Krisetelefonen Tromsø" and row["kind"] == "helpline" and row["phone"] == "116123"
    assert row["country"] == "NO" and row["url"] == "https://xn--troms-zua.example"


def test_cell_starting_with_equals_is_a_warning_and_exported_as_text():
    r = check((HEADER + '"=HYPERLINK(""https://evil.example"")",helpline,https://ok.example,,GB,"=1+2"\n').encode())
    assert r.rows_accepted == 1
    assert {(p.rule, p.column, p.severity) for p in r.problems} == {
        ("formula_like", "name", "warning"),
        ("formula_like", "description", "warning"),
    }
    listing = {"id": "lst_000000000000", **{k: None for k in ("kind", "url", "phone", "sms", "chat_url", "email", "moderation", "cost")}}
    listing.update(name=r.accepted.iloc[0]["name"], description="=1+2", areas=["GB"], sources=[])
    from schemas.fields import LISTING_FIELDS

    text = csv_bytes([{f: listing.get(f) for f in LISTING_FIELDS}]).decode()
    assert "'=HYPERLINK" in text and ",'=1+2," in text


def test_javascript_url_rejects_the_row_and_keeps_the_others():
    r = check((HEADER + "Bad,helpline,javascript:alert(1),,GB,\nGood,helpline,https://good.example,,GB,\n").encode())
    assert r.rows_read == 2 and r.rows_accepted == 1 and r.accepted.iloc[0]["name"] == "Good"
    p = only(r.problems, rule="http_url")
    assert (p.row, p.column, p.value, p.severity) == (2, "url", "javascript:alert(1)", "error")
    assert "https://" in p.fix


def test_unknown_country_is_an_error_naming_the_value():
    r = check((HEADER + "Line,helpline,https://line.example,,Narnia,\n").encode())
    assert r.rows_accepted == 0
    p = only(r.problems, rule="country_code")
    assert (p.row, p.column, p.value) == (2, "country", "Narnia")
    assert "two-letter code" in p.fix


def test_html_in_description_is_removed_with_a_warning():
    r = check((HEADER + 'Line,helpline,https://line.example,,GB,"<p>Call us <b>now</b><script>x()</script></p>"\n').encode())
    assert r.rows_accepted == 1
    assert r.accepted.iloc[0]["description"] == "Call us now x()"
    p = only(r.problems, rule="markup_removed")
    assert (p.severity, p.row, p.column) == ("warning", 2, "description")


def test_binary_file_renamed_csv_is_unreadable():
    r = check(b"PK\x03\x04\x00\x00binary\x00\x00" * 20)
    assert not r.usable
    p = only(r.problems, rule="unreadable_file")
    assert p.row is None and "binary" in p.message


def test_file_name_that_is_not_a_source_id_is_refused():
    r = check_source(b"name,kind,url,country\nA,helpline,https://a.example,GB\n", "My List.csv", "my list", SourceOptions(), TODAY)
    assert not r.usable
    only(r.problems, rule="bad_source_id", value="my list")


def test_unsupported_spreadsheet_is_reported_not_silently_ignored():
    r = check_source(b"PK\x03\x04", "sheet.ods", "sheet", SourceOptions(), TODAY)
    assert not r.usable
    only(r.problems, rule="unsupported_format", value=".ods")


def test_broken_xlsx_is_unreadable():
    r = check_source(b"PK\x03\x04 not really a workbook", "sheet.xlsx", "sheet", SourceOptions(), TODAY)
    assert not r.usable
    p = only(r.problems, rule="unreadable_file")
    assert "Excel" in p.message
