"""Release files: pure builders (inclusion rule, ordering, CSV safety) and the atomic publish."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export, table_check
from schemas.fields import LISTING_FIELDS

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)


def listing(id_hex: str, name: str, areas: list[str], kind: str = "helpline", **extra: object) -> dict[str, object]:
    base: dict[str, object] = {f: None for f in LISTING_FIELDS}
    base.update(
        id=f"lst_{id_hex * 12}"[:16],
        name=name,
        kind=kind,
        areas=areas,
        languages=[],
        topics=[],
        audience=[],
        moderation="unknown",
        cost="unknown",
        always_open=False,
        link_status="unknown",
        sources=[{"source": "s", "record_id": name}],
    )
    base.update(extra)
    return base


LISTINGS = [
    listing("a", "National NO", ["NO"]),
    listing("b", "Oslo only", ["NO-03"], kind="chat"),
    listing("c", "Viken only", ["NO-30"]),
    listing("d", "Everyone", ["WW"], kind="forum"),
    listing("e", "Two countries", ["GB", "IE"]),
]


def test_inclusion_rule_country_region_worldwide():
    files = export.release_files(LISTINGS)

    def names(code: str) -> set[str]:
        return {x["name"] for x in json.loads(files[f"locations/{code}.json"])["listings"]}

    assert names("NO") == {"National NO", "Oslo only", "Viken only", "Everyone"}
    assert names("NO-03") == {"Oslo only", "National NO", "Everyone"}
    assert names("NO-30") == {"Viken only", "National NO", "Everyone"}
    assert names("WW") == {"Everyone"}
    assert names("GB") == names("IE") == {"Two countries", "Everyone"}
    index = json.loads(files["index.json"])["locations"]
    assert [x["code"] for x in index] == ["WW", "GB", "IE", "NO", "NO-03", "NO-30"]
    assert {x["code"]: x["type"] for x in index}["NO-30"] == "region"
    assert {x["code"]: x["parent"] for x in index}["NO-30"] == "NO"


def test_same_listings_same_bytes_and_order_kept():
    ordered = sorted(LISTINGS, key=lambda x: (x["kind"], x["name"], x["id"]))
    assert export.release_files(ordered) == export.release_files([dict(x) for x in ordered])
    no = json.loads(export.release_files(ordered)["locations/NO.json"])["listings"]
    assert [(x["kind"], x["name"]) for x in no] == sorted((x["kind"], x["name"]) for x in no)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+cmd", "'+cmd"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("+4722400040", "+4722400040"),
        ("plain", "plain"),
        (None, ""),
        (True, "true"),
        (["a", "b"], "a; b"),
    ],
)
def test_csv_cells_never_start_a_formula(value, cell):
    assert export.csv_cell(value) == cell


def test_csv_sources_are_readable():
    text = export.csv_bytes([listing("f", "X", ["NO"], sources=[{"source": "a", "record_id": "1"}, {"source": "b", "record_id": "2"}])])
    assert "a:1; b:2" in text.decode()


def publish(tmp_path: Path, listings=LISTINGS, now=NOW, keep=14):
    return export.publish(listings, tmp_path, now, keep, {"sources": 1})


def test_publish_switches_current_and_links_previous(tmp_path):
    first = publish(tmp_path)
    second = publish(tmp_path, now=NOW + dt.timedelta(hours=1))
    assert export.current_release(tmp_path) == second.release_id and second.previous == first.release_id
    assert os.readlink(tmp_path / "current") == f"releases/{second.release_id}"  # relative: the folder can move
    manifest = json.loads((tmp_path / "current" / "manifest.json").read_text())
    assert manifest["previous_release"] == first.release_id and manifest["generated_at"] == "2026-11-25T04:00:00Z"


def test_a_run_killed_mid_write_never_moves_current(tmp_path, monkeypatch):
    good = publish(tmp_path)

    def crash(folder, man, *args):
        raise KeyboardInterrupt("killed")  # stands for a kill between writing and switching

    monkeypatch.setattr(export, "verify", crash)
    with pytest.raises(KeyboardInterrupt):
        publish(tmp_path, now=NOW + dt.timedelta(hours=1))
    assert export.current_release(tmp_path) == good.release_id
    assert list((tmp_path / "releases").glob(".partial-*"))  # the half-written release is not current
    monkeypatch.undo()
    recovered = publish(tmp_path, now=NOW + dt.timedelta(hours=2))
    assert export.current_release(tmp_path) == recovered.release_id
    assert not list((tmp_path / "releases").glob(".partial-*"))  # cleaned up by the next run


def test_each_file_is_flushed_to_disk_as_it_is_written_and_every_file_again_before_the_switch(tmp_path, monkeypatch):
    """A file written is handed to a thread that flushes it beside the rest of the build (``_flush_soon``); the
    release is still flushed whole, file by file, by the publishing thread before ``current`` moves to it."""
    flushed: list[tuple[str, str, bool]] = []  # (file, thread, whether current had moved)
    fsync_file = export._fsync_file

    def recorded(path: Path) -> None:
        flushed.append((str(path), threading.current_thread().name, export.current_release(tmp_path) is not None))
        fsync_file(path)

    monkeypatch.setattr(export, "_fsync_file", recorded)
    release = publish(tmp_path)
    files = {p for p in release.path.rglob("*") if p.is_file()}
    main = threading.current_thread().name
    before_switch = [name for name, thread, moved in flushed if thread == main and not moved]
    assert len(before_switch) == len(files)  # every file, the manifest included, by the publishing thread

    with ThreadPoolExecutor(1) as flushing:  # a file written is flushed in the thread; a write that failed, or came
        calls: list[Path] = []  # after the release failed (the thread shut down), is not
        monkeypatch.setattr(export, "_fsync_file", calls.append)
        done, failed = Future(), Future()
        done.set_result({})
        failed.set_exception(OSError("disk full"))
        export._flush_soon(flushing, tmp_path / "a", done)
        export._flush_soon(flushing, tmp_path / "b", failed)
    export._flush_soon(flushing, tmp_path / "c", done)
    assert calls == [tmp_path / "a"]


def test_a_release_failing_its_checks_is_not_published(tmp_path, monkeypatch):
    good = publish(tmp_path)
    monkeypatch.setattr(export, "verify", lambda folder, man, *args: ["listings.json does not match the manifest"])
    with pytest.raises(RuntimeError, match="failed its checks"):
        publish(tmp_path, now=NOW + dt.timedelta(hours=1))
    assert export.current_release(tmp_path) == good.release_id


def test_only_the_newest_releases_are_kept(tmp_path):
    ids = [publish(tmp_path, now=NOW + dt.timedelta(minutes=i), keep=3).release_id for i in range(5)]
    kept = sorted(p.name for p in (tmp_path / "releases").iterdir())
    assert kept == ids[-3:]


def test_verify_of_listings_built_here_hashes_the_files_beside_their_checks_and_a_changed_file_is_the_problem(tmp_path):
    """With the listings a release was built from (``written_from``), its files are hashed in a thread while the
    listings and files are checked; a file that is not the manifest's is the problem reported, whatever those
    checks find of it."""
    rel = publish(tmp_path)
    manifest = json.loads((rel.path / "manifest.json").read_text())
    listings = export._listings(rel.path)
    assert export.verify(rel.path, manifest, written_from=listings) == []
    (rel.path / "locations" / "NO.csv").chmod(0o644)
    (rel.path / "locations" / "NO.csv").write_text("not,the,header\n")
    (rel.path / "hsds" / "services.csv").unlink()
    problems = export.verify(rel.path, manifest, written_from=listings)
    assert sorted(problems) == ["hsds/services.csv is missing", "locations/NO.csv does not match the manifest"]


def test_verify_catches_a_changed_file(tmp_path):
    rel = publish(tmp_path)
    manifest = json.loads((rel.path / "manifest.json").read_text())
    assert export.verify(rel.path, manifest) == []
    (rel.path / "listings.json").write_text("[]\n")
    assert export.verify(rel.path, manifest) == ["listings.json does not match the manifest"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "not_a_kind"),
        ("cost", "not_a_cost"),
        ("moderation", "not_a_moderation"),
        ("link_status", "not_a_status"),
        ("topics", ["not_a_topic"]),
        ("audience", ["not_an_audience"]),
    ],
)
def test_a_release_that_breaks_its_own_json_schema_is_never_published(tmp_path, field, value):
    """A value of no vocabulary fails the release's checks, which name it (the HSDS package is built first: its
    rows are made of the terms, and a term it does not know is no error there)."""
    good = publish(tmp_path)
    bad = [*LISTINGS, listing("9", "Bad value", ["NO"], **{field: value})]
    with pytest.raises(RuntimeError, match=r"failed its checks.*lst_9999.*not_a"):
        publish(tmp_path, listings=bad, now=NOW + dt.timedelta(hours=1))
    assert export.current_release(tmp_path) == good.release_id


def test_a_release_that_breaks_its_datapackage_is_never_published(tmp_path):
    good = publish(tmp_path)
    twice = [*LISTINGS, dict(LISTINGS[0])]  # the same id twice breaks the CSV primary key
    with pytest.raises(RuntimeError, match="failed its checks"):
        publish(tmp_path, listings=twice, now=NOW + dt.timedelta(hours=1))
    assert export.current_release(tmp_path) == good.release_id


def test_published_releases_pass_json_schema_and_frictionless(tmp_path):
    rel = publish(tmp_path)
    assert export.validate_against_schemas(rel.path) == []


def test_description_length_is_part_of_the_published_schema(tmp_path):
    fits = [listing("a", "Long", ["NO"], description="d" * 1000)]
    publish(tmp_path, listings=fits)
    with pytest.raises(RuntimeError, match=r'"d{60}\.\.\." is longer than 1000 characters'):
        publish(tmp_path, listings=[listing("a", "Longer", ["NO"], description="d" * 1001)], now=NOW + dt.timedelta(hours=1))


def test_a_release_checks_against_its_schemas_only_what_the_verified_release_before_it_did_not_hold(tmp_path, monkeypatch):
    import jsonschema_rs

    checked: list[str] = []  # listings given to JSON Schema
    records: list[tuple[str, ...]] = []  # CSV records given to Frictionless's checks (each distinct record of a schema once)
    real_validator, validate = jsonschema_rs.Draft202012Validator, table_check._validate_records

    class Recording:
        def __init__(self, *args, **kwargs):
            self.real = real_validator(*args, **kwargs)

        def iter_errors(self, instance):
            checked.append(instance["id"])
            return self.real.iter_errors(instance)

    def validate_records(pending, schema, pool):
        records.extend(record for _, where in pending.values() for record in where)
        return validate(pending, schema, pool)

    monkeypatch.setattr(jsonschema_rs, "Draft202012Validator", Recording)
    monkeypatch.setattr(table_check, "_validate_records", validate_records)
    monkeypatch.setattr(table_check, "clean_by_columns", lambda *args: False)  # (row by row: what this counts)
    first = publish(tmp_path)
    assert sorted(checked) == sorted(x["id"] for x in LISTINGS)  # the first: all of it
    location_rows = [r for r in records if r[0].startswith("lst_")]
    assert sorted(r[0] for r in location_rows) == sorted(x["id"] for x in LISTINGS)  # each distinct record once
    in_files = [r for p in (first.path / "locations").glob("*.csv") for r in csv.reader(io.StringIO(p.read_text(), newline=""))]
    assert len(in_files) - len(list((first.path / "locations").glob("*.csv"))) > len(location_rows)  # WW is in every file
    assert len(records) > 3 * len(LISTINGS)  # and every HSDS table's rows
    checked.clear(), records.clear()
    oslo = listing("b", "Oslo only, renamed", ["NO-03"], kind="chat")
    second = publish(tmp_path, [LISTINGS[0], oslo, *LISTINGS[2:]], now=NOW + dt.timedelta(hours=1))
    assert checked == [oslo["id"]]
    assert [r[0] for r in records if r[0].startswith("lst_")] == [oslo["id"]]  # its row of NO.csv and NO-03.csv, once
    renamed = [r for r in records if not r[0].startswith("lst_")]  # HSDS: the service and organization rows renamed
    assert renamed and all("Oslo only, renamed" in r for r in renamed) and len(renamed) == 2
    checked.clear(), records.clear()
    broken = [*LISTINGS[:4], listing("e", "Two countries", ["GB", "IE"], kind="not_a_kind")]  # a change is checked
    with pytest.raises(RuntimeError, match="not_a_kind"):
        publish(tmp_path, broken, now=NOW + dt.timedelta(hours=2))
    assert export.current_release(tmp_path) == second.release_id


def test_a_verified_release_whose_listings_no_longer_match_its_manifest_is_not_trusted(tmp_path):
    publish(tmp_path)
    assert export.verified_before(tmp_path) is not None
    listings = tmp_path / "current" / "listings.json"
    os.chmod(listings, 0o644)
    listings.write_text(listings.read_text().replace("National NO", "Tampered"))
    assert export.verified_before(tmp_path) is None
    before, verified = export.previous_release(tmp_path)  # (hashed beside the parsing)
    assert before is not None and "Tampered" in {x["name"] for x in before} and verified is None


def test_a_current_release_whose_listings_cannot_be_read_is_neither_compared_nor_trusted(tmp_path):
    first = publish(tmp_path)
    before, verified = export.previous_release(tmp_path)
    assert before is not None and len(before) == len(LISTINGS) and verified is not None
    assert set(verified.listings) == {x["id"] for x in LISTINGS}
    _, unkeyed = export.previous_release(tmp_path, by_id=False)  # (``publish`` keys only the equal listings)
    assert unkeyed is not None and unkeyed.listings == {} and unkeyed.sha256 == verified.sha256
    listings = tmp_path / "current" / "listings.json"
    os.chmod(listings, 0o644)
    listings.write_text("[{not json", encoding="utf-8")
    assert export.previous_release(tmp_path) == (None, None)
    second = publish(tmp_path, now=NOW + dt.timedelta(hours=1))  # published as if it were the first: nothing to compare
    assert second.previous == first.release_id
    assert json.loads((second.path / "changes.json").read_text()) == {"added": [], "removed": [], "changed": []}


@pytest.mark.parametrize("pieces_of", [1, 900, 16 << 20])  # bytes: a listing, about two, all of them
def test_listings_read_back_in_pieces_are_the_listings_written_with_their_repeats_shared(monkeypatch, pieces_of):
    """``listings_from_json`` (a rerun's read of the release before it) gives what ``orjson.loads`` gives, whether
    the list is parsed in pieces or whole; the repeating values (a kind, a date, a code in a list, a source's name)
    are one object each. A name holding the bytes that part two listings in the file parts nothing."""
    import orjson

    monkeypatch.setattr(export, "PIECE_BYTES", pieces_of)
    monkeypatch.setattr(export, "SHARED_FROM_BYTES", 0)
    odd = listing("f", 'A "tricky"\n  },\n  { name', ["NO"], verified_at="2026-01-02", first_seen="2026-01-02T03:04:05Z")
    written = [*LISTINGS, odd, {**odd, "id": "lst_ffffffffffff0", "verified_at": "2026-01-02", "first_seen": "2026-01-02T03:04:05Z"}]
    data = export.json_bytes(written)
    pieces: list[int] = []
    share = export.share_repeating
    monkeypatch.setattr(export, "share_repeating", lambda piece, made: pieces.append(len(piece)) or share(piece, made))
    got = export.listings_from_json(data)
    assert got == orjson.loads(data) == written
    assert pieces == [1] * 7 if pieces_of == 1 else (len(pieces) == 1 if pieces_of > len(data) else 1 < len(pieces) < 7)
    assert got[-1]["verified_at"] is got[-2]["verified_at"] and got[-1]["first_seen"] is got[-2]["first_seen"]
    assert got[0]["kind"] is got[-1]["kind"] and got[0]["areas"][0] is got[-1]["areas"][0] and got[0]["moderation"] is got[1]["moderation"]
    assert got[0]["sources"][0]["source"] is got[1]["sources"][0]["source"]


def test_listings_read_back_from_bytes_written_otherwise_are_parsed_whole(monkeypatch):
    import orjson

    monkeypatch.setattr(export, "SHARED_FROM_BYTES", 0)

    compact = orjson.dumps(LISTINGS)  # no line breaks: one piece
    assert export.listings_from_json(compact) == LISTINGS
    nested = b'[{"x": [\n  {\n  "a": 1\n  },\n  {\n  "b": 2\n  }\n]}]'  # the parting bytes, but not between listings
    assert export.BETWEEN in nested
    assert export.listings_from_json(nested) == orjson.loads(nested)
    assert export.listings_from_json(b'{"not": "a list"}') == {"not": "a list"}
    with pytest.raises(ValueError):
        export.listings_from_json(export.json_bytes(LISTINGS)[:-5])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(range(7)), max_size=7), st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["drop", "rename", "add"]))))
def test_a_release_read_back_against_the_new_one_is_what_parsing_gives_sharing_the_listings_written_alike(order, edits):
    """``listings_against`` gives ``orjson.loads`` of the release before, whatever the two releases hold and in
    whichever order; a listing written as one of the new release is that object, any other is parsed."""
    import orjson

    odd = listing("f", 'A "tricky"\n  },\n  { name', ["NO"], verified_at="2026-01-02")  # the parting bytes, escaped
    pool = [*LISTINGS, odd, listing("0", "Zero", ["WW"], first_seen="2026-01-02T03:04:05Z")]
    before = [pool[i] for i in dict.fromkeys(order)]
    after = [dict(x) for x in before]
    for i, edit in edits:
        if edit == "drop" and after:
            after.pop(i % len(after))
        elif edit == "rename" and after:
            after[i % len(after)] = {**after[i % len(after)], "name": "Renamed"}
        elif edit == "add":
            after.insert(i % (len(after) + 1), listing(str(i + 1), f"Added {i}", ["GB"]))
    data, after_data = export.json_bytes(before), export.json_bytes(after)
    got = export.listings_against(data, after, after_data)
    assert got == orjson.loads(data)
    written = {export.json_bytes(x): x for x in after}
    for x in got:  # (``is``: the very object of ``after``, not an equal copy)
        assert (x is written[export.json_bytes(x)]) if export.json_bytes(x) in written else all(x is not y for y in after)


#: JSON values as a listing's fields may hold them: text with the bytes that part listings, nested lists and objects
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(alphabet=st.sampled_from(["a", "\n", " ", "}", "{", ",", '"', "\\", "\u00e9", "\U0001f600"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "id"]), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(["id", "name", "areas", "x"]), JSON_VALUES, min_size=1, max_size=4), max_size=6),
    st.lists(st.integers(0, 5), max_size=8),
    st.sampled_from([None, "NO"]),
)
def test_a_location_file_joined_from_listings_json_is_what_json_bytes_writes(listings, places, parent):
    """``location_json`` of the listings' texts from ``listings.json`` (``deeper_texts``) is, byte for byte, the
    location file ``json_bytes`` writes of them, whatever the listings hold and whichever of them the location has."""
    data = export.json_bytes(listings)
    texts = export.deeper_texts(data)
    assert (texts is None) == (not listings) and len(texts or []) == len(listings)
    at = [i for i in places if i < len(listings)]
    head = {"code": "NO", "name": "Norway", "type": "country", "parent": parent}
    chosen = [listings[i] for i in at]
    assert export.location_json(head, texts.texts(at) if texts else []) == export.json_bytes(
        {"location": head, "count": len(chosen), "listings": chosen}
    )


def test_listings_json_written_otherwise_gives_no_deeper_texts():
    assert export.deeper_texts(b"[]\n") is None
    assert export.deeper_texts(b'[{"id":"a"}]') is None  # (compact)
    deeper = export.deeper_texts(export.json_bytes([{"id": "a"}, {"id": "b"}]))
    assert deeper is not None and [bytes(t) for t in deeper.texts([1, 0])] == [b'\n      "id": "b"', b'\n      "id": "a"']


def test_a_release_read_back_against_bytes_parted_otherwise_is_parsed_whole(monkeypatch):
    """Bytes that are not a list as ``json_bytes`` writes it, on either side, or whose parts do not parse alone as
    objects, are read by ``listings_from_json`` (and broken bytes raise as they do there)."""
    import orjson

    after_data = export.json_bytes(LISTINGS)
    read: list[bytes] = []
    whole = export.listings_from_json
    monkeypatch.setattr(export, "listings_from_json", lambda data: read.append(data) or whole(data))
    compact = orjson.dumps(LISTINGS)
    assert export.listings_against(compact, LISTINGS, after_data) == LISTINGS and read == [compact]
    assert export.listings_against(after_data, LISTINGS, compact) == LISTINGS and read[-1] == after_data
    nested = b'[\n  {\n  "x": [\n  {\n  "a": 1\n  },\n  {\n  "b": 2\n  }\n]\n  }\n]\n'  # parted inside a listing
    assert export.BETWEEN in nested and nested.startswith(export.OPENS) and nested.endswith(export.CLOSES)
    assert export.listings_against(nested, LISTINGS, after_data) == orjson.loads(nested) and read[-1] == nested
    with pytest.raises(ValueError):
        export.listings_against(after_data[:-5], LISTINGS, after_data)
    assert export.listings_against(b"[]\n", LISTINGS, after_data) == []


def test_a_rerun_parses_only_the_listings_of_the_release_before_that_it_does_not_hold_alike(tmp_path, monkeypatch):
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    parsed: list[str] = []
    share = export.share_repeating
    monkeypatch.setattr(export, "share_repeating", lambda xs, made: parsed.extend(str(x["id"]) for x in xs) or share(xs, made))
    after = [{**x, "name": "Renamed"} if x["name"] == "Oslo only" else x for x in LISTINGS if x["name"] != "Everyone"]
    release = export.publish(after, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert sorted(parsed) == sorted(str(x["id"]) for x in LISTINGS if x["name"] in ("Oslo only", "Everyone"))
    changes = json.loads((release.path / "changes.json").read_bytes())
    assert changes["removed"] == [LISTINGS[3]["id"]] and changes["changed"] == [{"id": LISTINGS[1]["id"], "fields": ["name"]}]


def test_a_publish_that_lets_go_of_its_listings_checks_them_first_and_writes_the_same_release(tmp_path, monkeypatch):
    """``let_go_of_listings`` (the run's publish) empties the listings once they are checked, before any CSV file
    is read for its checks, and the releases, first and rerun, are byte for byte those of a publish that keeps them."""
    renamed = [dict(x, name="Renamed " + x["name"]) if i == 0 else dict(x) for i, x in enumerate(LISTINGS)]
    seen: list[int] = []
    given: list[list[dict]] = []
    check_package = table_check.check_package
    monkeypatch.setattr(table_check, "check_package", lambda *a, **k: seen.append(sum(map(len, given))) or check_package(*a, **k))
    for let_go in (False, True):
        for hours, listings in enumerate((LISTINGS, renamed)):
            given[:] = [list(listings)]
            seen.clear()
            export.publish(given[0], tmp_path / str(let_go), NOW + dt.timedelta(hours=hours), 14, {}, let_go_of_listings=let_go)
            assert seen and all(n == (0 if let_go else len(listings)) for n in seen)
            assert given[0] == ([] if let_go else listings)

    def files(folder: Path) -> dict[str, object]:
        out: dict[str, object] = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        built = json.loads(out.pop(export.BUILT_BY))  # (the files' signatures: other inodes, other times)
        return {**out, export.BUILT_BY: {**built, "signed": sorted(built["signed"])}}

    assert files(tmp_path / "True") == files(tmp_path / "False")
    twice = [*LISTINGS, dict(LISTINGS[0])]  # the CSV files' primary key, checked after the listings are let go of
    with pytest.raises(RuntimeError, match="primary key"):
        export.publish(twice, tmp_path / "bad", NOW, 14, {}, let_go_of_listings=True)


# --- a rerun takes the unchanged locations' files from the release before it ------------------------------------


def _release_tree(folder: Path) -> dict[str, bytes]:
    """Every file of a release but its manifest (the only one that names the release and its time)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"}


def _location_files(*codes: str) -> set[str]:
    return {f"{d}/{c}.{e}" for c in codes for d, e in (("locations", "json"), ("locations", "csv"), ("preview/data", "js"))}


def _rerun(tmp_path: Path, before: list[dict[str, object]], after: list[dict[str, object]]) -> export.Release:
    """Publish ``before``, then ``after``; check the second release is byte for byte a whole build of ``after``."""
    export.publish(before, tmp_path, NOW, 14, {})
    return _rerun_after(tmp_path, before, after)


def _rerun_after(tmp_path: Path, before: list[dict[str, object]], after: list[dict[str, object]]) -> export.Release:
    """``_rerun`` of a release of ``before`` already published."""
    release = export.publish(after, tmp_path, NOW + dt.timedelta(hours=1), 14, {}, guard=export.Guard(allow=True))
    assert _release_tree(release.path) == export.release_files(after, None, before)
    return release


TWO_COUNTRIES_RENAMED = [dict(x, name="Two countries, renamed") if x["name"] == "Two countries" else x for x in LISTINGS]


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The paths of the files ``verify`` hashes against the manifest, as it hashes them."""
    paths: list[str] = []
    matches = export._matches
    monkeypatch.setattr(export, "_matches", lambda path, size, sha256: paths.append(str(path)) or matches(path, size, sha256))
    return paths


def test_a_rerun_takes_the_files_of_the_locations_whose_listings_did_not_change(tmp_path):
    release = _rerun(tmp_path, LISTINGS, TWO_COUNTRIES_RENAMED)
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30")  # GB and IE are built again


def test_a_file_taken_from_the_release_before_is_a_link_to_it_and_no_file_is_read_back_to_be_hashed_again(tmp_path, hashed):
    before = export.publish(LISTINGS, tmp_path, NOW, 14, {})
    assert hashed == []  # each file written was hashed as it was written, and has not changed since
    release = export.publish(TWO_COUNTRIES_RENAMED, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30")
    for rel in release.reused:
        assert (release.path / rel).samefile(before.path / rel)  # one file, in both releases
    assert hashed == []  # (nor was one taken: hashed as it was linked)
    assert _release_tree(release.path) == export.release_files(TWO_COUNTRIES_RENAMED, None, LISTINGS)
    man = json.loads((release.path / "manifest.json").read_bytes())
    assert export.verify(release.path, man) == [] and len(hashed) == len(man["files"])  # (a release checked alone: all)


def test_a_file_changed_after_it_was_written_is_hashed_again_and_the_release_is_not_published(tmp_path, hashed):
    def change_one(step: str) -> None:
        if step == "written":  # (every file written, the manifest too; not yet checked)
            path = next((tmp_path / "releases").glob(f"{export.PARTIAL_PREFIX}*")) / "locations" / "NO.json"
            path.write_bytes(path.read_bytes().replace(b"National NO", b"National N0"))  # same size, other bytes
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # (a coarse clock)

    with pytest.raises(RuntimeError, match=r"locations/NO\.json does not match the manifest"):
        export.publish(LISTINGS, tmp_path, NOW, 14, {}, checkpoint=change_one)
    assert [Path(p).name for p in hashed] == ["NO.json"]  # only the file that changed was read back
    assert not (tmp_path / "current").exists()


def test_the_files_a_rerun_may_take_are_hashed_ahead_by_a_thread_once_each(tmp_path, monkeypatch):
    seen: list[tuple[str, str]] = []
    hashed_here = export._hashed

    def spy(path: Path) -> object:
        seen.append((str(path.relative_to(path.parents[1] if path.parent.name == "locations" else path.parents[2])),
                     threading.current_thread().name))  # fmt: skip
        return hashed_here(path)

    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    _unsigned(tmp_path)  # (no file's signature recorded: each is hashed)
    monkeypatch.setattr(export, "_hashed", spy)
    release = export.publish(TWO_COUNTRIES_RENAMED, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert sorted(rel for rel, _ in seen) == sorted(release.reused)  # each once, those of the unchanged locations
    assert threading.main_thread().name not in {thread for _, thread in seen}


def _unsigned(exports: Path, *rels: str) -> None:
    """``BUILT_BY`` without the signatures of ``rels`` (of every file, when none is named)."""
    built = json.loads((exports / export.BUILT_BY).read_bytes())
    built["signed"] = {rel: seen for rel, seen in built["signed"].items() if rels and rel not in rels}
    (exports / export.BUILT_BY).write_bytes(json.dumps(built).encode())


def test_a_rerun_hashes_none_of_the_files_it_takes_that_have_the_signatures_recorded_once_they_were_checked(tmp_path, monkeypatch):
    """The files of the release before whose signatures (device, inode, size, modification time) are those
    ``BUILT_BY`` recorded are taken unread; one that was written again since, or whose signature was not recorded,
    is hashed, and taken only when its bytes are still its manifest's (the HSDS tables likewise:
    ``test_a_rerun_takes_the_hsds_parts_whose_listings_did_not_change``)."""
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    current = (tmp_path / "current").resolve()
    built = json.loads((tmp_path / export.BUILT_BY).read_bytes())
    man = json.loads((current / "manifest.json").read_bytes())
    assert sorted(built["signed"]) == sorted(e["path"] for e in man["files"])  # every file but the manifest
    assert all(built["signed"][rel] == list(export._signature(current / rel)) for rel in built["signed"])
    seen: list[str] = []
    hashed_here = export._hashed
    monkeypatch.setattr(export, "_hashed", lambda path: seen.append(str(path.relative_to(current))) or hashed_here(path))
    rewritten = current / "locations" / "NO.json"
    rewritten.write_bytes(rewritten.read_bytes())  # the same bytes, written again: another time
    os.utime(rewritten, ns=(rewritten.stat().st_atime_ns, rewritten.stat().st_mtime_ns + 1_000_000))  # (a coarse clock)
    damaged = current / "locations" / "NO-03.csv"
    damaged.write_bytes(damaged.read_bytes().replace(b"Oslo only", b"Oslo ONLY"))
    _unsigned(tmp_path, "locations/WW.json")
    release = _rerun_after(tmp_path, LISTINGS, TWO_COUNTRIES_RENAMED)
    assert sorted(seen) == ["locations/NO-03.csv", "locations/NO.json", "locations/WW.json"]
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30") - {"locations/NO-03.csv"}


def test_a_file_changed_after_it_was_hashed_ahead_is_built_not_taken(tmp_path, monkeypatch):
    hashed_here = export._hashed

    def then_changed(path: Path) -> object:
        found = hashed_here(path)
        if path.name == "NO.json" and path.parent.name == "locations":
            path.write_bytes(path.read_bytes().replace(b"National NO", b"National N0"))  # same size, other bytes
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # (a coarse clock)
        return found

    monkeypatch.setattr(export, "_hashed", then_changed)
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    _unsigned(tmp_path)  # (no file's signature recorded: each is hashed ahead)
    release = _rerun_after(tmp_path, LISTINGS, TWO_COUNTRIES_RENAMED)  # (the release is a whole build's, byte for byte)
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30") - {"locations/NO.json"}


def test_a_rerun_that_builds_few_locations_has_orjson_write_their_listings_with_the_same_bytes(tmp_path, monkeypatch):
    found: list[int] = []  # the listings whose texts were found in listings.json, at each call
    deeper = export.deeper_texts
    monkeypatch.setattr(export, "deeper_texts", lambda data: found.append(len(deeper(data) or [])) or deeper(data))
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    assert found == [len(LISTINGS)]  # a first release builds every location: from listings.json's texts
    found.clear()
    release = _rerun(tmp_path / "again", LISTINGS, TWO_COUNTRIES_RENAMED)  # (byte for byte a whole build)
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30")
    assert found == [len(LISTINGS), len(LISTINGS)]  # the first release, then the whole build compared with: not the rerun


def test_a_linked_file_changed_after_it_was_taken_is_hashed_again_and_fails_the_release(tmp_path):
    release = export.publish(LISTINGS, tmp_path, NOW, 14, {})
    man = json.loads((release.path / "manifest.json").read_bytes())
    path = release.path / "locations" / "NO.json"
    linked = {"locations/NO.json": export._signature(path)}
    assert export._manifest_problems(release.path, man, linked) == []
    path.write_bytes(path.read_bytes().replace(b"National NO", b"National N0"))  # same size, other bytes
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # (a coarse clock: time moves)
    assert export._manifest_problems(release.path, man, linked) == ["locations/NO.json does not match the manifest"]


def test_where_a_file_cannot_be_linked_it_is_copied_and_hashed_again(tmp_path, monkeypatch, hashed):
    before = export.publish(LISTINGS, tmp_path, NOW, 14, {})

    def no_links(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(export.os, "link", no_links)
    hashed.clear()  # (those of the first release)
    release = export.publish(TWO_COUNTRIES_RENAMED, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert set(release.reused) == _location_files("WW", "NO", "NO-03", "NO-30")
    partial = tmp_path / "releases" / f"{export.PARTIAL_PREFIX}{release.release_id}"  # (where it was checked)
    for rel in release.reused:
        assert not (release.path / rel).samefile(before.path / rel) and str(partial / rel) in hashed
    assert _release_tree(release.path) == export.release_files(TWO_COUNTRIES_RENAMED, None, LISTINGS)


@pytest.mark.parametrize(
    ("after", "built"),
    [
        ([*LISTINGS, listing("f", "Oslo too", ["NO-03"])], {"NO", "NO-03"}),  # added: its region and its country
        ([x for x in LISTINGS if x["name"] != "Viken only"], {"NO", "NO-30"}),  # removed: where it was
        ([dict(x, areas=["NO"]) if x["name"] == "Viken only" else x for x in LISTINGS], {"NO", "NO-03"}),  # moved
        ([dict(x, phone="+4722000000") if x["name"] == "National NO" else x for x in LISTINGS], {"NO", "NO-03", "NO-30"}),
        ([dict(x, link_status="dead") if x["name"] == "Everyone" else x for x in LISTINGS], {"WW", "GB", "IE", "NO", "NO-03", "NO-30"}),
    ],
)
def test_a_location_is_built_again_when_a_listing_it_holds_or_held_is_added_removed_or_changed(tmp_path, after, built):
    """Any field counts, tracked by changes.json or not (``link_status``); a listing moved from NO-30 to NO leaves
    NO-30 (its file keeps NO's national listings: no file of it changes, only its listing's place in NO-03)."""
    release = _rerun(tmp_path, LISTINGS, after)
    codes = {x["code"] for x in json.loads((release.path / "index.json").read_bytes())["locations"]}
    assert set(release.reused) == _location_files(*(codes - built))


def test_nothing_is_taken_when_the_listings_kept_come_in_another_order(tmp_path):
    """A caller that orders its listings otherwise gets whole files in its order, not the last release's order."""
    release = _rerun(tmp_path, LISTINGS, LISTINGS[::-1])
    assert release.reused == ()


def test_nothing_is_taken_from_a_release_built_by_other_code_or_whose_builder_is_unknown(tmp_path, monkeypatch):
    after = [*LISTINGS, listing("f", "Oslo too", ["NO-03"])]
    export.publish(LISTINGS, tmp_path / "a", NOW, 14, {})
    (tmp_path / "a" / export.BUILT_BY).unlink()  # a release published before builders were recorded
    assert export.publish(after, tmp_path / "a", NOW + dt.timedelta(hours=1), 14, {}).reused == ()
    export.publish(LISTINGS, tmp_path / "b", NOW, 14, {})
    monkeypatch.setattr(export, "builder", lambda: "other code")
    release = export.publish(after, tmp_path / "b", NOW + dt.timedelta(hours=1), 14, {})
    assert release.reused == () and _release_tree(release.path) == export.release_files(after, None, LISTINGS)
    built = json.loads((tmp_path / "b" / export.BUILT_BY).read_bytes())
    assert (built["release"], built["builder"]) == (release.release_id, "other code")


def test_a_file_that_no_longer_matches_its_manifest_or_a_location_named_otherwise_is_built_again(tmp_path, monkeypatch):
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    current = (tmp_path / "current").resolve()
    damaged = current / "locations" / "NO-30.json"
    damaged.write_bytes(damaged.read_bytes().replace(b"Viken only", b"Viken ONLY"))
    name = export.location_name
    monkeypatch.setattr(export, "location_name", lambda code: "Wales" if code == "GB" else name(code))
    after = [*LISTINGS, listing("f", "Oslo too", ["NO-03"])]
    release = export.publish(after, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert set(release.reused) == _location_files("WW", "IE", "NO-30") - {"locations/NO-30.json"}
    assert _release_tree(release.path) == export.release_files(after, None, LISTINGS)


def edited(before: list[dict[str, object]], edits: list[tuple[int, str]]) -> list[dict[str, object]]:
    """``before`` with each edit made: (place, what) drops, renames, moves or touches the listing there, or adds one."""
    after = list(before)
    for n, (i, what) in enumerate(edits):
        if what == "add":
            after.append(listing(f"{n + 8:x}", f"Added {n}", ["NO-03"]))
        elif i < len(after) and what == "drop":
            after.pop(i)
        elif i < len(after) and what == "touch":  # a field the changes do not track
            after[i] = dict(after[i], link_checked_at=dt.datetime(2026, 11, 24, 5, 6, 7))
        elif i < len(after):
            after[i] = dict(after[i], **({"name": f"Renamed {n}"} if what == "rename" else {"areas": ["NO-30", "IE"]}))
    return after


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["NO", "NO-03", "NO-30", "GB", "IE", "WW"]), st.booleans()), max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["drop", "rename", "move", "add"])), max_size=3),
)
def test_a_rerun_gives_the_bytes_of_a_whole_build_whatever_changed(rows, edits):
    before = [listing(f"{i:x}", f"Listing {i}", [area], kind="chat" if chat else "helpline") for i, (area, chat) in enumerate(rows)]
    before.sort(key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))
    after = edited(before, edits)
    after.sort(key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "HSDS_PART_EVERY", 2)  # HSDS parts of two listings or so, taken when unchanged
        release = _rerun(Path(folder), before, after)
    if after == before:
        assert len(release.reused) == 3 * len(export.locations_of(after))


