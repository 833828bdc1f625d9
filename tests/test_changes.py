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
