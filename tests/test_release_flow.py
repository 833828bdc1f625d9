"""Issue 7 end to end: a second run with one source changed writes the right changes.json; a source that lost half
of its rows holds the release (exit 1, current untouched) until --allow-mass-removal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate import export
from curate.cli import app
from tests.test_flow import LATER, NOW, load, run, settings_for

HEADER = "record_id,name,kind,url,country,topics\n"


def lines(prefix: str, country: str, n: int, start: int = 0) -> str:
    return "".join(
        f"{prefix}{i},{prefix.upper()} Line {i},helpline,https://{prefix}{i}.example/,{country},general\n" for i in range(start, n)
    )


@pytest.fixture
def two_sources(tmp_path: Path) -> Path:
    src = tmp_path / "sources"
    src.mkdir()
    (src / "norway.csv").write_text(HEADER + lines("no", "NO", 10), encoding="utf-8")
    (src / "sweden.csv").write_text(HEADER + lines("se", "SE", 12), encoding="utf-8")
    return src


def by_name(settings) -> dict[str, dict]:
    return {x["name"]: x for x in load(settings.exports_dir / "current" / "listings.json")}


def cli(settings, *extra: str) -> object:
    args = ["--sources", str(settings.sources_dir), "--exports", str(settings.exports_dir), "--warehouse", str(settings.warehouse_file)]
    return CliRunner().invoke(app, [*extra[:1], *args, *extra[1:]])


def test_second_run_with_one_source_changed_writes_the_right_changes(prefect_harness, two_sources, tmp_path, monkeypatch):
    settings = settings_for(tmp_path, two_sources)
    first = run(settings, NOW)
    before = by_name(settings)
    text = HEADER + lines("no", "NO", 10).replace("NO Line 3,helpline", "NO Line 3,chat") + lines("no", "NO", 11, start=10)
    (two_sources / "norway.csv").write_text(text.replace("general\n", "grief\n", 1), encoding="utf-8")
    compared = export.compared_in_warehouse
    seen: list[object] = []
    monkeypatch.setattr(export, "compared_in_warehouse", lambda *a: seen.append(compared(*a)) or seen[-1])
    monkeypatch.setattr(export, "previous_release", None)  # (the warehouse remembers the first release's listings)
    second = run(settings, LATER)
    assert len(seen) == 1 and isinstance(seen[0], export.Compared) and seen[0].release == first.release_id
    assert second.held is None and second.release_id != first.release_id
    changes = load(settings.exports_dir / "current" / "changes.json")
    after = by_name(settings)
    assert changes["added"] == [after["NO Line 10"]["id"]]
    assert changes["removed"] == []
    assert changes["changed"] == sorted(
        [{"id": before["NO Line 0"]["id"], "fields": ["topics"]}, {"id": before["NO Line 3"]["id"], "fields": ["kind"]}],
        key=lambda c: c["id"],
    )
    manifest = load(settings.exports_dir / "current" / "manifest.json")
    assert manifest["previous_release"] == first.release_id
    assert second.changes == {"added": 1, "removed": 0, "changed": 2} and manifest["counts"]["changed"] == 2
    releases = settings.exports_dir / "releases"
    for rel in ("locations/SE.json", "locations/SE.csv", "preview/data/SE.js"):  # Sweden's, taken unchanged
        assert (releases / first.release_id / rel).read_bytes() == (releases / second.release_id / rel).read_bytes()
    norway = [(releases / rid / "locations/NO.json").read_bytes() for rid in (first.release_id, second.release_id)]
    assert norway[0] != norway[1]
    built_by = json.loads((settings.exports_dir / ".built-by.json").read_bytes())
    assert (built_by["release"], built_by["builder"]) == (second.release_id, export.builder())
    published = export.listings_from_json((settings.exports_dir / "current" / "listings.json").read_bytes())
    assert len(built_by["hsds"]["parts"]) == len(export.hsds_pieces(published))  # type: ignore[arg-type]


def test_a_run_that_changed_no_listing_publishes_the_files_of_the_release_before(prefect_harness, two_sources, tmp_path, monkeypatch):
    """A rerun whose listings are all the current release's takes every file of it (linked), none built nor read;
    when a source's licence changed (the data packages name it), the release is built again and names it."""
    settings = settings_for(tmp_path, two_sources)
    first = run(settings, NOW)
    monkeypatch.setattr(export, "public_listings", None)  # (the listings are not read)
    second = run(settings, LATER)
    monkeypatch.undo()
    assert second.held is None and second.changes == {"added": 0, "removed": 0, "changed": 0}
    releases = settings.exports_dir / "releases"
    manifest = load(releases / second.release_id / "manifest.json")
    assert manifest["previous_release"] == first.release_id and manifest["counts"]["listings"] == second.public_listings == 22
    for entry in manifest["files"]:
        rel = entry["path"]
        if rel != "changes.json":
            assert (releases / second.release_id / rel).stat().st_ino == (releases / first.release_id / rel).stat().st_ino, rel
    assert load(releases / second.release_id / "changes.json") == {"added": [], "removed": [], "changed": []}
    (two_sources / "sources.toml").write_text('[sources.norway]\nlicence = "CC-BY-4.0"\n', encoding="utf-8")
    third = run(settings, LATER + (LATER - NOW))
    assert third.held is None and third.changes == {"added": 0, "removed": 0, "changed": 0}
    package = load(releases / third.release_id / "datapackage.json")
    assert package["licenses"] == [{"name": "CC-BY-4.0"}]
    assert load(releases / third.release_id / "hsds" / "datapackage.json")["licenses"] == [{"name": "CC-BY-4.0"}]
    listings = releases / third.release_id / "listings.json"
    assert listings.read_bytes() == (releases / first.release_id / "listings.json").read_bytes()
    assert listings.stat().st_ino != (releases / first.release_id / "listings.json").stat().st_ino  # (written again)


