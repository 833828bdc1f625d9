"""A rerun's listings compared in the warehouse with the release before (``export.compared_in_warehouse``): the same
release, byte for byte, as when that release is read back and compared listing by listing; and the comparison is
never used for a release it was not made for."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export
from curate import warehouse as wh
from schemas.fields import LISTING_FIELDS
from tests.test_core import load
from tests.test_export import LISTINGS, NOW, edited, listing

LATER = NOW + dt.timedelta(hours=1)
INSERT = f"INSERT INTO out_listings ({', '.join(LISTING_FIELDS)}) VALUES ({', '.join('?' * len(LISTING_FIELDS))})"


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse whose ``out_listings`` has the columns a run gives it."""
    c = wh.connect(tmp_path_factory.mktemp("warehouse") / "w.duckdb")
    load(c, "a", "name,kind,phone,country\nOne,helpline,020 7946 0001,GB\n")
    wh.build_core(c, NOW.replace(tzinfo=None), 24)
    c.execute("CREATE TABLE out_template AS SELECT * FROM out_listings LIMIT 0")
    yield c
    c.close()


def put(con: duckdb.DuckDBPyConnection, listings: list[dict[str, object]]) -> list[dict[str, object]]:
    """``out_listings`` made again holding ``listings`` (as ``build_core`` makes it: the release last published keeps
    the table it was published from); returns them as a run reads them (``public_listings``)."""
    wh.keep_published_listings(con)
    con.execute("CREATE OR REPLACE TABLE out_listings AS SELECT * FROM out_template")
    for x in listings:
        con.execute(INSERT, [x[name] for name in LISTING_FIELDS])
    return export.public_listings(con)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def published(con: duckdb.DuckDBPyConnection, folder: Path, listings: list[dict[str, object]]) -> export.Release:
    release = export.publish(put(con, listings), folder, NOW, 14, {})
    export.remember_release(con, release)
    return release


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["NO", "NO-03", "NO-30", "GB", "IE", "WW"]), st.booleans()), max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["drop", "rename", "move", "add", "touch"])), max_size=4),
    st.booleans(),
)
def test_a_rerun_compared_in_the_warehouse_is_the_release_compared_listing_by_listing(con, rows, edits, allow):
    """Both ways give the same files (manifest and changes.json among them), take the same files from the release
    before, and hold the same mass removals; the listings compared are those that differ, and only those are read."""
    before = [listing(f"{i:x}", f"Listing {i}", [area], kind="chat" if chat else "helpline") for i, (area, chat) in enumerate(rows)]
    after = edited(before, edits)
    guard = export.Guard(share=0.2, minimum=1, allow=allow)
    with tempfile.TemporaryDirectory() as read_back, tempfile.TemporaryDirectory() as in_warehouse, pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "HSDS_PART_EVERY", 2)  # HSDS parts of two listings or so, taken when unchanged
        published(con, Path(read_back), before)
        published(con, Path(in_warehouse), before)
        listings = put(con, after)
        compared = export.compared_in_warehouse(con, Path(in_warehouse))
        assert compared is not None
        changed = {str(x["id"]) for x in after if x not in before} | {str(x["id"]) for x in before if x not in after}
        assert compared.different == changed
        assert sorted(str(x["id"]) for x in compared.before) == sorted(str(x["id"]) for x in before if str(x["id"]) in changed)
        outcomes = []
        for folder, given_compared in ((read_back, None), (in_warehouse, compared)):
            try:
                release = export.publish(list(listings), Path(folder), LATER, 14, {}, guard=guard, compared=given_compared)
            except export.ReleaseHeld as held:
                outcomes.append(("held", str(held)))
            else:
                outcomes.append(("published", release.counts, release.reused, tree(release.path)))
    assert outcomes[0] == outcomes[1]


