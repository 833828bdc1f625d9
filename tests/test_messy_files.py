"""Issue 3 point 3: the messy files curators really make, each read into the right listing (bytes in, rows out)."""

from __future__ import annotations

import datetime as dt

import pytest

from curate.checking import check_source
from curate.sources import SourceOptions

TODAY = dt.date(2026, 11, 25)


def check(data: bytes, file: str = "list.csv", **options):
    return check_source(data, file, file.rsplit(".", 1)[0], SourceOptions(**options), TODAY)


def accepted(data: bytes, file: str = "list.csv", **options) -> list[dict]:
    r = check(data, file, **options)
    assert r.usable, r.problems
    return r.accepted.to_dict("records")


ROW = "Fjordlinja,helpline,21 00 00 01,Norge,https://fjordlinja.example\n"


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("utf-8 with BOM", b"\xef\xbb\xbf" + ("name,kind,phone,country,url\n" + ROW).encode()),
        ("utf-16 from Excel", ("name\tkind\tphone\tcountry\turl\n" + ROW.replace(",", "\t")).encode("utf-16")),
        ("windows-1252", ("name;kind;phone;country;url\n" + ROW.replace(",", ";").replace("linja", "linja Tromsø")).encode("cp1252")),
        ("semicolons", ("name;kind;phone;country;url\n" + ROW.replace(",", ";")).encode()),
        ("tabs in .csv", ("name\tkind\tphone\tcountry\turl\n" + ROW.replace(",", "\t")).encode()),
    ],
)
def test_encodings_and_delimiters(label, data):
    (row,) = accepted(data)
    assert row["name"].startswith("Fjordlinja") and row["phone"] == "+4721000001" and row["country"] == "NO"


def test_quoted_newlines_trailing_empty_rows_and_columns():
    data = b'name,kind,phone,country,description,,\n"Line A",helpline,116 123,NO,"First line\nsecond line",,\n,,,,,,\n,,,,,,\n'
    r = check(data)
    (row,) = r.accepted.to_dict("records")
    assert row["description"] == "First line second line" and row["_row"] == 2
    assert not [p for p in r.problems if p.rule == "unknown_column"]  # empty trailing columns are dropped, not reported


def test_duplicate_header_names_keep_the_first_and_report_the_second():
    r = check(b"name,kind,phone,country,phone\nA,helpline,116 123,NO,21 00 00 01\n")
    (row,) = r.accepted.to_dict("records")
    assert row["phone"] == "116123"
    assert [(p.rule, p.value) for p in r.problems] == [("unknown_column", "phone (2)")]


@pytest.mark.parametrize(
    ("language", "header"),
    [
        ("english", "Name,Type,Telephone,Country,Website"),
        ("norwegian", "Navn,Type,Telefon,Land,Nettside"),
        ("swedish", "Namn,Typ,Telefon,Land,Webbplats"),
        ("danish", "Navn,Type,Telefon,Land,Hjemmeside"),
        ("german", "Name,Art,Telefon,Land,Webseite"),
        ("french", "Nom,Type,Téléphone,Pays,Site web"),
        ("spanish", "Nombre,Tipo,Teléfono,País,Sitio web"),
    ],
)
def test_header_aliases_in_seven_languages(language, header):
    (row,) = accepted((header + "\n" + ROW).encode())
    assert (row["name"], row["kind"], row["phone"], row["country"], row["url"]) == (
        "Fjordlinja",
        "helpline",
        "+4721000001",
        "NO",
        "https://fjordlinja.example",
    )


def test_one_cell_with_several_numbers():
    r = check(b"name,kind,phone,country\nLinja,helpline,116 123 / SMS 2222,NO\nTo,helpline,21 00 00 01 eller 116 123,NO\n")
    rows = r.accepted.to_dict("records")
    assert (rows[0]["phone"], rows[0]["sms"]) == ("116123", "2222")
    assert (rows[1]["phone"], rows[1]["sms"]) == ("+4721000001", None)
    (extra,) = [p for p in r.problems if p.rule == "extra_numbers"]
    assert (extra.row, extra.severity, extra.value) == (3, "warning", "116 123")


@pytest.mark.parametrize(
    ("cell", "country", "phone"),
    [
        ("4.721000001E9", "NO", "+4721000001"),
        ("4721000001.0", "NO", "+4721000001"),
        ("4721000001", "NO", "+4721000001"),
        ("2079460001", "GB", "+442079460001"),
        ("8001111", "GB", "+448001111"),
    ],
)
def test_numbers_mangled_by_excel(cell, country, phone):
    (row,) = accepted(f"name,kind,phone,country\nA,helpline,{cell},{country}\n".encode())
    assert row["phone"] == phone


@pytest.mark.parametrize(
    "cell",
    ["2025-06-30", "30.06.2025", "30/06/2025", "2025/06/30", "30 June 2025", "June 30, 2025", "45838", "2025-06-30 00:00:00", "30.06.25"],
)
def test_dates_in_several_notations(cell):
    (row,) = accepted(f'name,kind,phone,country,verified_at\nA,helpline,116 123,NO,"{cell}"\n'.encode())
    assert row["verified_at"] == "2025-06-30"
