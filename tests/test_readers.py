"""The XLSX, JSON and HSDS readers: each returns the same ``Table`` as ``read_table``."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from curate import normalise
from curate.read import ROW, Table
from curate.read_hsds import hsds_files_from_zip, read_hsds
from curate.read_json import read_json
from curate.read_xlsx import XlsxLimits, cell_text, read_xlsx

HSDS_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hsds-3.0" / "examples-csv"


def _frame(table: Table) -> pd.DataFrame:
    assert table.error == ""
    assert table.frame is not None
    return table.frame


def _records(table: Table) -> list[dict[str, object]]:
    return [{str(k): v for k, v in r.items()} for r in _frame(table).to_dict("records")]


# --- XLSX -------------------------------------------------------------------------------------------


def _workbook_bytes(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def workbook() -> bytes:
    """Three sheets: a messy first one, a second one named in ``sources.toml``, an empty third one."""
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "Helplines"
    # rows 1-2 empty: the header is the first non-empty row, row 3
    for column, name in enumerate(["Name", "Telefon", "Name", "Verified", "Open 24/7", "Rating"], start=2):
        first.cell(row=3, column=column, value=name)
    first.cell(row=3, column=9, value="   ")  # a blank header over an empty column: dropped
    first.append([None, "Fjordhjelp", 4721000001.0, "Hjelpetelefonen", dt.datetime(2025, 6, 30), True, 1.5])  # row 4
    # row 5 left empty
    first.append([])
    first.append([None, "Nattlinja", 21000001, None, dt.date(2024, 1, 2), False, 0.1 + 0.2])  # row 6
    first.cell(row=7, column=10, value="")  # an empty string far right: still an empty column
    first.append([None, "Late", None, None, dt.datetime(2025, 6, 30, 14, 5, 9)])  # row 8

    second = wb.create_sheet("Chat services")
    second.append(["name", "url"])
    second.append(["Sidet med ord", "https://sidetmedord.no"])

    wb.create_sheet("Empty")
    return _workbook_bytes(wb)


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A valid workbook with one more member: 30 MB of zeros that pack into a few KB."""
    buffer = io.BytesIO()
    wb = openpyxl.Workbook()
    wb.active.append(["name"])
    with zipfile.ZipFile(io.BytesIO(_workbook_bytes(wb))) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in source.infolist():
            bomb.writestr(member, source.read(member))
        bomb.writestr("xl/media/zeros.bin", b"\0" * 30_000_000, compresslevel=9)
    return buffer.getvalue()


def test_xlsx_first_sheet_by_default(workbook: bytes) -> None:
    table = read_xlsx(workbook)
    assert table.encoding == "xlsx"
    assert table.delimiter == ""
    assert not table.empty
    assert table.header == ["Name", "Telefon", "Name (2)", "Verified", "Open 24/7", "Rating"]
    assert list(_frame(table).columns) == [*table.header, ROW]
    assert all(_frame(table)[c].dtype == object for c in table.header)
    assert _records(table) == [
        {
            "Name": "Fjordhjelp",
            "Telefon": "4721000001",
            "Name (2)": "Hjelpetelefonen",
            "Verified": "2025-06-30",
            "Open 24/7": "true",
            "Rating": "1.5",
            ROW: 4,
        },
        {
            "Name": "Nattlinja",
            "Telefon": "21000001",
            "Name (2)": "",
            "Verified": "2024-01-02",
            "Open 24/7": "false",
            "Rating": "0.3",
            ROW: 6,
        },
        {"Name": "Late", "Telefon": "", "Name (2)": "", "Verified": "2025-06-30T14:05:09", "Open 24/7": "", "Rating": "", ROW: 8},
    ]


def test_xlsx_named_sheet_case_insensitive(workbook: bytes) -> None:
    table = read_xlsx(workbook, sheet="chat SERVICES")
    assert _records(table) == [{"name": "Sidet med ord", "url": "https://sidetmedord.no", ROW: 2}]


def test_xlsx_missing_sheet_lists_the_sheets(workbook: bytes) -> None:
    table = read_xlsx(workbook, sheet="Forums")
    assert table.frame is None
    assert table.error == "it has no sheet called 'Forums' (its sheets are: Helplines, Chat services, Empty)"