def test_a_rerun_compared_in_the_warehouse_does_not_read_the_release_before(con, tmp_path, monkeypatch):
    published(con, tmp_path, LISTINGS)
    renamed = [dict(x, name="Two countries, renamed") if x["name"] == "Two countries" else x for x in LISTINGS]
    listings = put(con, renamed)
    compared = export.compared_in_warehouse(con, tmp_path)
    assert compared is not None and [x["name"] for x in compared.before] == ["Two countries"]

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the release before was read")

    monkeypatch.setattr(export, "previous_release", unread)
    monkeypatch.setattr(export, "listings_from_json", unread)
    release = export.publish(listings, tmp_path, LATER, 14, {}, compared=compared)
    assert release.counts["changed"] == 1 and set(release.reused) >= {"locations/NO.json", "locations/WW.csv"}
    assert export.orjson.loads((release.path / "changes.json").read_bytes())["changed"] == [
        {"id": next(str(x["id"]) for x in LISTINGS if x["name"] == "Two countries"), "fields": ["name"]}
    ]


def test_a_rerun_compared_in_the_warehouse_lets_go_of_its_listings_beside_its_last_checks(con, tmp_path, monkeypatch):
    """Its listings (and the equal ones of the release before) are emptied by a thread of their own while the files
    are checked, and are empty once ``publish`` returns; a publish not compared so lets go of them itself, first."""
    freed_by: list[str] = []
    monkeypatch.setattr(export, "give_back_freed_memory", lambda: freed_by.append(threading.current_thread().name))
    published(con, tmp_path / "a", LISTINGS)
    renamed = [dict(x, name="Two countries, renamed") if x["name"] == "Two countries" else x for x in LISTINGS]
    listings = put(con, renamed)
    compared = export.compared_in_warehouse(con, tmp_path / "a")
    freed_by.clear()
    export.publish(listings, tmp_path / "a", LATER, 14, {}, let_go_of_listings=True, compared=compared)
    assert listings == [] and "publish-let-go" in freed_by
    freed_by.clear()
    listings = put(con, LISTINGS)
    export.publish(listings, tmp_path / "b", LATER, 14, {}, let_go_of_listings=True)
    assert listings == [] and "publish-let-go" not in freed_by and freed_by


OTHERWISE = ["nothing remembered", "another release", "other code", "other listings.json", "index changed", "ids twice"]


@pytest.mark.parametrize("otherwise", OTHERWISE)
def test_the_comparison_is_made_only_for_the_release_the_warehouse_remembers_as_this_code_built_it(con, tmp_path, monkeypatch, otherwise):
    first = published(con, tmp_path, LISTINGS)
    put(con, LISTINGS[1:])
    assert export.compared_in_warehouse(con, tmp_path) is not None
    if otherwise == "nothing remembered":
        con.execute("DELETE FROM published_release")
    elif otherwise == "another release":  # published by something that did not remember it
        export.publish(LISTINGS[1:], tmp_path, LATER, 14, {}, guard=export.Guard(allow=True))
    elif otherwise == "other code":
        monkeypatch.setattr(export, "builder", lambda: "another builder")
    elif otherwise == "other listings.json":
        con.execute("UPDATE published_release SET listings_sha256 = 'f' || listings_sha256[2:]")
    elif otherwise == "index changed":
        index = first.path / "index.json"
        index.write_bytes(index.read_bytes().replace(b'"count": 1', b'"count": 2', 1))
    else:
        con.execute(INSERT, [LISTINGS[1][name] for name in LISTING_FIELDS])
    assert export.compared_in_warehouse(con, tmp_path) is None


