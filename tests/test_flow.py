"""Integration: the whole flow on fixture sources under prefect_test_harness, checked against CONTRACT section 5."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from curate import export
from curate.settings import Settings
from tests.conftest import REPO

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)
ID = re.compile(r"^lst_[0-9a-f]{12}$")


def settings_for(tmp_path: Path, sources: Path) -> Settings:
    return Settings(sources_dir=sources, exports_dir=tmp_path / "exports", warehouse_file=tmp_path / "wh" / "directory.duckdb")


def run(settings: Settings, now: dt.datetime):
    from flows.curate_run import curate_run

    return curate_run(settings, now=now)


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def release_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def first_run(prefect_harness, fixture_sources, tmp_path):
    settings = settings_for(tmp_path, fixture_sources)
    return settings, run(settings, NOW)


def test_run_summary_counts_rows_listings_and_locations(first_run):
    _, summary = first_run
    assert (summary.rows_read, summary.rows_accepted, summary.rows_rejected) == (10, 9, 1)
    assert summary.listings == 7  # two pairs merged
    assert summary.public_listings == 6  # "Old Record" was verified more than 24 months ago
    assert summary.locations == 6 and summary.countries == 3
    assert {s["source"]: s["rejected"] for s in summary.sources} == {"alpha_lines": 1, "beta_lines": 0}


def test_current_points_at_a_complete_release(first_run):
    settings, summary = first_run
    current = settings.exports_dir / "current"
    assert current.is_symlink()
    assert current.resolve() == (settings.exports_dir / "releases" / summary.release_id).resolve()
    assert not list((settings.exports_dir / "releases").glob(".partial-*"))
    manifest = load(current / "manifest.json")
    assert manifest["release_id"] == summary.release_id and manifest["previous_release"] is None
    assert manifest["counts"]["listings"] == 6
    files = release_files(current)
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(files) - {"manifest.json"}
    for entry in manifest["files"]:
        data = files[entry["path"]]
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_duplicates_merge_with_every_source_row(first_run):
    settings, _ = first_run
    listings = {x["name"]: x for x in load(settings.exports_dir / "current" / "listings.json")}
    harbour = listings["Harbour Listening Line"]  # verified row wins the name over "The Harbour Line"
    assert harbour["sources"] == [{"source": "alpha_lines", "record_id": "a1"}, {"source": "beta_lines", "record_id": "2"}]
    assert harbour["phone"] == "+442079460001" and harbour["always_open"] is True and harbour["hours"] == "24/7"
    assert harbour["topics"] == ["general", "grief", "suicide"]
    forum = listings["Global Peer Forum"]
    assert forum["areas"] == ["WW"] and len(forum["sources"]) == 2
    assert listings["Kvarteret Helpline"]["phone"] == "116123" and listings["Kvarteret Helpline"]["areas"] == ["NO"]
    assert listings["Desk Line"]["areas"] == ["GB-SCT"]
    assert "Old Record" not in listings and "Broken Row" not in listings
    assert all(ID.match(x["id"]) for x in listings.values())
    assert all(x["link_status"] == "unknown" for x in listings.values())


def test_listings_follow_the_schema_and_order(first_run):
    settings, _ = first_run
    current = settings.exports_dir / "current"
    schema = load(current / "schema" / "listing.schema.json")
    listings = load(current / "listings.json")
    for listing in listings:
        jsonschema.validate(listing, schema, format_checker=jsonschema.FormatChecker())
    keys = [(x["kind"], x["name"], x["id"]) for x in listings]
    assert keys == sorted(keys)


def test_location_files_follow_the_inclusion_rule(first_run):
    settings, _ = first_run
    current = settings.exports_dir / "current"
    index = load(current / "index.json")
    codes = [loc["code"] for loc in index["locations"]]
    assert codes == ["WW", "CA", "GB", "GB-SCT", "NO", "NO-03"]
    names = {x["id"]: x["name"] for x in load(current / "listings.json")}
    expected = {
        "WW": {"Global Peer Forum"},
        "CA": {"Maple Text Line", "Global Peer Forum"},
        "GB": {"Harbour Listening Line", "Desk Line", "Global Peer Forum"},
        "GB-SCT": {"Desk Line", "Harbour Listening Line", "Global Peer Forum"},
        "NO": {"Fjord Night Chat", "Kvarteret Helpline", "Global Peer Forum"},
        "NO-03": {"Fjord Night Chat", "Kvarteret Helpline", "Global Peer Forum"},
    }
    for loc in index["locations"]:
        doc = load(current / loc["json"])
        got = {names[x["id"]] for x in doc["listings"]}
        assert got == expected[loc["code"]], loc["code"]
        assert doc["count"] == loc["count"] == len(got)
        assert loc["type"] == ("worldwide" if loc["code"] == "WW" else "region" if "-" in loc["code"] else "country")
        assert loc["parent"] == (loc["code"].split("-")[0] if "-" in loc["code"] else None)
        csv_text = (current / loc["csv"]).read_text(encoding="utf-8")
        assert csv_text.splitlines()[0].startswith("id,name,kind,description,url,phone,sms")
        assert len(csv_text.strip().splitlines()) == len(got) + 1
        assert (current / loc["csv"]).read_bytes() == export.csv_bytes(doc["listings"])  # written by DuckDB as csv_records does
    assert {loc["code"]: loc["name"] for loc in index["locations"]}["NO-03"] == "Oslo"


def test_curator_reports_name_the_rejected_row(first_run):
    settings, _ = first_run
    html = (settings.reports_dir / "alpha_lines.html").read_text(encoding="utf-8")
    assert "Row 6" in html and "javascript:alert(1)" in html and "What to do" in html
    rejected = (settings.reports_dir / "alpha_lines.rejected.csv").read_text(encoding="utf-8").splitlines()
    assert rejected[0].startswith("record_id,name,kind") and rejected[0].endswith(",problems")
    assert len(rejected) == 2 and rejected[1].startswith("a5,Broken Row") and "row 6, url" in rejected[1]
    assert len((settings.reports_dir / "beta_lines.rejected.csv").read_text(encoding="utf-8").splitlines()) == 1


def test_the_raw_rows_a_run_keeps_for_its_reports_give_the_reports_every_row_gives(tmp_path):
    """Once a source is in the warehouse the run keeps, of its raw rows, only those a problem names
    (``_let_go_of_rows``); the reports written from them are byte for byte those written from every row, and
    ``write_reports`` then lets go of the rest."""
    from curate.checking import check_source
    from curate.ingest import Ingested
    from curate.sources import SourceOptions
    from flows.curate_run import _let_go_of_rows, write_reports
    from tests.test_twenty_mistakes import GOOD, HEADER, MISTAKES, TODAY, write

    rows = [{"record_id": f"fine{n}", **GOOD, "Navn": f"Fine Line {n}"} for n in range(5)]
    rows += [{"record_id": rid, **GOOD, "Navn": f"Line {rid}", **mistake} for rid, (mistake, *_) in MISTAKES.items()]
    rows += [{"record_id": "warned", **GOOD, "Navn": "Warned Line", "Verifisert": "2020-01-01"}]  # (verified long ago)
    rows += [{"record_id": f"late{n}", **GOOD, "Navn": f"Late Line {n}"} for n in range(5)]
    result = check_source(write(rows, HEADER), "mistakes.csv", "mistakes", SourceOptions(), TODAY)
    named = {p.row for p in result.problems if p.row is not None}
    assert any(p.severity == "warning" and p.row is not None for p in result.problems)  # warned rows are named too
    assert len(named) < len(result.raw) and result.accepted is not None and len(result.accepted) > 0

    everything = Settings(sources_dir=tmp_path / "all", exports_dir=tmp_path / "x", warehouse_file=tmp_path / "w.duckdb")
    write_reports.fn(everything, [Ingested(dataclasses.replace(result, problems=list(result.problems)), b"data")])
    item = Ingested(result, b"data")
    _let_go_of_rows([item])
    assert item.data == b"" and list(result.accepted.columns) == [] and result.rejected is None  # (its count of rows kept)
    assert (result.usable, result.rows_accepted) == (True, 11)
    assert sorted(int(r) for r in result.raw["_row"]) == sorted(named)  # only the named rows are held
    kept = Settings(sources_dir=tmp_path / "kept", exports_dir=tmp_path / "x", warehouse_file=tmp_path / "w.duckdb")
    write_reports.fn(kept, [item])
    for name in ("mistakes.html", "mistakes.rejected.csv"):
        assert (kept.reports_dir / name).read_bytes() == (everything.reports_dir / name).read_bytes(), name
    assert "Line m04" in (kept.reports_dir / "mistakes.rejected.csv").read_text(encoding="utf-8")
    assert result.raw is None and result.problems == [] and result.previous_problems is None  # let go of, once written


def test_the_curator_reports_are_written_while_entity_resolution_runs(prefect_harness, fixture_sources, tmp_path, monkeypatch):
    """The reports (Python, one core) are written in a thread beside the warehouse's commit of the sources and
    ``build_core`` (DuckDB), not before them: a report begins before the load has ended, then waits here for entity
    resolution to start.  Written one after the other, it would wait in vain."""
    import threading

    import flows.curate_run as cr

    core_started, loaded, seen = threading.Event(), threading.Event(), []
    build_core, load_warehouse, write_reports = cr.build_core.fn, cr.load_warehouse.fn, cr.report.write_reports

    def core(*args, **kwargs):
        core_started.set()
        return build_core(*args, **kwargs)

    def load(*args, **kwargs):
        try:
            return load_warehouse(*args, **kwargs)
        finally:
            loaded.set()

    def reports(*args, **kwargs):
        seen.append((loaded.is_set(), core_started.wait(timeout=20)))
        return write_reports(*args, **kwargs)

    monkeypatch.setattr(cr.build_core, "fn", core)
    monkeypatch.setattr(cr.load_warehouse, "fn", load)
    monkeypatch.setattr(cr.report, "write_reports", reports)
    settings = settings_for(tmp_path, fixture_sources)
    summary = run(settings, NOW)
    # both fixture sources' reports, the first begun before the load had ended, both once entity resolution had begun
    assert len(seen) == 2 and seen[0] == (False, True) and seen[1][1]
    assert summary.release_id is not None
    assert "a5,Broken Row" in (settings.reports_dir / "alpha_lines.rejected.csv").read_text(encoding="utf-8")


def test_each_source_is_loaded_while_the_next_ones_are_checked(prefect_harness, fixture_sources, tmp_path, monkeypatch):
    """``load_warehouse`` stages a source's rows once ``STAGED_AT_ONCE`` rows wait (here, every source), while the
    next sources are checked: beta_lines' check waits here until alpha_lines' rows are staged.  Loaded once every
    check had ended, it would wait in vain."""
    import threading

    import flows.curate_run as cr
    from curate import warehouse as wh

    alpha_staged, waited, staged = threading.Event(), [], []
    ingest, replace_staged_many = cr.ingest, wh.replace_staged_many

    def checked(source, *args, **kwargs):
        if source.source_id == "beta_lines":
            waited.append(alpha_staged.wait(timeout=20))
        return ingest(source, *args, **kwargs)

    def staging(con, sources):
        staged.append([s.source_id for s in sources])
        got = replace_staged_many(con, sources)
        if any(s.source_id == "alpha_lines" for s in sources):
            alpha_staged.set()
        return got

    monkeypatch.setattr(cr, "ingest", checked)
    monkeypatch.setattr(wh, "replace_staged_many", staging)
    monkeypatch.setattr(wh, "STAGED_AT_ONCE", 1)
    summary = run(settings_for(tmp_path, fixture_sources), NOW)
    assert waited == [True] and staged == [["alpha_lines"], ["beta_lines"]]
    assert summary.release_id is not None and (summary.rows_accepted, summary.listings) == (9, 7)  # (as in one go)


def test_a_source_whose_check_fails_leaves_the_warehouse_as_it_was(first_run, monkeypatch):
    """The sources are loaded in one transaction as their checks end: when a later source's check raises (a bug), the
    run fails and the warehouse keeps the last run's rows, reads and problems of the sources loaded before it (the
    next run parses them again); kept are the versions read, as every version is, and the run, shown as failed."""
    import duckdb

    import flows.curate_run as cr
    from curate import status

    settings, _ = first_run
    tables = ("stg_listings", "source_reads", "problems", '"raw_alpha_lines"')

    def contents() -> dict[str, list[tuple]]:
        con = duckdb.connect(str(settings.warehouse_file), read_only=True)
        try:
            return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}  # type: ignore[arg-type]
        finally:
            con.close()

    before = contents()
    alpha = settings.sources_dir / "alpha_lines.csv"
    alpha.write_bytes(alpha.read_bytes().replace(b"Fjord Night Chat", b"Fjord Evening Chat"))
    (settings.sources_dir / "beta_lines.tsv").write_bytes((settings.sources_dir / "beta_lines.tsv").read_bytes() + b"\n")
    whole = cr.ingest

    def ingest(source, *args, **kwargs):
        if source.source_id == "beta_lines":
            raise RuntimeError("a bug in checking beta_lines")
        return whole(source, *args, **kwargs)

    monkeypatch.setattr(cr, "ingest", ingest)
    monkeypatch.setattr(cr.ingest_source, "retries", 0)
    with pytest.raises(RuntimeError, match="a bug in checking beta_lines"):
        run(settings, LATER)
    assert contents() == before  # (alpha_lines was staged, then rolled back)
    con = duckdb.connect(str(settings.warehouse_file), read_only=True)
    try:
        kept = {r[0] for r in con.execute("SELECT sha256 FROM source_files").fetchall()}
    finally:
        con.close()
    assert hashlib.sha256(alpha.read_bytes()).hexdigest() in kept  # the new version is kept all the same
    assert [r.outcome for r in status.last_runs(settings.warehouse_file, 5, running=False)[0]] == ["failed (did not finish)", "published"]
    monkeypatch.setattr(cr, "ingest", whole)
    again = run(settings, LATER + dt.timedelta(hours=1))
    assert {x["source"] for x in again.sources if not x["unchanged"]} == {"alpha_lines", "beta_lines"}
    assert "Fjord Evening Chat" in {x["name"] for x in load(settings.exports_dir / "current" / "listings.json")}


def test_unchanged_input_gives_byte_identical_release(first_run):
    settings, first = first_run
    before = release_files(settings.exports_dir / "current")
    second = run(settings, LATER)
    after = release_files(settings.exports_dir / "current")
    assert second.release_id != first.release_id
    assert set(before) == set(after)
    assert {p for p in before if before[p] != after[p]} == {"manifest.json"}
    assert load(settings.exports_dir / "current" / "manifest.json")["previous_release"] == first.release_id


def test_a_rerun_parses_in_a_task_only_the_sources_that_changed(first_run, monkeypatch):
    """The sources unchanged since their last parse are found in one task and not parsed again; a new file, and one
    whose report is gone, are each read in a task of their own, and the release is what parsing them all gives."""
    import flows.curate_run as cr

    settings, first = first_run
    parsed: list[str] = []
    whole = cr.ingest
    monkeypatch.setattr(cr, "ingest", lambda source, *a, **kw: parsed.append(source.source_id) or whole(source, *a, **kw))
    (settings.sources_dir / "gamma.csv").write_text("name,kind,url,country\nKvarteret,helpline,https://kvarteret.example/,NO\n")
    report = next(settings.reports_dir.glob("alpha*.html"))
    report.unlink()
    second = run(settings, LATER)
    assert sorted(parsed) == ["alpha_lines", "gamma"]
    lines = {x["source"]: x for x in second.sources}
    assert set(lines) == {x["source"] for x in first.sources} | {"gamma"}
    assert [k for k, x in lines.items() if not x["unchanged"]] == sorted(parsed) and report.is_file()
    assert all(lines[k] == {**x, "unchanged": True} for k, x in ((x["source"], x) for x in first.sources) if k not in parsed)
    files = release_files(settings.exports_dir / "current")
    parsed.clear()
    for p in settings.reports_dir.glob("*.html"):  # every source parsed again: the same release
        p.unlink()
    run(settings, LATER + dt.timedelta(days=1))  # (another day: not the task cache of the day before)
    assert sorted(parsed) == sorted(lines)
    again = release_files(settings.exports_dir / "current")
    assert {p for p in files if files[p] != again[p]} <= {"manifest.json", "changes.json"} and set(files) == set(again)


def test_ids_stay_put_when_a_source_adds_a_member(first_run):
    settings, _ = first_run
    before = {x["name"]: x for x in load(settings.exports_dir / "current" / "listings.json")}
    (settings.sources_dir / "gamma.csv").write_text(
        "name,kind,url,country\nKvarteret,helpline,https://kvarteret.example/,NO\n", encoding="utf-8"
    )
    run(settings, LATER)
    after = {x["name"]: x for x in load(settings.exports_dir / "current" / "listings.json")}
    kvarteret = after["Kvarteret Helpline"]
    assert kvarteret["id"] == before["Kvarteret Helpline"]["id"]
    assert {"source": "gamma", "record_id": "2"} in kvarteret["sources"]
    assert kvarteret["first_seen"] == before["Kvarteret Helpline"]["first_seen"] == "2026-11-25T03:00:00Z"
    assert kvarteret["updated_at"] == "2026-11-26T03:00:00Z"
    unchanged = after["Desk Line"]
    assert unchanged["id"] == before["Desk Line"]["id"] and unchanged["updated_at"] == "2026-11-25T03:00:00Z"


def test_an_unreadable_replacement_keeps_the_last_good_rows(first_run):
    settings, _ = first_run
    (settings.sources_dir / "beta_lines.tsv").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    summary = run(settings, LATER)
    names = {x["name"] for x in load(settings.exports_dir / "current" / "listings.json")}
    assert {"Kvarteret Helpline", "Desk Line"} <= names
    assert any("beta_lines.tsv" in m and "kept" in m for m in summary.messages)


def test_a_removed_source_withdraws_its_listings(first_run):
    settings, _ = first_run
    (settings.sources_dir / "beta_lines.tsv").unlink()
    summary = run(dataclasses.replace(settings, allow_mass_removal=True), LATER)  # 2 of 6 listings: a mass removal
    names = {x["name"] for x in load(settings.exports_dir / "current" / "listings.json")}
    assert "Kvarteret Helpline" not in names and "Harbour Listening Line" in names
    assert any("beta_lines" in m and "withdrawn" in m for m in summary.messages)


def test_every_source_version_is_kept_by_sha256(first_run):
    import duckdb

    settings, _ = first_run
    path = settings.sources_dir / "alpha_lines.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Fjord Night Chat", b"Fjord Evening Chat"))
    run(settings, LATER)
    con = duckdb.connect(str(settings.warehouse_file), read_only=True)
    try:
        stored = {r[0]: bytes(r[1]) for r in con.execute("SELECT sha256, bytes FROM source_files").fetchall()}
        raw_names = con.execute('SELECT "name" FROM "raw_alpha_lines" ORDER BY _row').fetchall()
    finally:
        con.close()
    assert stored[hashlib.sha256(original).hexdigest()] == original
    assert stored[hashlib.sha256(path.read_bytes()).hexdigest()] == path.read_bytes()
    assert ("Fjord Evening Chat",) in raw_names


def test_shipped_starter_sources_meet_the_foundation_bar(prefect_harness, tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    for p in (REPO / "sources").iterdir():
        if p.is_file():
            shutil.copy(p, sources / p.name)
    settings = settings_for(tmp_path, sources)
    summary = run(settings, NOW)
    assert len(summary.sources) >= 3 and summary.rows_read >= 150
    assert summary.rows_rejected == 0, [s for s in summary.sources if s["rejected"]]
    listings = load(settings.exports_dir / "current" / "listings.json")
    countries = {a.split("-")[0] for x in listings for a in x["areas"]} - {"WW"}
    assert len(countries) >= 25
    assert any("WW" in x["areas"] for x in listings)
    assert sum(1 for x in listings if len({s["source"] for s in x["sources"]}) > 1) >= 10
    checker = REPO.parent / "shared" / "tools" / "check_release.py"
    if checker.is_file():  # the contract checker beside the repo (CI has it)
        done = subprocess.run(
            [sys.executable, str(checker), str(settings.exports_dir / "current"), "--min-countries", "25"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout


def test_cli_run_prints_the_summary_and_exits_0(prefect_harness, fixture_sources, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    args = ["run", "--sources", str(fixture_sources), "--exports", str(tmp_path / "ex"), "--warehouse", str(tmp_path / "w.duckdb")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "10 rows read, 9 accepted, 1 rejected; 7 listings (6 public) in 6 locations (3 countries)" in result.output
    assert (tmp_path / "ex" / "current" / "listings.json").is_file()


def test_cli_run_that_cannot_publish_exits_1(prefect_harness, fixture_sources, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    blocker = tmp_path / "ex"
    blocker.write_text("a file where the exports folder should be")
    args = ["run", "--sources", str(fixture_sources), "--exports", str(blocker), "--warehouse", str(tmp_path / "w.duckdb")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "The run failed" in result.output