def test_xlsx_empty_sheet_is_empty(workbook: bytes) -> None:
    table = read_xlsx(workbook, sheet="Empty")
    assert table.frame is None
    assert table.empty
    assert table.error == ""


def test_xlsx_not_a_zip() -> None:
    table = read_xlsx(b"Name,Phone\nA,1\n")
    assert table.frame is None
    assert table.error.startswith("it is not an Excel .xlsx file (")


def test_xlsx_old_xls_format() -> None:
    table = read_xlsx(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    assert table.error == "it is not an Excel .xlsx file (it looks like an old .xls workbook; save it as .xlsx)"


def test_xlsx_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    table = read_xlsx(buffer.getvalue())
    assert table.frame is None
    assert table.error.startswith("it is not an Excel .xlsx file (")


def test_xlsx_damaged_sheet(workbook: bytes) -> None:
    damaged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, zipfile.ZipFile(damaged, "w") as target:
        for member in source.infolist():
            target.writestr(member, b"<worksheet><sheetData><row" if member.filename.endswith("sheet1.xml") else source.read(member))
    table = read_xlsx(damaged.getvalue())
    assert table.frame is None
    assert table.error.startswith("it is not an Excel .xlsx file (ParseError")


def test_xlsx_zip_bomb_is_refused_before_unpacking(zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 200_000
    table = read_xlsx(zip_bomb)
    assert table.frame is None
    assert table.error.startswith("it would unpack to more than 30 MB")
    assert table.error.endswith("which is more than we accept")
    assert "xl/media/zeros.bin" in table.error


def test_xlsx_zip_bomb_passes_with_a_generous_ratio(zip_bomb: bytes) -> None:
    """The ratio rule is what refused it: with the rule lifted, the same bytes are a readable workbook."""
    table = read_xlsx(zip_bomb, limits=XlsxLimits(max_ratio=10_000))
    assert table.error == ""
    assert table.header == ["name"]


def test_xlsx_total_size_limit(workbook: bytes) -> None:
    table = read_xlsx(workbook, limits=XlsxLimits(max_unzipped_bytes=1000))
    assert table.frame is None
    assert table.error == "it would unpack to more than 0.001 MB, which is more than we accept"


def test_xlsx_row_limit(workbook: bytes) -> None:
    assert read_xlsx(workbook, limits=XlsxLimits(max_rows=7)).error == "it has more than 7 rows, which is more than we accept"
    assert read_xlsx(workbook, limits=XlsxLimits(max_rows=8)).error == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (47116123, "47116123"),
        (4.7116123e10, "47116123000"),
        (-2.0, "-2"),
        (1.5, "1.5"),
        (1e-05, "0.00001"),
        (dt.date(2025, 6, 30), "2025-06-30"),
        (dt.datetime(2025, 6, 30), "2025-06-30"),
        (dt.datetime(2025, 6, 30, 0, 0, 1), "2025-06-30T00:00:01"),
        (dt.time(8, 30), "08:30:00"),
        ("  as is ", "  as is "),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


# --- JSON -------------------------------------------------------------------------------------------


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def test_json_list_of_objects_flattened() -> None:
    document = [
        {
            "name": "Fjordhjelp",
            "phone": 4721000001.0,
            "free": True,
            "rating": 1.5,
            "note": None,
            "contact": {"email": "a@example.org", "address": {"country": "NO"}},
            "languages": ["nb", "en"],
            "phones": [{"number": "116 123", "type": "voice"}, {"number": "2222", "type": "sms"}, {"number": "3333"}],
        },
        {"name": "Nattlinja", "extra": "late column", "contact": {"email": "b@example.org"}},
    ]
    table = read_json(_json(document))
    assert table.encoding == "utf-8"
    assert table.delimiter == ""
    assert table.header == [
        "name",
        "phone",
        "free",
        "rating",
        "note",
        "contact.email",
        "contact.address.country",
        "languages",
        "phones.number",
        "phones.type",
        "extra",
    ]
    assert _records(table) == [
        {
            "name": "Fjordhjelp",
            "phone": "4721000001",
            "free": "true",
            "rating": "1.5",
            "note": "",
            "contact.email": "a@example.org",
            "contact.address.country": "NO",
            "languages": "nb;en",
            "phones.number": "116 123;2222;3333",
            "phones.type": "voice;sms",
            "extra": "",
            ROW: 2,
        },
        {
            "name": "Nattlinja",
            "phone": "",
            "free": "",
            "rating": "",
            "note": "",
            "contact.email": "b@example.org",
            "contact.address.country": "",
            "languages": "",
            "phones.number": "",
            "phones.type": "",
            "extra": "late column",
            ROW: 3,
        },
    ]


def test_json_object_with_one_list_and_bom() -> None:
    table = read_json(b"\xef\xbb\xbf" + _json({"services": [{"name": "A"}, {"name": "B", "tags": [1, 2.0, None, False]}]}))
    assert _records(table) == [{"name": "A", "tags": "", ROW: 2}, {"name": "B", "tags": "1;2;false", ROW: 3}]


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (42, "it is a JSON number, not a list of objects"),
        ("text", "it is a JSON string, not a list of objects"),
        ({"a": [], "b": []}, "it is a JSON object, not a list of objects"),
        ({"name": "A"}, "it is a JSON object, not a list of objects"),
        ([{"name": "A"}, "B"], "item 2 of its list is a string, not an object with named fields"),
    ],
)
def test_json_without_a_list_of_objects(document: object, error: str) -> None:
    table = read_json(_json(document))
    assert table.frame is None
    assert table.error.startswith(error)