MANY = sorted(
    (listing(f"{i:012x}", f"Listing {i:02}", [["NO", "NO-03", "GB", "WW"][i % 4]], topics=["grief"][: i % 3]) for i in range(1, 40)),
    key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])),
)


def test_hsds_parts_end_where_the_listings_say_so_an_added_or_removed_one_moving_no_other_bound(monkeypatch):
    monkeypatch.setattr(export, "HSDS_PART_EVERY", 4)
    pieces = export.hsds_pieces(MANY)
    assert [x for piece in pieces for x in piece] == MANY and 4 <= len(pieces) <= 20 and all(pieces)
    for i in (0, 17, len(MANY) - 1):
        fewer = export.hsds_pieces(MANY[:i] + MANY[i + 1 :])
        assert len([p for p in fewer if p not in pieces]) <= 1 and len([p for p in pieces if p not in fewer]) <= 2
    assert export.hsds_pieces([]) == [[]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=12), st.text(max_size=30), st.sampled_from(["NO", "GB", "WW"])),
        max_size=12,
        unique_by=lambda t: t[0],
    ),
    st.integers(1, 4),
)
def test_hsds_part_keys_from_listings_json_are_those_of_each_part_written_alone(rows, every):
    """Each part's listings found in listings.json (``piece_texts``) are the text its own list gives them, whatever
    the ids and the other fields hold (line breaks, quotes, an id's line written into a description)."""
    tricky = ['\n    "id": "', '",\n  },\n  {', "\u2028", '"']
    listings = [
        listing("0", name, [area], description=description + tricky[i % len(tricky)]) | {"id": lid}
        for i, (lid, description, area) in enumerate(rows)
        for name in [f"Listing {i}"]
    ]
    listings.sort(key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "HSDS_PART_EVERY", every)
        pieces = export.hsds_pieces(listings)
    data = export.json_bytes(listings)
    texts = export.piece_texts(pieces, data)
    assert (texts is None) == (not listings)
    if texts is not None:
        assert [bytes(t) for t in texts] == [export.json_bytes(piece)[4:-3] for piece in pieces]
        assert b",\n  ".join(texts) == data[4:-3]
    names = {"NO": "Norway"}
    assert export.part_keys(pieces, names, data) == export.part_keys(pieces, names)