def test_a_release_compared_for_another_release_is_not_used(con, tmp_path):
    published(con, tmp_path, LISTINGS)
    listings = put(con, LISTINGS[1:])
    compared = export.compared_in_warehouse(con, tmp_path)
    assert compared is not None
    second = export.publish(LISTINGS[2:], tmp_path, LATER, 14, {}, guard=export.Guard(allow=True))
    third = export.publish(listings, tmp_path, LATER + dt.timedelta(hours=1), 14, {}, guard=export.Guard(allow=True), compared=compared)
    changes = export.orjson.loads((third.path / "changes.json").read_bytes())
    assert third.previous == second.release_id and changes["added"] == [str(LISTINGS[1]["id"])] and changes["removed"] == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"description": "<b>Bold</b> claims"}, "description is not plain text"),
        ({"description": "d" * 1001}, "longer than 1000 characters"),
    ],
)
def test_a_rerun_compared_in_the_warehouse_checks_the_listings_that_differ_and_only_those(con, tmp_path, monkeypatch, change, problem):
    """The listings whose digests differ are checked for safe content and against the listing schema; the others
    passed both when the release before was checked, under the same code and schema."""
    published(con, tmp_path, LISTINGS)
    listings = put(con, [dict(x, **change) if x["name"] == "Oslo only" else x for x in LISTINGS])
    compared = export.compared_in_warehouse(con, tmp_path)
    assert compared is not None
    looked_at: list[list[str]] = []
    content = export.content_problems
    monkeypatch.setattr(export, "content_problems", lambda xs: looked_at.append([str(x["name"]) for x in xs]) or content(xs))
    with pytest.raises(RuntimeError, match=problem) as fast:
        export.publish(listings, tmp_path, LATER, 14, {}, compared=compared)
    assert looked_at == [["Oslo only"]]
    with pytest.raises(RuntimeError) as slow:  # (the release before read and compared listing by listing)
        export.publish(listings, tmp_path, LATER, 14, {})
    assert str(fast.value) == str(slow.value)


def test_duckdb_orders_the_listings_as_python_sorts_them(con):
    """``public_listings`` takes DuckDB's order (kind, name, id) as it is: the order Python's sort gives, a code
    point at a time, None as "None", whatever the names' scripts and planes."""
    names = ["Zeta", "alpha", "Émile", "émile", "😀 Smile", "\uffff", "None", "", "Ωmega", "a\u0300", "à", "Nonf", "A b", "A\tb", "ß", "ss"]
    rows = [listing(f"{i:x}", name, ["NO"], kind="chat" if i % 3 else "helpline") for i, name in enumerate(names)]
    rows += [listing("f", "Ünnamed", ["NO"]) | {"name": None}, listing("e", "Same", ["NO"]) | {"id": "lst_Z"}]
    got = put(con, rows)
    assert [x["id"] for x in got] == [x["id"] for x in sorted(got, key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))]
    assert {x["id"] for x in got} == {x["id"] for x in rows}


def test_the_listings_published_are_kept_by_the_next_build_and_until_a_release_is_published_again(con, tmp_path):
    """Right after a publish, ``out_listings`` is the release's own (nothing differs); the next build keeps it as
    ``published_listings``, and a release held (not published) leaves that release the one compared with."""
    published(con, tmp_path, LISTINGS)
    same = export.compared_in_warehouse(con, tmp_path)
    assert same is not None and same.different == frozenset() and same.before == [] and same.count == len(LISTINGS)
    listings = put(con, LISTINGS[:1])  # four of five gone: held
    with pytest.raises(export.ReleaseHeld):
        export.publish(listings, tmp_path, LATER, 14, {}, compared=export.compared_in_warehouse(con, tmp_path))
    put(con, LISTINGS[1:])
    compared = export.compared_in_warehouse(con, tmp_path)
    assert compared is not None and compared.different == {str(LISTINGS[0]["id"])} and compared.count == len(LISTINGS)


