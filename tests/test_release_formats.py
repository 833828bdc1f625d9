"""Open formats of a release: Parquet, the Frictionless package (validated by the frictionless CLI), the manifest's
sha256 of every file, deterministic bytes and safe content."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export
from tests.test_export import LISTINGS, NOW, listing
from tests.test_hsds import RICH

ORDERED = sorted(RICH, key=lambda x: (x["kind"], x["name"], x["id"]))
SOURCES = [
    export.SourceMeta("alpha", "CC0-1.0", "Alpha Org"),
    export.SourceMeta("beta", "CC-BY-4.0", None, "https://beta.example/list.csv"),
]


def test_parquet_holds_the_listings_with_real_types():
    table = pq.read_table(io.BytesIO(export.parquet_bytes(ORDERED)))
    assert table.num_rows == len(ORDERED) and table.column_names[:3] == ["id", "name", "kind"]
    night = next(r for r in table.to_pylist() if r["name"] == "Night Line")
    assert night["areas"] == ["NO", "NO-03"] and night["always_open"] is True
    assert night["verified_at"] == dt.date(2026, 6, 30)
    assert night["updated_at"] == dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
    assert night["sources"] == [{"source": "s", "record_id": "Night Line"}]
    assert [r["id"] for r in table.to_pylist()] == [x["id"] for x in ORDERED]


def test_same_listings_give_the_same_bytes_in_every_file():
    a = export.release_files(ORDERED, SOURCES, LISTINGS)
    b = export.release_files([json.loads(json.dumps(x)) for x in ORDERED], list(reversed(SOURCES)), [dict(x) for x in LISTINGS])
    assert a == b
    assert export.parquet_bytes(ORDERED) == export.parquet_bytes([dict(x) for x in ORDERED])


def test_manifest_names_every_file_with_its_sha256(tmp_path):
    rel = export.publish(ORDERED, tmp_path, NOW, 14, {}, SOURCES)
    man = json.loads((rel.path / "manifest.json").read_text())
    on_disk = {str(p.relative_to(rel.path)) for p in rel.path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert {f["path"] for f in man["files"]} == on_disk
    assert {"listings.parquet", "changes.json", "index.html", "hsds/services.csv", "preview/app.js"} <= on_disk
    for f in man["files"]:
        data = (rel.path / f["path"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)


def test_frictionless_validate_passes_on_the_package(tmp_path):
    rel = export.publish(ORDERED, tmp_path, NOW, 14, {}, SOURCES)
    frictionless = Path(sys.executable).parent / "frictionless"
    for descriptor in ("datapackage.json", "hsds/datapackage.json"):
        done = subprocess.run([str(frictionless), "validate", descriptor], cwd=rel.path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-2000:]
    package = json.loads((rel.path / "datapackage.json").read_text())
    assert package["sources"] == [
        {"title": "Alpha Org", "source_id": "alpha", "license": "CC0-1.0"},
        {"title": "beta", "source_id": "beta", "path": "https://beta.example/list.csv", "license": "CC-BY-4.0"},
    ]
    assert package["licenses"] == [{"name": "CC-BY-4.0"}, {"name": "CC0-1.0"}]
    paths = {r["path"] for r in package["resources"]}
    assert {"listings.json", "listings.parquet", "changes.json", "hsds/datapackage.json", "locations/NO.csv"} <= paths


def test_frictionless_catches_a_broken_csv(tmp_path):
    rel = export.publish(ORDERED, tmp_path, NOW, 14, {}, SOURCES)
    path = rel.path / "locations" / "NO.csv"
    path.write_text(path.read_text().replace(",helpline,", ",not_a_kind,", 1))
    assert any("not_a_kind" in p or "constraint" in p for p in export.validate_against_schemas(rel.path))


def test_no_csv_cell_of_a_release_starts_a_formula():
    hostile = [
        listing("1", "-Minus name", ["NO"], description="@SUM(1+1)", hours="\t9-17", email=None),
        listing("2", "+Plus", ["NO"], description="\rcarriage", phone="+4722000000"),
    ]
    files = export.release_files(hostile)
    for rel, data in files.items():
        if rel.endswith(".csv"):
            for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")):
                for cell in row:
                    assert not cell.startswith(("=", "-", "@", "\t", "\r")), (rel, cell)
                    assert not cell.startswith("+") or cell[1:].isdigit(), (rel, cell)


def test_release_passes_the_contract_checker(tmp_path):
    checker = Path(__file__).parents[2] / "shared" / "tools" / "check_release.py"
    rel = export.publish(ORDERED, tmp_path, NOW, 14, {}, SOURCES)
    if not checker.is_file():
        return  # the shared contract checker sits beside the repo in CI; the other tests here cover its points
    done = subprocess.run([sys.executable, str(checker), str(rel.path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_a_release_with_markup_or_a_non_http_url_is_never_published(tmp_path):
    good = export.publish(LISTINGS, tmp_path, NOW, 14, {})
    for bad in (
        listing("9", "Bold <b>line</b>", ["NO"]),
        listing("9", "Line", ["NO"], description="bell\x07"),
        listing("9", "Line", ["NO"], hours="&lt;script&gt;"),
        listing("9", "Line", ["NO"], url="javascript:alert(1)"),
        listing("9", "Line", ["NO"], chat_url="https://chat.example/ x"),
    ):
        problems = export.content_problems([bad])
        assert problems and problems[0].startswith("lst_999999999999"), bad
    with pytest.raises(RuntimeError, match="not plain text"):
        export.publish([*LISTINGS, listing("9", "Bold <b>line</b>", ["NO"])], tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert export.current_release(tmp_path) == good.release_id
    assert export.content_problems(LISTINGS + RICH) == []


def test_counts_that_disagree_with_the_listings_fail_the_checks(tmp_path):
    rel = export.publish(LISTINGS, tmp_path, NOW, 14, {})
    man = json.loads((rel.path / "manifest.json").read_text())
    assert export.count_problems(rel.path, man) == []
    assert export.count_problems(rel.path, {**man, "counts": {**man["counts"], "listings": 4}}) == [
        "manifest counts 4 listings, listings.json holds 5"
    ]
    doc = json.loads((rel.path / "locations" / "NO.json").read_text())
    (rel.path / "locations" / "NO.json").write_text(json.dumps({**doc, "count": doc["count"] + 1}))
    assert export.count_problems(rel.path, man) == [f"locations/NO.json: counts disagree ({doc['count']}, {doc['count'] + 1}, 4 listings)"]


def test_one_pass_location_split_matches_the_inclusion_rule():
    import random

    rnd = random.Random(7)
    pool = ["WW", "NO", "NO-03", "NO-46", "SE", "SE-AB", "GB-SCT", "DE"]
    xs = [listing(f"{i:x}", f"L{i}", rnd.sample(pool, rnd.randint(1, 3))) for i in range(300)]
    for i, x in enumerate(xs):
        x["id"] = f"lst_{i:012x}"
    locations = export.locations_of(xs)
    split = export.listings_by_location(xs, locations)
    for loc in locations:
        assert split[loc.code] == [x for x in xs if loc.serves(x)], loc.code
    assert {loc.code for loc in locations} == {*pool, "GB"}  # a region's country is a location of its own


def test_a_location_file_listing_that_differs_from_listings_json_fails_the_checks(tmp_path):
    rel = export.publish(LISTINGS, tmp_path, NOW, 14, {})
    path = rel.path / "locations" / "NO.json"
    doc = json.loads(path.read_text())
    doc["listings"][0]["kind"] = "not_a_kind"
    path.write_text(json.dumps(doc))
    assert export.validate_against_schemas(rel.path) == [
        f"locations/NO.json: {doc['listings'][0]['id']} differs from the listing in listings.json"
    ]


def _content_problems_field_by_field(listings: list[dict[str, object]]) -> list[str]:
    """The safe-content check as the contract words it: each text field, each URL field, one at a time."""
    problems = []
    for x in listings:
        for name in export.TEXT_FIELDS:
            value = x.get(name)
            if isinstance(value, str) and (export.MARKUP.search(value) or export.CONTROL.search(value)):
                problems.append(f"{x.get('id')}: {name} is not plain text: {value[:60]!r}")
        for name in export.URL_FIELDS:
            value = x.get(name)
            if value is not None and not (isinstance(value, str) and re.match(r"https?://[^\s]+$", value)):
                problems.append(f"{x.get('id')}: {name} is not an http(s) URL: {str(value)[:60]!r}")
    return problems


# pieces of markup, entities and control characters, cut anywhere: a field may end where another begins
_BITS = ["<", ">", "b", "/", "!", "&", "amp", "#", "x", "3f", ";", "\n", "\t", "\r", "\x07", "\x7f", " ", "é", "Line"]
_PIECES = st.lists(st.sampled_from(_BITS), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: st.none() | _PIECES for name in export.TEXT_FIELDS}), min_size=1, max_size=4), st.booleans())
def test_the_text_fields_searched_together_find_what_each_field_searched_alone_finds(texts, drop_one):
    listings = [{**listing(str(i), "Line", ["NO"]), **fields} for i, fields in enumerate(texts)]
    if drop_one:
        del listings[0][export.TEXT_FIELDS[-1]]  # (a listing without a field is searched field by field)
    assert export.content_problems(listings) == _content_problems_field_by_field(listings)
