"""A rerun's release patched from the release before (``curate.patched``): byte for byte the release ``publish``
builds from the same listings, or nothing written at all."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export, patched
from tests.test_compared import LATER, con, published, put, tree  # noqa: F401 (``con``: the fixture)
from tests.test_export import LISTINGS, listing

AREAS = ["NO", "NO-03", "NO-30", "GB", "IE", "WW"]


def edited(before: list[dict[str, object]], edits: list[tuple[int, str, str]]) -> list[dict[str, object]]:
    """``before`` with each edit made at its place: dropped, renamed (to the name given), moved to other areas, given
    another phone number, or a listing added (with the name given)."""
    after = list(before)
    for n, (i, what, name) in enumerate(edits):
        if what == "add":
            after.append(listing(f"f{n}", name, ["NO-03"] if n % 2 else ["GB"]))
        elif i < len(after) and what == "drop":
            after.pop(i)
        elif i < len(after) and what == "rename":
            after[i] = dict(after[i], name=name)
        elif i < len(after) and what == "move":
            after[i] = dict(after[i], areas=["NO-30", "IE"])
        elif i < len(after):
            after[i] = dict(after[i], phone=f"+4721{n:06d}")
    return after


def both_ways(con, folder: Path, before, after, guard=None) -> tuple[object, object]:  # noqa: F811
    """The release ``publish`` builds of ``after`` after one of ``before`` (in ``folder/built``), and the one
    ``publish_patched`` gives (in ``folder/patched``: None when it gives none), each as its files or the mass removal
    that held it."""
    outcomes = []
    for way in ("built", "patched"):
        where = folder / way
        published(con, where, before)
        listings = put(con, after)
        compared = export.compared_in_warehouse(con, where)
        assert compared is not None
        try:
            if way == "built":
                release = export.publish(listings, where, LATER, 14, {}, guard=guard, compared=compared)
            else:
                current = (where / "current").resolve()
                with pytest.MonkeyPatch.context() as mp:  # (nor are the listings that do not differ read)
                    mp.setattr(export, "public_listings", lambda con: pytest.fail("every listing read"))
                    release = patched.publish_patched(con, where, LATER, 14, {}, compared, guard=guard)
                if release is None:  # nothing written, the release before still current
                    assert (where / "current").resolve() == current
                    assert sorted(p.name for p in (where / "releases").iterdir()) == [current.name]
                    outcomes.append(None)
                    continue
        except export.ReleaseHeld as held:
            outcomes.append(("held", str(held)))
        else:
            outcomes.append(("published", release.counts, tree(release.path)))
    return outcomes[0], outcomes[1]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(AREAS), st.booleans(), st.sampled_from(["A", "B", "M", "Z"])), min_size=1, max_size=9),
    st.lists(
        st.tuples(st.integers(0, 14), st.sampled_from(["drop", "rename", "move", "phone", "add"]), st.sampled_from(["A", "M", "N", "Zz"])),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_a_patched_release_is_the_release_built_from_the_same_listings(con, rows, edits, allow):  # noqa: F811
    """Listings of a few names (many equal, ordered by id then), in parts of two listings or so: each edit moves a
    listing within the files, across the parts, or out of a location; the patched release is the built one, byte for
    byte (the manifest, .built-by's HSDS record among what the next rerun takes), or nothing; a held release is held
    both ways."""
    base = [listing(f"8{i}", f"Base {i}", [area]) for i, area in enumerate(AREAS)]  # (few locations added or gone)
    before = base + [listing(f"{i:x}", name, [area], kind="chat" if chat else "helpline") for i, (area, chat, name) in enumerate(rows)]
    after = edited(before, edits)
    guard = export.Guard(share=0.2, minimum=1, allow=allow)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "HSDS_PART_EVERY", 2)
        built, patched_one = both_ways(con, Path(folder), before, after, guard)
        if patched_one is not None:
            assert patched_one == built
            if built[0] == "published":
                records = [orjson.loads((Path(folder) / way / export.BUILT_BY).read_bytes())["hsds"] for way in ("built", "patched")]
                assert records[0] == records[1]


def test_one_listing_renamed_is_patched_into_every_file_it_is_in(con, tmp_path, monkeypatch):  # noqa: F811
    """A national listing renamed moves in listings.json and in its country's and regions' files; the files of the
    locations it is not in, and the HSDS tables whose bytes did not change, are taken (linked)."""
    many = [listing(f"9{i:x}", f"Listing {i:02d}", [AREAS[i % len(AREAS)]]) for i in range(1, 13)]
    before = LISTINGS + many
    after = [dict(x, name="Zz National NO") if x["name"] == "National NO" else x for x in before]
    monkeypatch.setattr(export, "HSDS_PART_EVERY", 3)
    built, patched_one = both_ways(con, tmp_path, before, after)
    assert patched_one == built
    changes = orjson.loads(built[2]["changes.json"])
    assert [c["fields"] for c in changes["changed"]] == [["name"]]
    current = (tmp_path / "patched" / "current").resolve()
    previous = (tmp_path / "patched" / "releases").iterdir()
    older = next(p for p in previous if p != current)
    same_inode = {rel for rel in built[2] if (older / rel).exists() and (older / rel).stat().st_ino == (current / rel).stat().st_ino}
    assert {"locations/GB.json", "locations/WW.csv", "preview/data/IE.js", "hsds/taxonomies.csv", "hsds/phones.csv"} <= same_inode
    assert not {"listings.json", "locations/NO.json", "locations/NO-03.csv", "preview/data/NO-30.js", "hsds/services.csv"} & same_inode


@pytest.mark.parametrize("what", ["add", "drop", "phone", "move"])
def test_a_listing_added_dropped_or_changed_is_patched(con, tmp_path, monkeypatch, what):  # noqa: F811
    before = LISTINGS + [listing(f"9{i:x}", f"Listing {i:02d}", [AREAS[i % len(AREAS)]]) for i in range(6, 15)]
    after = edited(before, [(2, what, "Added")])
    monkeypatch.setattr(export, "HSDS_PART_EVERY", 2)
    built, patched_one = both_ways(con, tmp_path, before, after)
    assert patched_one is not None and patched_one == built


def _release_before(con, tmp_path):  # noqa: F811
    before = LISTINGS + [listing(f"9{i:x}", f"Listing {i:02d}", ["GB"]) for i in range(6, 12)]
    published(con, tmp_path, before)
    after = [dict(x, name="Renamed") if x["name"] == "Listing 07" else x for x in before]
    put(con, after)
    compared = export.compared_in_warehouse(con, tmp_path)
    assert compared is not None
    return compared


def _not_patched(con, tmp_path, compared, **kwargs):  # noqa: F811
    current = (tmp_path / "current").resolve()
    assert patched.publish_patched(con, tmp_path, LATER, 14, {}, compared, **kwargs) is None
    assert (tmp_path / "current").resolve() == current
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [current.name]


def test_a_file_changed_since_it_was_published_is_not_patched(con, tmp_path):  # noqa: F811
    """A listing's name changed in the release before's GB.csv (same size, still valid): its listings would carry it
    into the new release; ``publish`` builds that release instead."""
    compared = _release_before(con, tmp_path)
    path = tmp_path / "current" / "locations" / "GB.csv"
    data = path.read_bytes()
    assert data.count(b"Listing 06") == 2  # (its name, and its source's record id)
    path.write_bytes(data.replace(b"Listing 06", b"Listing 0X"))
    _not_patched(con, tmp_path, compared)


def test_a_licence_changed_or_other_code_is_not_patched(con, tmp_path, monkeypatch):  # noqa: F811
    compared = _release_before(con, tmp_path)
    _not_patched(con, tmp_path, compared, sources=[export.SourceMeta("s", "CC-BY-4.0")])
    monkeypatch.setattr(export, "builder", lambda: "other code")
    _not_patched(con, tmp_path, compared)


def test_more_listings_changed_than_patched_are_built(con, tmp_path, monkeypatch):  # noqa: F811
    compared = _release_before(con, tmp_path)
    monkeypatch.setattr(patched, "PATCH_MAX", 0)
    _not_patched(con, tmp_path, compared)


def test_a_listing_out_of_its_place_is_not_patched(con, tmp_path):  # noqa: F811
    """GB.json whose listings are not in the release's order (two swapped, the manifest made to match): bisecting
    finds another listing where the one renamed should be, and nothing is patched."""
    compared = _release_before(con, tmp_path)
    current = tmp_path / "current"
    data = (current / "locations" / "GB.json").read_bytes()
    opening = patched.location_opening(orjson.loads(data)["location"], orjson.loads(data)["count"])
    assert data.startswith(opening)
    texts = data[len(opening) : -len(patched.LOCATION_CLOSES)].split(export.DEEPER_BETWEEN)
    at = next(i for i, t in enumerate(texts) if b'"Listing 07"' in t)
    texts[at - 1], texts[at] = texts[at], texts[at - 1]
    swapped = opening + export.DEEPER_BETWEEN.join(texts) + patched.LOCATION_CLOSES
    man = orjson.loads((current / "manifest.json").read_bytes())
    for entry in man["files"]:
        if entry["path"] == "locations/GB.json":
            entry["sha256"] = export.hashlib.sha256(swapped).hexdigest()
    (current / "locations" / "GB.json").write_bytes(swapped)
    (current / "manifest.json").write_bytes(export.json_bytes(man))
    _not_patched(con, tmp_path, compared)


def test_a_listing_unsafe_to_publish_is_not_patched(con, tmp_path):  # noqa: F811
    """The patched release's checks find a listing's markup: nothing is written (``publish`` builds the release,
    whose checks fail it)."""
    before = LISTINGS + [listing(f"9{i:x}", f"Listing {i:02d}", ["GB"]) for i in range(6, 12)]
    published(con, tmp_path, before)
    put(con, [dict(x, description="<script>x</script>") if x["name"] == "Listing 07" else x for x in before])
    compared = export.compared_in_warehouse(con, tmp_path)
    _not_patched(con, tmp_path, compared)


def test_an_hsds_part_built_wrong_is_not_patched(con, tmp_path, monkeypatch):  # noqa: F811
    """The HSDS parts built anew are checked (a package of their own, with the tables' heads): a part whose rows
    repeat an organization fails, and nothing is written."""
    compared = _release_before(con, tmp_path)
    built = patched.hsds.part_bodies

    def repeated(*args, **kwargs):
        bodies, terms = built(*args, **kwargs)
        return {**bodies, "organizations.csv": bodies["organizations.csv"] * 2}, terms

    monkeypatch.setattr(patched.hsds, "part_bodies", repeated)
    _not_patched(con, tmp_path, compared)
    monkeypatch.setattr(patched.hsds, "part_bodies", built)
    release = patched.publish_patched(con, tmp_path, LATER, 14, {}, compared)
    assert release is not None and release.locations_taken == ["IE", "NO", "NO-03", "NO-30", "WW"]  # (GB's patched)
    assert "hsds/taxonomies.csv" in release.reused


def test_a_csv_record_written_wrong_is_not_patched(con, tmp_path, monkeypatch):  # noqa: F811
    """The location files' new records are checked (a package of their own): a record whose kind is none of the
    vocabulary's fails, and nothing is written."""
    compared = _release_before(con, tmp_path)
    records = export.csv_records

    def wrong(listings):
        out = records(listings)
        return [r.replace(b",helpline,", b",hotline,") if b"Renamed" in r else r for r in out]

    monkeypatch.setattr(patched.export, "csv_records", wrong)
    _not_patched(con, tmp_path, compared)
