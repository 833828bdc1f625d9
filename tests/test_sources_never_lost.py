"""Issue 3 end to end: URL sources, every format, unusable inputs, and never losing yesterday's data."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest

from curate.settings import Settings
from tests.conftest import REPO
from tests.loopback import reply, serving

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
HSDS_EXAMPLES = REPO.parent / "shared" / "reference" / "hsds-3.0" / "examples-csv"
REMOTE_V1 = b"record_id,name,kind,url,country\nr1,Remote Line,helpline,https://remote.example,GB\nr2,Remote Chat,chat,https://chat.remote.example,GB\n"


def day(n: int) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


def settings_for(tmp_path: Path, sources: Path, **kw) -> Settings:
    return Settings(sources_dir=sources, exports_dir=tmp_path / "exports", warehouse_file=tmp_path / "wh" / "d.duckdb",
                    fetch_retries=1, fetch_backoff=0.01, read_timeout=2.0, connect_timeout=2.0, **kw)  # fmt: skip


def run(settings: Settings, now: dt.datetime):
    from flows.curate_run import curate_run

    return curate_run(settings, now=now)


def published(settings: Settings) -> dict[str, dict]:
    listings = json.loads((settings.exports_dir / "current" / "listings.json").read_text(encoding="utf-8"))
    return {x["name"]: x for x in listings}


def report(settings: Settings, source: str) -> str:
    return (settings.reports_dir / f"{source}.html").read_text(encoding="utf-8")


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_file), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "local.csv").write_text(
        "record_id,name,kind,url,country\nl1,Local Line,helpline,https://local.example,NO\n", encoding="utf-8"
    )
    return folder


def test_a_url_source_that_goes_down_keeps_yesterdays_listings(prefect_harness, sources, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serving() as server:
        mode = {"now": "ok"}

        @server.route("/list.csv")
        def serve(h, n):
            if mode["now"] == "ok":
                if h.headers.get("If-None-Match") == '"v1"':
                    return reply(h, 304, headers={"ETag": '"v1"'})
                return reply(h, 200, REMOTE_V1, {"ETag": '"v1"'})
            if mode["now"] == "down":
                return reply(h, 503, b"down")
            if mode["now"] == "html":
                return reply(h, 200, b"<!doctype html><html><body>Log in</body></html>", {"Content-Type": "text/html"})
            h.send_response(200)  # cut short: announces more than it sends
            h.send_header("Content-Type", "text/csv")
            h.send_header("Content-Length", "5000")
            h.end_headers()
            h.wfile.write(REMOTE_V1[:40])
            h.close_connection = True

        (sources / "sources.toml").write_text(
            f'[sources.remote]\nurl = "{server.url("/list.csv")}"\nlicence = "CC-BY-4.0"\nattribution = "Remote Example Org"\n',
            encoding="utf-8",
        )
        settings = settings_for(tmp_path, sources)
        first = run(settings, day(0))
        assert {"Remote Line", "Remote Chat", "Local Line"} <= set(published(settings))
        assert [s["rows"] for s in first.sources if s["source"] == "remote"] == [2]
        package = json.loads((settings.exports_dir / "current" / "datapackage.json").read_text())
        assert {"title": "Remote Example Org", "source_id": "remote", "path": server.url("/list.csv"), "license": "CC-BY-4.0"} in package[
            "sources"
        ]
        assert {"name": "CC-BY-4.0"} in package["licenses"]

        run(settings, day(1))  # unchanged upstream: one conditional GET answered 304
        assert server.seen["/list.csv"][-1].get("If-None-Match") == '"v1"'
        assert server.counts["/list.csv"] == 2
        assert {"Remote Line", "Remote Chat"} <= set(published(settings))

        for n, failure in enumerate(("down", "html", "cut"), start=2):
            mode["now"] = failure
            summary = run(settings, day(n))
            assert {"Remote Line", "Remote Chat", "Local Line"} <= set(published(settings)), failure
            assert any("remote" in m or "list.csv" in m for m in summary.messages), (failure, summary.messages)
            assert "listings of its last good download are kept" in report(settings, "remote"), failure
        outcomes = [r[0] for r in query(settings, "SELECT outcome FROM source_fetches WHERE source_id = 'remote' ORDER BY fetched_at")]
        assert outcomes == ["new", "not_modified", "failed", "failed", "failed"]
        assert (
            query(settings, "SELECT bytes FROM source_files WHERE sha256 = ?", [hashlib.sha256(REMOTE_V1).hexdigest()])[0][0] == REMOTE_V1
        )


def test_a_url_source_that_never_answered_is_an_error_and_the_run_goes_on(prefect_harness, sources, tmp_path):
    (sources / "sources.toml").write_text('[sources.nowhere]\nurl = "http://127.0.0.1:9/list.csv"\n', encoding="utf-8")
    settings = settings_for(tmp_path, sources)
    summary = run(settings, day(0))
    assert set(published(settings)) == {"Local Line"}
    assert [(s["source"], s["usable"]) for s in summary.sources] == [("local", True), ("nowhere", False)]
    assert "The download from http://127.0.0.1:9/list.csv failed" in report(settings, "nowhere")


def test_a_row_turned_invalid_keeps_its_last_valid_version(prefect_harness, tmp_path):
    folder = tmp_path / "sources"
    folder.mkdir()
    path = folder / "lines.csv"
    settings = settings_for(tmp_path, folder)
    path.write_text(
        "record_id,name,kind,url,country\n1,Line One,helpline,https://one.example,GB\n2,Line Two,helpline,https://two.example,GB\n"
    )
    run(settings, day(0))
    path.write_text("record_id,name,kind,url,country\n1,Line One,helpline,javascript:typo,GB\n2,Line Two,helpline,https://two.example,GB\n")
    run(settings, day(1))
    assert published(settings)["Line One"]["url"] == "https://one.example"
    html = report(settings, "lines")
    assert "keeps showing its last valid version" in html and "javascript:typo" in html
    assert "1,Line One,helpline,javascript:typo" in (settings.reports_dir / "lines.rejected.csv").read_text()
    run(settings, day(2))  # still broken: still kept
    assert published(settings)["Line One"]["url"] == "https://one.example"
    path.write_text(
        "record_id,name,kind,url,country\n1,Line One,helpline,https://one-fixed.example,GB\n2,Line Two,helpline,https://two.example,GB\n"
    )
    run(settings, day(3))
    assert published(settings)["Line One"]["url"] == "https://one-fixed.example"
    path.write_text("record_id,name,kind,url,country\n2,Line Two,helpline,https://two.example,GB\n")
    run(dataclasses.replace(settings, allow_mass_removal=True), day(4))  # deleted on purpose: gone (1 of 2 is a mass removal)
    assert set(published(settings)) == {"Line Two"}


def test_without_ids_rows_are_matched_by_name_and_country(prefect_harness, tmp_path):
    folder = tmp_path / "sources"
    folder.mkdir()
    path = folder / "noids.csv"
    settings = settings_for(tmp_path, folder)
    path.write_text("name,kind,url,country\nLine One,helpline,https://one.example,GB\nLine Two,helpline,https://two.example,GB\n")
    run(settings, day(0))
    path.write_text("name,kind,url,country\nLine Zero,helpline,https://zero.example,GB\nLine Two,helpline,https://two.example,GB\n"
                    "Line One,helpline,not a url,GB\n")  # fmt: skip
    run(settings, day(1))
    assert {n: x["url"] for n, x in published(settings).items()} == {
        "Line Zero": "https://zero.example", "Line Two": "https://two.example", "Line One": "https://one.example"}  # fmt: skip


def test_unchanged_sources_are_not_parsed_again(prefect_harness, sources, tmp_path):
    settings = settings_for(tmp_path, sources)
    run(settings, NOW)
    before = (settings.exports_dir / "current" / "listings.json").read_bytes()
    summary = run(settings, NOW + dt.timedelta(days=1))  # the next night: same bytes, nothing to parse
    assert [s["unchanged"] for s in summary.sources] == [True] and summary.rows_read == 1
    statuses = [r[0] for r in query(settings, "SELECT status FROM source_reads ORDER BY read_at")]
    assert statuses == ["ok", "unchanged"]
    assert (settings.exports_dir / "current" / "listings.json").read_bytes() == before
    (settings.reports_dir / "local.html").unlink()  # a missing report is written again
    run(settings, NOW + dt.timedelta(days=2))
    assert (settings.reports_dir / "local.html").is_file()
    assert query(settings, "SELECT status FROM source_reads ORDER BY read_at DESC LIMIT 1") == [("ok",)]


def test_unusable_replacement_keeps_the_previous_version_and_says_why(prefect_harness, sources, tmp_path):
    settings = settings_for(tmp_path, sources, max_source_bytes=2000)
    run(settings, day(0))
    original = (sources / "local.csv").read_bytes()
    cases = {
        "empty": b"",
        "binary": b"\x00\x01\x02\x03" * 100,
        "too large": b"name,kind,url,country\n" + b"x" * 3000 + b",helpline,https://x.example,NO\n",
        "no name column": b"foo,bar\n1,2\n",
    }
    for label, data in cases.items():
        (sources / "local.csv").write_bytes(data)
        summary = run(settings, day(1))
        assert "Local Line" in published(settings), label
        assert any("local.csv" in m and "last good rows are kept" in m for m in summary.messages), label
        assert "About the whole file" in report(settings, "local"), label
    stored = {r[0] for r in query(settings, "SELECT sha256 FROM source_files")}
    assert hashlib.sha256(original).hexdigest() in stored
    assert hashlib.sha256(cases["binary"]).hexdigest() in stored  # what was read is kept, even when unusable


def test_bad_file_names_are_refused_and_never_used_as_paths(prefect_harness, sources, tmp_path):
    for name in ("My List.csv", "hjelp æøå.csv", "a..b.csv"):
        (sources / name).write_text("name,kind,url,country\nX,helpline,https://x.example,NO\n", encoding="utf-8")
    settings = settings_for(tmp_path, sources)
    summary = run(settings, day(0))
    assert set(published(settings)) == {"Local Line"}
    assert sorted(s["source"] for s in summary.sources if not s["usable"]) == ["a..b", "hjelp æøå", "my list"]
    reports = sorted(p.name for p in settings.reports_dir.iterdir())
    assert all(p.parent == settings.reports_dir for p in settings.reports_dir.iterdir())
    assert {"refused_my_list.html", "refused_a_b.html", "refused_hjelp.html"} <= set(reports)
    assert not (tmp_path / "..html").exists() and not (settings.reports_dir.parent / ".html").exists()


def xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Notes"
    first.append(["This sheet is only notes"])
    helplines = book.create_sheet("Helplines")
    helplines.append(["Navn", "Type", "Telefon", "Land"])
    helplines.append(["Sheet Line", "helpline", 4721000001, "Norge"])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_every_format_and_option(prefect_harness, tmp_path):
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "book.xlsx").write_bytes(xlsx_bytes())
    services = [{"title": "Json Forum", "contact": {"website": "https://forum.example"}, "languages": ["en", "de"], "kind": "forum"}]
    (folder / "nested.json").write_text(json.dumps({"services": services}))
    (folder / "mapped.csv").write_text("Org,Web\nMapped Line,https://mapped.example\n", encoding="utf-8")
    (folder / "off.csv").write_text("name,kind,url,country\nDisabled Line,helpline,https://off.example,NO\n", encoding="utf-8")
    if HSDS_EXAMPLES.is_dir():
        shutil.copytree(HSDS_EXAMPLES, folder / "hsds_example")
        addresses = folder / "hsds_example" / "addresses.csv"
        rows = list(csv.DictReader(addresses.open(encoding="utf-8")))
        for row in rows:
            row["state_province"] = ""  # the example's 'MyState' is not a real region
        with addresses.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (folder / "sources.toml").write_text(
        '[sources.book]\nsheet = "Helplines"\n'
        '[sources.nested]\ncountry = "WW"\ncolumns = { "title" = "name", "contact.website" = "url" }\n'
        '[sources.mapped]\ncountry = "SE"\nkind = "helpline"\ncolumns = { "Org" = "name", "Web" = "url" }\n'
        "[sources.off]\nenabled = false\n"
        '[sources.hsds_example]\nkind = "helpline"\n',
        encoding="utf-8",
    )
    settings = settings_for(tmp_path, folder)
    summary = run(settings, day(0))
    listings = published(settings)
    assert listings["Sheet Line"]["phone"] == "+4721000001" and listings["Sheet Line"]["areas"] == ["NO"]
    assert listings["Json Forum"]["url"] == "https://forum.example" and listings["Json Forum"]["languages"] == ["de", "en"]
    assert listings["Mapped Line"]["areas"] == ["SE"] and listings["Mapped Line"]["kind"] == "helpline"
    assert "Disabled Line" not in listings and "off" not in {s["source"] for s in summary.sources}
    if HSDS_EXAMPLES.is_dir():
        hsds = listings["Community Counselling"]
        assert (hsds["url"], hsds["email"], hsds["areas"], hsds["languages"]) == (
            "http://example.com/counselling", "email@example.com", ["US"], ["ur"])  # fmt: skip
        assert hsds["sources"] == [{"source": "hsds_example", "record_id": "ac148810-d857-441c-9679-408f346de14b"}]


@pytest.mark.skipif(not HSDS_EXAMPLES.is_dir(), reason="the HSDS reference examples live in ../shared")
def test_the_hsds_reference_example_is_mapped_and_its_made_up_region_named():
    from curate.checking import check_source
    from curate.ingest import package_zip
    from curate.sources import SourceOptions

    r = check_source(package_zip(HSDS_EXAMPLES), "hsds_example", "hsds_example", SourceOptions(kind="helpline"), NOW.date(), "hsds")
    assert (r.rows_read, r.rows_accepted) == (1, 0)
    assert {(p.rule, p.column, p.value) for p in r.problems} == {
        ("region_code", "region", "MyState"),
        ("region_in_country", "region", "MyState"),
    }


def hsds_tables(blank_region: bool = True) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in HSDS_EXAMPLES.glob("*.csv")}
    if blank_region:
        files["addresses.csv"] = files["addresses.csv"].replace(b"MyState", b"")
    return files


@pytest.mark.skipif(not HSDS_EXAMPLES.is_dir(), reason="the HSDS reference examples live in ../shared")
def test_a_hsds_package_published_as_datapackage_json(monkeypatch):
    from curate import fetch as f
    from curate.checking import check_source
    from curate.ingest import fetch_package
    from curate.read_hsds import hsds_files_from_zip
    from curate.sources import SourceOptions

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    tables = hsds_tables()
    descriptor = {"name": "example", "resources": [{"name": n.removesuffix(".csv"), "path": n} for n in sorted(tables)]}
    limits = f.FetchLimits(retries=0, backoff=0.01, read_timeout=2.0)
    with serving() as server:
        server.routes["/pkg/datapackage.json"] = lambda h, n: reply(
            h, 200, json.dumps(descriptor).encode(), {"Content-Type": "application/json"}
        )
        for name, data in tables.items():
            server.routes[f"/pkg/{name}"] = lambda h, n, data=data: reply(h, 200, data)
        server.routes["/evil/datapackage.json"] = lambda h, n: reply(h, 200, b'{"resources": [{"path": "../secret.csv"}]}')
        session = f.make_session(limits)
        got = fetch_package(session, server.url("/pkg/datapackage.json"), limits)
        evil = fetch_package(session, server.url("/evil/datapackage.json"), limits)
    assert got.outcome == "new" and got.data is not None
    files = hsds_files_from_zip(got.data)
    assert isinstance(files, dict) and files["services.csv"] == tables["services.csv"]
    r = check_source(got.data, "remote_hsds", "remote_hsds", SourceOptions(kind="helpline"), NOW.date(), "hsds")
    assert r.rows_accepted == 1 and r.accepted.iloc[0]["name"] == "Community Counselling"
    assert evil.outcome == "failed" and "not a relative path" in evil.error


def test_curate_check_reads_xlsx_and_hsds_folders(tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    (tmp_path / "book.xlsx").write_bytes(xlsx_bytes())
    (tmp_path / "sources.toml").write_text('[sources.book]\nsheet = "Helplines"\n[sources.pkg]\nkind = "helpline"\n', encoding="utf-8")
    args = ["check", str(tmp_path / "book.xlsx"), "--format", "json", "--sources", str(tmp_path)]
    if HSDS_EXAMPLES.is_dir():
        (tmp_path / "pkg").mkdir()
        for name, data in hsds_tables(blank_region=False).items():
            (tmp_path / "pkg" / name).write_bytes(data)
        args.insert(2, str(tmp_path / "pkg"))
    result = CliRunner().invoke(app, args)
    files = {Path(f["file"]).name: f for f in json.loads(result.stdout)["files"]}
    assert (files["book.xlsx"]["rows"], files["book.xlsx"]["valid_rows"]) == (1, 1)
    if HSDS_EXAMPLES.is_dir():
        assert result.exit_code == 1  # the example's made-up region
        assert next((p["row"], p["column"], p["value"]) for p in files["pkg"]["problems"]) == (2, "region", "MyState")


def test_the_report_says_what_changed_since_the_last_run(prefect_harness, tmp_path):
    folder = tmp_path / "sources"
    folder.mkdir()
    path = folder / "lines.csv"
    settings = settings_for(tmp_path, folder)
    path.write_text("record_id,name,kind,url,country\n1,One,helpline,javascript:x,GB\n2,Two,helpline,https://two.example,Narnia\n")
    run(settings, day(0))
    assert "first time this file was checked" in report(settings, "lines")
    path.write_text("record_id,name,kind,url,country\n1,One,helpline,https://one.example,GB\n2,Two,helpline,https://two.example,Narnia\n"
                    "3,Three,hepline,https://three.example,GB\n")  # fmt: skip
    run(settings, day(1))
    html = report(settings, "lines")
    assert "<b>1</b> new problems, <b>1</b> fixed, <b>1</b> still open" in html
    assert "javascript:x" in html.split("Fixed since the last run")[1]


def test_an_unexpected_error_on_one_file_does_not_stop_the_run(prefect_harness, sources, tmp_path, monkeypatch):
    import curate.ingest

    settings = settings_for(tmp_path, sources)
    run(settings, day(0))
    (sources / "other.csv").write_text("name,kind,url,country\nOther Line,helpline,https://other.example,SE\n", encoding="utf-8")
    real = curate.ingest.check_source

    def flaky(data, file, *args, **kwargs):
        if file == "local.csv":
            raise ValueError("a bug met on this file")
        return real(data, file, *args, **kwargs)

    monkeypatch.setattr(curate.ingest, "check_source", flaky)
    (sources / "local.csv").write_text("record_id,name,kind,url,country\nl1,Local Line,helpline,https://local2.example,NO\n")
    summary = run(settings, day(1))
    listings = published(settings)
    assert listings["Local Line"]["url"] == "https://local.example"  # its last good rows are kept
    assert "Other Line" in listings
    assert any("local.csv" in m and "unexpected error" in m for m in summary.messages)