def test_a_rerun_takes_the_hsds_parts_whose_listings_did_not_change(tmp_path, monkeypatch):
    """Only the part holding the renamed listing is built; the package is byte for byte a whole build, and a part
    whose table no longer matches the manifest, or whose bytes no longer match its record, is built again."""
    from curate import hsds

    monkeypatch.setattr(export, "HSDS_PART_EVERY", 4)
    built: list[list[str]] = []
    part_bodies = hsds.part_bodies
    monkeypatch.setattr(hsds, "part_bodies", lambda xs, *a: built.append([str(x["name"]) for x in xs]) or part_bodies(xs, *a))
    renamed = [dict(x, name="Listing 17, renamed") if x["name"] == "Listing 17" else x for x in MANY]
    _rerun(tmp_path / "a", MANY, renamed)
    pieces = export.hsds_pieces(renamed)
    assert len(built) == len(pieces) + 1 + len(pieces)  # the first release's, the rerun's, the whole build's
    assert built[len(pieces)] == next([str(x["name"]) for x in p] for p in pieces if "Listing 17, renamed" in str(p))
    record = json.loads((tmp_path / "a" / export.BUILT_BY).read_bytes())["hsds"]
    assert [p["key"] for p in record["parts"]] == export.part_keys(pieces, {c.code: c.name for c in export.locations_of(renamed)})
    export.publish(renamed, tmp_path / "whole", NOW, 14, {})  # the record of the parts taken (their sha256 not made again)
    assert record == json.loads((tmp_path / "whole" / export.BUILT_BY).read_bytes())["hsds"]
    built.clear()

    for damage in ("table", "record"):
        folder = tmp_path / damage
        export.publish(MANY, folder, NOW, 14, {})
        if damage == "table":  # a table's bytes, the same length
            services = (folder / "current" / "hsds" / "services.csv").resolve()
            services.write_bytes(services.read_bytes().replace(b"Listing 05", b"Listing 5X"))
            os.utime(services, ns=(services.stat().st_atime_ns, services.stat().st_mtime_ns + 1_000_000))  # (a coarse clock)
        else:  # the first part's bytes and the second's swapped in the record, their lengths too
            built_by = json.loads((folder / export.BUILT_BY).read_bytes())
            parts = built_by["hsds"]["parts"]
            parts[0]["bytes"], parts[1]["bytes"] = parts[1]["bytes"], parts[0]["bytes"]
            (folder / export.BUILT_BY).write_text(json.dumps(built_by))
        built.clear()
        release = export.publish(renamed, folder, NOW + dt.timedelta(hours=1), 14, {})
        assert len(built) == (len(pieces) if damage == "table" else 3)  # (the two parts and the renamed one)
        assert _release_tree(release.path) == export.release_files(renamed, None, MANY)