def test_a_rerun_that_changed_no_listing_takes_every_file_and_is_the_release_publish_builds(con, tmp_path):
    """Every file but ``changes.json`` and the manifest is linked from the release before, none read or built; the
    release is byte for byte the one ``publish`` builds of the same listings (its manifest too), and passes every
    check ``verify`` makes of a release read back from disk."""
    sources = [export.SourceMeta("a", "CC-BY-4.0", "Source A", "https://a.example/data.csv")]
    for folder in ("built", "taken"):
        before = export.publish(put(con, LISTINGS), tmp_path / folder, NOW, 14, {}, sources)
        export.remember_release(con, before)
    listings = put(con, LISTINGS)
    built = export.publish(listings, tmp_path / "built", LATER, 14, {"sources": 1}, sources)
    compared = export.compared_in_warehouse(con, tmp_path / "taken")
    assert compared is not None and not compared.different
    taken = export.publish_unchanged(tmp_path / "taken", LATER, 14, {"sources": 1}, compared, sources)
    assert taken is not None and taken.release_id == built.release_id and taken.counts == built.counts
    assert tree(taken.path) == tree(built.path)
    files = {e["path"] for e in export.orjson.loads((taken.path / "manifest.json").read_bytes())["files"]}
    assert set(taken.reused) == files - {"changes.json"} and {"listings.json", "hsds/services.csv", "index.html"} <= set(taken.reused)
    for rel in taken.reused:
        assert (taken.path / rel).stat().st_ino == (before.path / rel).stat().st_ino, rel
    assert export.current_release(tmp_path / "taken") == taken.release_id
    man = export.orjson.loads((taken.path / "manifest.json").read_bytes())
    assert export.verify(taken.path, man) == []
    # and the next run takes them again, from this release
    again = export.publish_unchanged(
        tmp_path / "taken", LATER + dt.timedelta(hours=1), 14, {"sources": 1}, compared_again(con, tmp_path / "taken"), sources
    )
    assert (
        again is not None
        and again.previous == taken.release_id
        and (again.path / "listings.json").stat().st_ino == (before.path / "listings.json").stat().st_ino
    )


def compared_again(con: duckdb.DuckDBPyConnection, folder: Path) -> export.Compared | None:
    """The comparison a run after the last one makes when its listings are the same (its build kept the table)."""
    release = export.Release(export.current_release(folder) or "", folder / "current", None, {})
    export.remember_release(con, release)
    put(con, LISTINGS)
    return export.compared_in_warehouse(con, folder)


SAME_OTHERWISE = ["a listing changed", "a licence changed", "a file changed since", "a location renamed", "other code", "not compared"]


@pytest.mark.parametrize("otherwise", SAME_OTHERWISE)
def test_a_rerun_publishes_the_release_before_again_only_when_every_file_would_be_the_same(con, tmp_path, monkeypatch, otherwise):
    """When a listing differs, a file holding more than the listings would differ (a source's licence, a location's
    name), a file of the release before no longer matches its manifest, or that release was built by other code,
    nothing is written: the release is built and checked by ``publish``."""
    sources = [export.SourceMeta("a", "CC-BY-4.0")]
    first = export.publish(put(con, LISTINGS), tmp_path, NOW, 14, {}, sources)
    export.remember_release(con, first)
    listings = LISTINGS
    if otherwise == "a listing changed":
        listings = [dict(x, name="Renamed") if x["name"] == "Two countries" else x for x in LISTINGS]
    elif otherwise == "a licence changed":
        sources = [export.SourceMeta("a", "CC-BY-SA-4.0")]
    elif otherwise == "a file changed since":
        path = first.path / "listings.json"  # (as many bytes as before)
        data = path.read_bytes()
        path.write_bytes(data.replace(b'"id"', b'"Id"'))
        assert path.read_bytes() != data
    elif otherwise == "a location renamed":
        monkeypatch.setattr(export, "location_name", lambda code: "Somewhere else")
    put(con, listings)
    compared = None if otherwise == "not compared" else export.compared_in_warehouse(con, tmp_path)
    assert compared is not None or otherwise == "not compared"
    if otherwise == "other code":  # (once compared: the comparison is made only for this code's releases too)
        monkeypatch.setattr(export, "builder", lambda: "other code")
    before = sorted(p.name for p in (tmp_path / "releases").iterdir())
    assert export.publish_unchanged(tmp_path, LATER, 14, {}, compared, sources) is None
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == before
    assert export.current_release(tmp_path) == first.release_id
