"""changes.json and the mass-removal guard: pure functions, and publish holding a release."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from curate import export
from tests.test_export import NOW, listing


def many(prefix: str, n: int, areas: list[str]) -> list[dict[str, object]]:
    return [listing(f"{prefix}{i:x}", f"{prefix} line {i}", areas) for i in range(n)]


def test_changes_name_added_removed_and_changed_fields():
    a, b, c = listing("a", "Alpha", ["NO"]), listing("b", "Beta", ["NO"]), listing("c", "Gamma", ["SE"])
    b2 = {**b, "phone": "+4722000000", "topics": ["grief"], "link_checked_at": "2026-11-26T03:00:00Z", "updated_at": "2026-11-26T03:00:00Z"}
    c2 = {**c, "link_checked_at": "2026-11-26T03:00:00Z"}  # a new link check alone is no change
    d = listing("d", "Delta", ["WW"])
    got = export.changes_between([a, b, c], [b2, c2, d])
    assert got == {"added": [d["id"]], "removed": [a["id"]], "changed": [{"id": b["id"], "fields": ["phone", "topics"]}]}


def test_first_release_and_unchanged_release_have_empty_changes():
    xs = many("a", 3, ["NO"])
    empty = {"added": [], "removed": [], "changed": []}
    assert export.changes_between(None, xs) == empty  # nothing to compare against
    assert export.changes_between(xs, [dict(x) for x in xs]) == empty


def test_changes_are_sorted_by_id_whatever_the_listing_order():
    before = many("a", 4, ["NO"])
    after = many("b", 4, ["NO"])
    got = export.changes_between(before, list(reversed(after)))
    assert got["added"] == sorted(str(x["id"]) for x in after) and got["removed"] == sorted(str(x["id"]) for x in before)


def test_guard_holds_more_than_a_fifth_of_all_listings():
    before = many("a", 10, ["NO"]) + many("b", 10, ["SE"])
    assert export.mass_removals(before, before[4:]) == []  # 4 of 20 = 20%: not more than a fifth
    held = export.mass_removals(before, before[5:])  # 5 of 20 = 25%
    assert [(r.code, r.before, r.removed) for r in held] == [("ALL", 20, 5), ("NO", 10, 5)]
    assert "All locations (ALL): 5 of 20 listings (25%)" in str(held[0])


def test_guard_per_location_needs_at_least_five_gone():
    big = many("c", 60, ["GB"])
    small = many("a", 4, ["NO-03"])
    assert export.mass_removals(big + small, big) == []  # Oslo loses 100% but only 4 listings; 4 of 64 overall
    five = many("b", 5, ["SE"])
    held = export.mass_removals(big + small + five, big + small)  # Sweden loses all 5: 5 of 69 overall is fine
    assert [(r.code, r.removed, r.before) for r in held] == [("SE", 5, 5)]


def test_guard_counts_listings_that_leave_a_location_and_worldwide_ones():
    ww = many("d", 6, ["WW"])
    no = many("a", 20, ["NO"])
    moved = [{**x, "areas": ["SE"]} for x in ww]  # still published, but no longer serves Norway or WW
    held = {r.code: r for r in export.mass_removals(ww + no, moved + no)}
    assert set(held) == {"WW", "NO"} and held["NO"].removed == 6 and held["NO"].before == 26


def test_first_release_is_never_held():
    assert export.mass_removals(None, []) == [] and export.mass_removals([], []) == []


def test_publish_holds_a_mass_removal_and_keeps_current(tmp_path):
    before = many("a", 10, ["NO"])
    first = export.publish(before, tmp_path, NOW, 14, {})
    with pytest.raises(export.ReleaseHeld) as held:
        export.publish(before[:5], tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    assert "Norway (NO): 5 of 10 listings (50%)" in str(held.value) and "--allow-mass-removal" in str(held.value)
    assert export.current_release(tmp_path) == first.release_id
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [first.release_id]  # nothing written
    allowed = export.publish(before[:5], tmp_path, NOW + dt.timedelta(hours=2), 14, {}, guard=export.Guard(allow=True))
    assert export.current_release(tmp_path) == allowed.release_id
    changes = json.loads((allowed.path / "changes.json").read_text())
    assert changes["removed"] == sorted(str(x["id"]) for x in before[5:]) and changes["added"] == []


def test_publish_writes_changes_against_the_current_release(tmp_path):
    xs = many("a", 6, ["NO"])
    export.publish(xs, tmp_path, NOW, 14, {})
    renamed = [{**xs[0], "name": "a line 0, renamed"}, *xs[1:], listing("f", "New", ["NO"])]
    second = export.publish(renamed, tmp_path, NOW + dt.timedelta(hours=1), 14, {})
    changes = json.loads((second.path / "changes.json").read_text())
    assert changes == {"added": ["lst_ffffffffffff"], "removed": [], "changed": [{"id": xs[0]["id"], "fields": ["name"]}]}


# --- the fast paths hold to the plain definitions -----------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from schemas.fields import LISTING_FIELDS, UNTRACKED_FIELDS  # noqa: E402

AREAS = ["WW", "NO", "NO-03", "NO-11", "SE", "SE-AB", "DK"]


def _changes_field_by_field(before, after):
    """changes.json as its definition says: every tracked field of every listing kept, compared one by one."""
    old, new = {x["id"]: x for x in before}, {x["id"]: x for x in after}
    tracked = [f for f in LISTING_FIELDS if f not in UNTRACKED_FIELDS and f != "id"]
    changed = [
        {"id": i, "fields": fs} for i in sorted(old.keys() & new.keys()) if (fs := [f for f in tracked if old[i].get(f) != new[i].get(f)])
    ]
    return {"added": sorted(new.keys() - old.keys()), "removed": sorted(old.keys() - new.keys()), "changed": changed}


def _removals_all_placed(before, after, share=0.2, minimum=5):
    """The guard as its definition says: every listing of both releases placed in every location."""
    if not before:
        return []
    after_ids = {x["id"] for x in after}
    gone = sum(1 for x in before if x["id"] not in after_ids)
    out = [("ALL", len(before), gone)] if gone / len(before) > share else []
    locations = export.locations_of(before)
    was_by, still_by = export.listings_by_location(before, locations), export.listings_by_location(after, locations)
    for loc in locations:
        was, still = {x["id"] for x in was_by[loc.code]}, {x["id"] for x in still_by[loc.code]}
        if len(was - still) >= minimum and len(was - still) / len(was) > share:
            out.append((loc.code, len(was), len(was - still)))
    return out


@st.composite
def two_releases(draw):
    """A release and the next: listings kept (some edited, some moved to other areas), removed and added."""
    n = draw(st.integers(0, 40))
    areas = st.lists(st.sampled_from(AREAS), min_size=1, max_size=2, unique=True)
    before = [listing(f"{i:012x}", f"Line {i}", draw(areas)) for i in range(n)]
    after = []
    for x in before:
        fate = draw(st.sampled_from(["same", "same", "edited", "checked", "moved", "gone"]))
        if fate == "same":
            after.append(dict(x))
        elif fate == "edited":
            after.append({**x, draw(st.sampled_from(["name", "phone", "topics", "cost"])): draw(st.sampled_from(["x", None, ["grief"]]))})
        elif fate == "checked":  # untracked fields alone
            after.append({**x, "link_checked_at": "2026-11-26T03:00:00Z", "updated_at": "2026-11-26T03:00:00Z"})
        elif fate == "moved":
            after.append({**x, "areas": draw(areas)})
    after += [listing(f"{i:012x}", f"New {i}", [draw(st.sampled_from(AREAS))]) for i in range(n, n + draw(st.integers(0, 8)))]
    return before, after


@settings(max_examples=300, deadline=None)
@given(two_releases())
def test_changes_and_the_guard_agree_with_their_definitions(releases):
    before, after = releases
    equal: dict[str, dict] = {}
    assert export.changes_between(before, after, equal) == _changes_field_by_field(before, after)
    old = {x["id"]: x for x in before}
    assert equal == {x["id"]: x for x in after if old.get(x["id"]) == x}  # every field, untracked ones too
    assert all(equal[x["id"]] is x for x in after if x["id"] in equal)  # the listings of ``after`` themselves
    for share, minimum in ((0.2, 5), (0.1, 1)):
        expected = _removals_all_placed(before, after, share, minimum)
        for known in (None, equal):  # the guard told which listings are equal, or not
            got = [(r.code, r.before, r.removed) for r in export.mass_removals(before, after, share, minimum, known)]
            assert got == expected


def test_changes_of_a_listing_from_an_older_release_without_a_field():
    a = listing("a", "Alpha", ["NO"])
    old = {k: v for k, v in a.items() if k != "email"}  # written before the field existed
    assert export.changes_between([old], [{**a, "email": "help@line.example"}])["changed"] == [{"id": a["id"], "fields": ["email"]}]
    assert export.changes_between([old], [a])["changed"] == []  # None then, None now
