"""The HSDS 3.0 package in hsds/: mapping, stable UUIDs, 24/7 schedules, validity against the specification."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from frictionless import Package
from hypothesis import given
from hypothesis import strategies as st

from curate import export, hsds
from schemas import hsds as m
from schemas.fields import LISTING_FIELDS
from tests.conftest import REPO
from tests.test_export import LISTINGS, listing

REFERENCE = REPO.parent / "shared" / "reference" / "hsds-3.0" / "datapackage.json"

RICH = [
    *LISTINGS,
    listing(
        "7",
        "Night Line",
        ["NO", "NO-03"],
        phone="+4722000000",
        sms="2222",
        url="https://night.example/",
        chat_url="https://night.example/chat",
        email="help@night.example",
        languages=["nb", "en"],
        topics=["suicide", "lgbtq"],
        audience=["lgbtq", "youth"],
        cost="free",
        hours="24/7",
        always_open=True,
        verified_at="2026-06-30",
        updated_at="2026-11-25T03:00:00Z",
        description='=HYPERLINK("http://evil.invalid") -- read me',
    ),
    listing("8", "Evening Chat", ["WW"], kind="chat", chat_url="https://evening.example/", hours="Mon-Fri 18-23"),
]


def rows(files: dict[str, bytes], table: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[f"hsds/{table}"].decode("utf-8"))))


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return export.release_files(sorted(RICH, key=lambda x: (x["kind"], x["name"], x["id"])))


def test_vendored_descriptor_equals_the_reference():
    if not REFERENCE.is_file():
        pytest.skip("../shared/reference is not beside the repo (a clean clone uses the vendored copy)")
    assert m.DESCRIPTOR_FILE.read_bytes() == REFERENCE.read_bytes()


def test_every_listing_field_is_mapped_or_explained():
    missing = set(LISTING_FIELDS) - m.covered_fields()
    assert not missing, f"add these fields to the HSDS mapping in schemas/hsds.py (or to UNMAPPED, with a reason): {missing}"


def test_every_table_of_the_specification_is_written(files):
    spec_tables = {r["path"] for r in m.descriptor()["resources"]}
    assert {p.removeprefix("hsds/") for p in files if p.startswith("hsds/") and p.endswith(".csv")} == spec_tables
    assert rows(files, "services.csv")[0].keys() == set(m.table_columns()["services.csv"])


def test_package_validates_against_the_specification_descriptor(tmp_path, files):
    for rel, data in files.items():
        if rel.startswith("hsds/"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(data)
    spec = json.loads((REFERENCE if REFERENCE.is_file() else m.DESCRIPTOR_FILE).read_text(encoding="utf-8"))
    report = Package(spec, basepath=str(tmp_path / "hsds")).validate()
    assert report.valid, report.flatten(["type", "message"])[:5]
    ours = Package(str(tmp_path / "hsds" / "datapackage.json")).validate()  # the package's own descriptor too
    assert ours.valid, ours.flatten(["type", "message"])[:5]
    assert json.loads(files["hsds/datapackage.json"])["resources"] == spec["resources"]


def test_ids_are_uuid5_of_listing_ids_and_stable(files):
    night = next(x for x in RICH if x["name"] == "Night Line")
    service = next(r for r in rows(files, "services.csv") if r["name"] == "Night Line")
    assert service["id"] == str(uuid.uuid5(m.NAMESPACE, f"service:{night['id']}"))
    assert uuid.UUID(service["id"]).version == 5
    again = export.release_files(sorted(RICH, key=lambda x: (x["kind"], x["name"], x["id"])))
    assert {k: v for k, v in again.items() if k.startswith("hsds/")} == {k: v for k, v in files.items() if k.startswith("hsds/")}
    all_ids = [r["id"] for t in m.table_columns() for r in rows(files, t)]
    assert len(all_ids) == len(set(all_ids))


def test_listing_fields_land_in_their_tables(files):
    s = next(r for r in rows(files, "services.csv") if r["name"] == "Night Line")
    assert (s["url"], s["email"], s["status"], s["assured_date"]) == (
        "https://night.example/",
        "help@night.example",
        "active",
        "2026-06-30",
    )
    assert "Chat at https://night.example/chat" in s["application_process"] and s["fees_description"]
    org = next(r for r in rows(files, "organizations.csv") if r["id"] == s["organization_id"])
    assert org["website"] == "https://night.example/"
    phones = {(r["number"], r["type"]) for r in rows(files, "phones.csv") if r["service_id"] == s["id"]}
    assert phones == {("+4722000000", "voice"), ("2222", "text")}
    areas = [(r["extent"], r["name"]) for r in rows(files, "service_areas.csv") if r["service_id"] == s["id"]]
    assert areas == [("NO", "Norway"), ("NO-03", "Oslo")]
    langs = {(r["code"], r["name"]) for r in rows(files, "languages.csv") if r["service_id"] == s["id"]}
    assert langs == {("nb", "Norwegian Bokmål"), ("en", "English")}
    terms = {r["id"]: r["code"] for r in rows(files, "taxonomy_terms.csv")}
    attrs = {terms[r["taxonomy_term_id"]] for r in rows(files, "attributes.csv") if r["link_id"] == s["id"]}
    assert attrs == {"kind:helpline", "topics:suicide", "topics:lgbtq", "audience:lgbtq", "audience:youth"}
    chat = next(r for r in rows(files, "services.csv") if r["name"] == "Evening Chat")
    assert chat["url"] == "https://evening.example/"  # a chat address stands in when there is no web address


def test_24_7_is_an_always_open_weekly_schedule(files):
    night = next(r for r in rows(files, "services.csv") if r["name"] == "Night Line")
    chat = next(r for r in rows(files, "services.csv") if r["name"] == "Evening Chat")
    by_service = {r["service_id"]: r for r in rows(files, "schedules.csv")}
    always = by_service[night["id"]]
    assert (always["freq"], always["byday"], always["opens_at"], always["closes_at"]) == (
        "WEEKLY",
        "MO,TU,WE,TH,FR,SA,SU",
        "00:00:00",
        "23:59:59",
    )
    assert by_service[chat["id"]]["description"] == "Mon-Fri 18-23" and by_service[chat["id"]]["freq"] == ""


def test_hsds_csv_cells_never_start_a_formula(files):
    for rel, data in files.items():
        if rel.startswith("hsds/") and rel.endswith(".csv"):
            for row in csv.reader(io.StringIO(data.decode("utf-8"))):
                for cell in row:
                    assert not cell.startswith(("=", "-", "@", "\t", "\r")), (rel, cell)
                    assert not cell.startswith("+") or cell[1:].isdigit(), (rel, cell)
    s = next(r for r in rows(files, "services.csv") if r["name"] == "Night Line")
    assert s["description"].startswith("'=HYPERLINK")


def test_language_tag_langcodes_does_not_know_is_kept_as_is():
    assert hsds._language("en") == ("English", "en")
    assert hsds._language("zz-not-a-tag-!!")[1] == "zz-not-a-tag-!!"


@given(st.sampled_from(["service", "phone", "attribute"]), st.text(max_size=30), st.text(max_size=30))
def test_row_ids_are_the_uuid5_of_their_name(table: str, listing_id: str, part: str) -> None:
    name = f"{table}:{listing_id}" + (f":{part}" if part else "")
    assert m.hsds_id(table, listing_id, part) == str(uuid.uuid5(m.NAMESPACE, name))


def test_a_part_sent_as_json_gives_the_rows_of_the_listings_themselves():
    """Worker processes get their part of the listings as JSON bytes: the rows and terms are those of the objects."""
    import orjson

    names = {"NO": "Norway", "WW": "Worldwide"}
    sent = hsds.part_bodies_of_json(orjson.dumps(LISTINGS), names, export.csv_cell)
    kept = hsds.part_bodies(LISTINGS, names, export.csv_cell)
    assert sent == kept and sum(len(body) for body in kept[0].values()) > 1000