def test_a_rerun_builds_its_few_hsds_parts_here_and_gives_the_package_right_after_listings_json(tmp_path, monkeypatch):
    """With worker processes (here threads), a first release's parts are sent to them; a rerun that takes all its
    parts but one or two builds those here, and gives the HSDS package at once after ``listings.json`` (its check
    then starts that much sooner), not after ``listings.parquet``.  The files are the same either way."""
    monkeypatch.setattr(export, "HSDS_PART_EVERY", 4)
    sent: list[int] = []
    submitted_in_turn = table_check.submitted_in_turn
    monkeypatch.setattr(table_check, "submitted_in_turn", lambda pool, fn, a: sent.append(len(a)) or submitted_in_turn(pool, fn, a))
    export.publish(MANY, tmp_path, NOW, 14, {})
    verified = export._verified_files(tmp_path)
    renamed = [dict(x, name="Listing 17, renamed") if x["name"] == "Listing 17" else x for x in MANY]
    reuse = export._reusable(verified, lambda: [x for x in MANY if x["name"] == "Listing 17"])
    assert reuse is not None
    with ThreadPoolExecutor(2) as pool:
        sent.clear()
        whole = list(export.iter_release_files(MANY, pool=pool))
        assert sent == [len(export.hsds_pieces(MANY))]
        sent.clear()
        rerun = list(export.iter_release_files(renamed, pool=pool, reuse=reuse))
        assert sent == [0]
    rels = [rel for rel, _ in rerun]
    assert rels[0] == "listings.json" and rels[1].startswith("hsds/") and rels.index("listings.parquet") > rels.index("hsds/services.csv")
    again = dict(export.iter_release_files(renamed))  # (no workers, nothing taken)
    assert sorted(rels) == sorted(again) == sorted(rel for rel, _ in whole)
    assert all(again[rel] == data for rel, data in rerun if not isinstance(data, export.Taken))