def test_a_run_that_changed_a_listing_patches_the_release_before(prefect_harness, two_sources, tmp_path, monkeypatch):
    """A rerun that renamed one listing and added one patches the current release's files (``curate.patched``): no
    listing read but those, Norway's files and listings.json written, Sweden's taken; the release is the one a whole
    build gives, byte for byte."""
    settings = settings_for(tmp_path, two_sources)
    first = run(settings, NOW)
    norway = two_sources / "norway.csv"
    norway.write_text(HEADER + lines("no", "NO", 11).replace("NO Line 3,", "NO Line 3 renamed,"), encoding="utf-8")
    monkeypatch.setattr(export, "public_listings", None)  # (the listings are not read)
    second = run(settings, LATER)
    monkeypatch.undo()
    assert second.held is None and second.changes == {"added": 1, "removed": 0, "changed": 1}
    releases = settings.exports_dir / "releases"
    new, old = releases / second.release_id, releases / first.release_id
    same = {rel for rel in ("listings.json", "locations/NO.json", "locations/SE.json", "locations/SE.csv", "preview/data/SE.js")
            if (new / rel).stat().st_ino == (old / rel).stat().st_ino}  # fmt: skip
    assert same == {"locations/SE.json", "locations/SE.csv", "preview/data/SE.js"}
    names = [x["name"] for x in load(new / "locations" / "NO.json")["listings"]]
    assert "NO Line 3 renamed" in names and "NO Line 10" in names and "NO Line 3" not in names
    whole = tmp_path / "whole"  # the same listings built whole
    release = export.publish(load(new / "listings.json"), whole, LATER, 14, {}, [export.SourceMeta(s) for s in ("norway", "sweden")])
    for path in new.rglob("*"):
        rel = str(path.relative_to(new))
        if path.is_file() and rel not in ("manifest.json", "changes.json"):
            assert path.read_bytes() == (release.path / rel).read_bytes(), rel


def test_a_source_that_lost_half_its_rows_holds_the_release(prefect_harness, two_sources, tmp_path):
    settings = settings_for(tmp_path, two_sources)
    first = run(settings, NOW)
    (two_sources / "norway.csv").write_text(HEADER + lines("no", "NO", 5), encoding="utf-8")  # 5 of 10 rows gone
    result = cli(settings, "run")
    assert result.exit_code == 1, result.output
    assert "Release held" in result.output and "Norway (NO): 5 of 10 listings (50%)" in " ".join(result.output.split())
    assert "--allow-mass-removal" in result.output
    assert (settings.exports_dir / "current").resolve().name == first.release_id  # nothing published
    assert len(list((settings.exports_dir / "releases").iterdir())) == 1
    assert len(by_name(settings)) == 22
    exported = cli(settings, "export")  # curate export holds it too
    assert exported.exit_code == 1 and "Release held" in exported.output
    allowed = cli(settings, "run", "--allow-mass-removal")
    assert allowed.exit_code == 0, allowed.output
    assert len(by_name(settings)) == 17
    changes = load(settings.exports_dir / "current" / "changes.json")
    assert len(changes["removed"]) == 5 and changes["added"] == []


def test_losing_a_whole_small_country_is_not_a_mass_removal(prefect_harness, tmp_path):
    src = tmp_path / "sources"
    src.mkdir()
    (src / "big.csv").write_text(HEADER + lines("gb", "GB", 30), encoding="utf-8")
    (src / "tiny.csv").write_text(HEADER + lines("is", "IS", 4), encoding="utf-8")
    settings = settings_for(tmp_path, src)
    run(settings, NOW)
    (src / "tiny.csv").unlink()  # 4 listings: 100% of Iceland but fewer than 5, and 12% of all
    summary = run(settings, LATER)
    assert summary.held is None
    assert len(json.loads((settings.exports_dir / "current" / "changes.json").read_text())["removed"]) == 4
    assert not (settings.exports_dir / "current" / "locations" / "IS.json").exists()


def test_a_release_the_warehouse_could_not_keep_stands_and_the_next_run_reads_it(prefect_harness, two_sources, tmp_path, monkeypatch):
    """``remember_release`` failing (DuckDB) leaves the published release current and the run published; the next
    run compares its listings with that release's read back, and writes the right changes."""
    import duckdb

    settings = settings_for(tmp_path, two_sources)
    run(settings, NOW)
    before = by_name(settings)

    def fails(con: object, release: object) -> None:
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(export, "remember_release", fails)
    (two_sources / "norway.csv").write_text(
        HEADER + lines("no", "NO", 10).replace("NO Line 3,helpline", "NO Line 3,chat"), encoding="utf-8"
    )
    second = run(settings, LATER)
    assert second.held is None and (settings.exports_dir / "current").resolve().name == second.release_id
    monkeypatch.undo()
    compared = export.compared_in_warehouse
    seen: list[object] = []
    monkeypatch.setattr(export, "compared_in_warehouse", lambda *a: seen.append(compared(*a)) or seen[-1])
    (two_sources / "sweden.csv").write_text(
        HEADER + lines("se", "SE", 12).replace("SE Line 0,helpline", "SE Line 0,forum"), encoding="utf-8"
    )
    third = run(settings, LATER + (LATER - NOW))
    assert seen == [None]  # (the warehouse remembers the first release, not the second)
    changes = load(settings.exports_dir / "current" / "changes.json")
    assert third.release_id != second.release_id and changes["changed"] == [{"id": before["SE Line 0"]["id"], "fields": ["kind"]}]