def test_json_invalid_names_line_and_column() -> None:
    table = read_json(b'[\n  {"name": "A"},\n  {"name": "B",}\n]')
    assert table.frame is None
    assert table.error == "it is not valid JSON (line 3, column 16: Expecting property name enclosed in double quotes)"


def test_json_not_utf8() -> None:
    assert read_json('[{"name": "Nattlinja – Norge"}]'.encode("cp1252")).error.startswith("it is not UTF-8 text")


@pytest.mark.parametrize("data", [b"[]", b'{"services": []}', b"", b"  \n"])
def test_json_empty(data: bytes) -> None:
    table = read_json(data)
    assert table.frame is None
    assert table.empty
    assert table.error == ""


# --- HSDS -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not HSDS_EXAMPLES.is_dir(), reason="the HSDS 3.0 reference examples are not checked out next to the repository")
def test_hsds_reference_examples() -> None:
    files = {p.name: p.read_bytes() for p in HSDS_EXAMPLES.iterdir() if p.is_file()}
    table = read_hsds(files)
    assert table.header == [
        "record_id",
        "name",
        "kind",
        "description",
        "url",
        "phone",
        "sms",
        "email",
        "country",
        "region",
        "languages",
        "hours",
        "phone_numbers_all",
    ]
    [row] = _records(table)
    assert row == {
        "record_id": "ac148810-d857-441c-9679-408f346de14b",
        "name": "Community Counselling",
        "kind": "",
        "description": "Counselling Services provided by trained professionals. Suitable for people with mental health conditions "
        "such as anxiety, depression, or eating disorders as well as people experiencing difficult life events and circumstances. ",
        "url": "http://example.com/counselling",
        # the example writes the number with literal quotes ("""+44 1234 234567"""); kept as written
        "phone": '"+44 1234 234567"',
        "sms": "",
        "email": "email@example.com",
        "country": "US",
        "region": "MyState",
        "languages": "ur",
        "hours": "",  # Thursdays and Fridays, 10:00-18:00
        "phone_numbers_all": '"+44 1234 234567"',
        ROW: 2,
    }
    assert normalise.phone(str(row["phone"]), "GB") == "+441234234567"  # the quotes do not hurt later