def test_a_location_that_lost_a_listing_is_neither_among_the_reusable_nor_fits_its_old_count(tmp_path):
    """Two guards, each enough alone: the listings removed or changed touch the locations that held them, and a
    location's count must be the one the release before it gave."""
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    before, verified = export.previous_release(tmp_path)
    after = [x for x in LISTINGS if x["name"] != "Viken only"]
    assert verified is not None
    verified = replace(verified, listings={str(x["id"]): x for x in after})
    reuse = export.reusable(verified, before, after)
    assert reuse is not None and reuse.codes == {"WW", "GB", "IE", "NO-03"}
    everywhere = replace(reuse, codes=frozenset({"WW", "GB", "IE", "NO", "NO-03", "NO-30"}))
    head = {"code": "NO-30", "name": export.location_name("NO-30"), "type": "region", "parent": "NO"}
    assert everywhere.fits(head, 3) and not everywhere.fits(head, 2)


def test_a_rerun_checks_for_safe_content_only_the_listings_that_did_not_pass_then_under_the_same_code(tmp_path, monkeypatch):
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    given: list[list[str]] = []
    check = export.content_problems
    monkeypatch.setattr(export, "content_problems", lambda xs: given.append(sorted(str(x["name"]) for x in xs)) or check(xs))
    after = [*LISTINGS, listing("f", "Oslo too", ["NO-03"])]
    export.publish([dict(x) for x in after], tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert given == [["Oslo too"]]
    monkeypatch.setattr(export, "builder", lambda: "other code")  # the release before was built by other code
    export.publish(after, tmp_path, NOW + dt.timedelta(hours=2), 14, {})
    assert given[-1] == sorted(str(x["name"]) for x in after)
    with pytest.raises(RuntimeError, match="name is not plain text"):  # and what is new is checked
        export.publish([*after, listing("9", "<b>Bold</b>", ["GB"])], tmp_path, NOW + dt.timedelta(hours=3), 14, {})
    assert given[-1] == ["<b>Bold</b>"]


class _Pool:
    """A pool that does what it is given at once, here (the HSDS package's check answers ``planted`` when set), and
    notes each check it is given, with its arguments, among ``events``."""

    def __init__(self, events: list[object], planted: list[str] | None = None) -> None:
        self.events, self.planted = events, planted

    def submit(self, fn, *args):  # type: ignore[no-untyped-def]
        from concurrent.futures import Future

        future: Future = Future()
        if fn is table_check.checked_apart:
            self.events.append(("HSDS check", args[2]))  # (its ``unchanged``)
            future.set_result(self.planted if self.planted is not None else fn(*args))
        else:
            future.set_result(fn(*args))
        return future


def test_listings_parquet_is_built_beside_the_comparison_with_the_release_before(tmp_path, monkeypatch):
    export.publish(LISTINGS, tmp_path, NOW, 14, {})
    started, seen = threading.Event(), []

    def parquet(listings):
        started.set()
        return export.parquet_bytes(listings)

    compare = export.previous_release
    monkeypatch.setattr(export, "previous_release", lambda *a, **k: seen.append(started.wait(10)) or compare(*a, **k))
    after = [*LISTINGS, listing("f", "Oslo too", ["NO-03"])]
    release = export.publish(after, tmp_path, NOW + dt.timedelta(hours=1), 14, {}, writers=export.Writers(parquet=parquet))
    assert seen == [True]  # the build had started while the release before was read
    assert (release.path / "listings.parquet").read_bytes() == export.parquet_bytes(after)


def test_with_workers_the_hsds_package_is_checked_once_written_beside_the_rest_of_the_release(tmp_path, monkeypatch):
    """Once the workers have built its parts, the HSDS package is written between two other files, and its check
    goes to a worker then (once), before the files after it are written: what it finds fails the release.  A
    rerun's check is told which of the package's files are those of the release before (all, here)."""
    import contextlib

    events: list[object] = []
    pool = _Pool(events)
    monkeypatch.setattr(table_check, "workers", contextlib.contextmanager(lambda wanted=True: iter([pool])))
    written = export._written
    monkeypatch.setattr(export, "_written", lambda folder, rel, data, *linked: events.append(rel) or written(folder, rel, data, *linked))
    release = export.publish(MANY, tmp_path, NOW, 14, {})
    hsds_files = [e for e in events if isinstance(e, str) and e.startswith("hsds/")]
    checks = [i for i, e in enumerate(events) if isinstance(e, tuple)]
    assert len(checks) == 1 and hsds_files == [f"hsds/{t}" for t in export.hsds_tables()] + ["hsds/datapackage.json"]
    at = checks[0]
    assert all(events.index(rel) < at for rel in hsds_files)  # after the package is written ...
    assert any(isinstance(e, str) and e.startswith("locations/") for e in events[at:])  # ... before the locations' files
    assert events[at] == ("HSDS check", frozenset())  # nothing is the release before's: there is none
    assert _release_tree(release.path) == export.release_files(MANY)

    events.clear()
    second = export.publish(MANY, tmp_path, NOW + dt.timedelta(hours=1), 14, {})  # the same listings again
    assert [e for e in events if isinstance(e, tuple)] == [("HSDS check", frozenset(hsds_files))]

    pool.planted = ["hsds/phones.csv: row 2: planted by the test"]
    with pytest.raises(RuntimeError, match="planted by the test"):
        export.publish(MANY[1:], tmp_path, NOW + dt.timedelta(hours=2), 14, {})
    assert (tmp_path / "current").resolve() == second.path  # nothing was published