def _csv(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def package() -> dict[str, bytes]:
    """Three services of two organisations: several phones, two locations, a 24/7 week and a daily schedule."""
    return {
        "services.csv": b"\xef\xbb\xbf"
        + _csv(
            "id,organization_id,name,description,url,email,status",
            "s1,o1,Hjelpetelefonen,Someone to talk to,,,active",
            "",  # a blank line: later services keep their row numbers
            's2,o2,"Chat, and more",,https://chat.example.org,chat@example.org,active',
            "s3,o1,Sorgstøtte,,,,active",
        ),
        "organizations.csv": _csv(
            "id,name,email,website",
            "o1,Fjordhjelp,post@fjordhjelp.example,https://fjordhjelp.example",
            "o2,Chat Org,,https://org2.example.org",
        ),
        "phones.csv": _csv(
            "id,service_id,organization_id,service_at_location_id,number,type",
            "p1,s1,o1,,2222,text",
            "p2,s1,o1,,116 123,voice",
            "p3,s1,o1,,+47 22 00 00 00,fax",
            "p4,,,sal1,+47 33 00 00 00,voice",
            "p5,,o1,,+47 44 00 00 00,voice",
            "p6,s1,o1,,116 123,voice",
        ),
        "service_at_location.csv": _csv("id,service_id,location_id", "sal1,s1,l1", "sal2,s1,l2", "sal3,s2,l3"),
        "locations.csv": _csv("id,name", "l1,Oslo office", "l2,Bergen office", "l3,Online"),
        "addresses.csv": _csv(
            "id,location_id,state_province,country,address_type",
            "a1,l1,NO-03,NO,postal",
            "a2,l2,Vestland,NO,physical",
            "a3,l2,12345,NO,postal",
            "a4,l3,,,virtual",
        ),
        "languages.csv": _csv(
            "id,service_id,name,code", "g1,s1,Norwegian Bokmål,nb", "g2,s1,English,en", "g3,s2,Sámi,", "g4,s1,English,en"
        ),
        "schedules.csv": _csv(
            "id,service_id,service_at_location_id,freq,byday,opens_at,closes_at,description",
            'h1,s1,,WEEKLY,"MO,TU,WE,TH,FR",00:00,24:00,',
            'h2,,sal1,WEEKLY,"SA,SU",00:00:00,23:59:00,',
            "h3,s2,,DAILY,,09:00,17:00,",
            "h4,s3,,,,,,Open 24/7 by phone",
        ),
    }


def test_hsds_package_mapping(package: dict[str, bytes]) -> None:
    table = read_hsds(package)
    rows = {r["record_id"]: r for r in _records(table)}
    assert list(rows) == ["s1", "s2", "s3"]
    assert rows["s1"] == {
        "record_id": "s1",
        "name": "Hjelpetelefonen",
        "kind": "",
        "description": "Someone to talk to",
        "url": "https://fjordhjelp.example",  # the organisation's website
        "phone": "116 123",  # the first voice number; the text line goes to sms, the fax is no phone
        "sms": "2222",
        "email": "post@fjordhjelp.example",
        "country": "NO",
        "region": "Vestland;NO-03",  # physical addresses first; a postcode in state_province is no region
        "languages": "nb;en",
        "hours": "24/7",  # MO-FR and SA-SU, all day
        "phone_numbers_all": "2222;116 123;+47 22 00 00 00;+47 33 00 00 00",
        ROW: 2,
    }
    assert rows["s2"] | {"description": None} == {
        "record_id": "s2",
        "name": "Chat, and more",
        "kind": "",
        "description": None,
        "url": "https://chat.example.org",
        "phone": "",
        "sms": "",
        "email": "chat@example.org",
        "country": "",
        "region": "",
        "languages": "Sámi",  # no code: the name
        "hours": "",
        "phone_numbers_all": "",
        ROW: 4,
    }
    # no phone of its own: the organisation's own (not another service's) numbers; 24/7 from the description
    assert (rows["s3"]["phone"], rows["s3"]["phone_numbers_all"], rows["s3"]["hours"], rows["s3"][ROW]) == (
        "+47 44 00 00 00",
        "+47 44 00 00 00",
        "24/7",
        5,
    )


def test_hsds_not_all_week_is_not_24_7(package: dict[str, bytes]) -> None:
    without_weekend = dict(
        package, **{"schedules.csv": _csv("id,service_id,freq,byday,opens_at,closes_at", 'h1,s1,WEEKLY,"MO,TU",00:00,24:00')}
    )
    assert _frame(read_hsds(without_weekend))["hours"].tolist() == ["", "", ""]


def test_hsds_tables_in_a_folder_or_named_by_datapackage(package: dict[str, bytes]) -> None:
    files = {(f"data/{k}" if k == "services.csv" else k): v for k, v in package.items()}
    assert _frame(read_hsds(files))["record_id"].tolist() == ["s1", "s2", "s3"]  # found by its file name alone
    files["old/services.csv"] = _csv("id,name", "x,Old")
    assert read_hsds(files).error == (
        "the HSDS package has several services.csv (data/services.csv, old/services.csv) and no datapackage.json naming one"
    )
    files["datapackage.json"] = _json(
        {"resources": [{"name": "service", "path": "old/services.csv"}, {"name": "phone", "path": "nowhere.csv"}]}
    )
    assert _records(read_hsds(files)) == [
        {c: "" for c in read_hsds(files).header} | {"record_id": "x", "name": "Old", ROW: 2},
    ]
    renamed = {("tjenester.csv" if k == "services.csv" else k): v for k, v in package.items()}
    assert read_hsds(renamed).error == "the HSDS package has no services.csv"
    renamed["datapackage.json"] = _json({"resources": [{"name": "service", "path": "./tjenester.csv"}]})
    assert _frame(read_hsds(renamed))["phone"].tolist() == ["116 123", "", "+47 44 00 00 00"]


def test_hsds_without_services() -> None:
    table = read_hsds({"organizations.csv": _csv("id,name", "o1,Org")})
    assert table.frame is None
    assert table.error == "the HSDS package has no services.csv"


def test_hsds_services_without_rows_is_empty() -> None:
    table = read_hsds({"services.csv": _csv("id,name")})
    assert table.frame is None
    assert table.empty


def test_hsds_table_not_utf8(package: dict[str, bytes]) -> None:
    broken = dict(package, **{"phones.csv": "id,number\np1,1 – 2\n".encode("cp1252")})
    assert read_hsds(broken).error.startswith("the HSDS package's phones.csv is not UTF-8 text")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_hsds_zip_with_a_top_folder(package: dict[str, bytes]) -> None:
    members = {f"hsds-export/{name}": data for name, data in package.items()}
    members["__MACOSX/hsds-export/._services.csv"] = b"\0\x05\x16\x07"
    members["hsds-export/extra/readme.txt"] = b"notes"
    files = hsds_files_from_zip(_zip(members))
    assert isinstance(files, dict)
    assert sorted(files) == sorted([*package, "extra/readme.txt"])
    assert files["services.csv"] == package["services.csv"]
    assert _frame(read_hsds(files))["record_id"].tolist() == ["s1", "s2", "s3"]


def test_hsds_zip_without_a_top_folder_keeps_paths(package: dict[str, bytes]) -> None:
    files = hsds_files_from_zip(_zip({"services.csv": package["services.csv"], "more/phones.csv": package["phones.csv"]}))
    assert isinstance(files, dict)
    assert sorted(files) == ["more/phones.csv", "services.csv"]


@pytest.mark.parametrize("name", ["../evil.csv", "hsds/../../evil.csv", "/etc/evil.csv", "hsds\\..\\evil.csv", "C:/evil.csv"])
def test_hsds_zip_with_an_unsafe_member_is_refused(package: dict[str, bytes], name: str) -> None:
    result = hsds_files_from_zip(_zip({"services.csv": package["services.csv"], name: b"x"}))
    assert isinstance(result, str)
    assert result.startswith("it holds a file with an unsafe path (")
    assert "evil.csv" in result


def test_hsds_zip_size_limit_and_not_a_zip(package: dict[str, bytes]) -> None:
    too_big = hsds_files_from_zip(_zip(package), max_unzipped_bytes=100)
    assert too_big == "it would unpack to more than 0.0001 MB, which is more than we accept"
    result = hsds_files_from_zip(b"id,name\n")
    assert isinstance(result, str)
    assert result.startswith("it is not a ZIP archive (")
