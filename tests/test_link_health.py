"""Link status from the check history (warehouse/sql/link_health.sql), the cache, and the curators' link report."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from curate import links_report
from curate import warehouse as wh
from curate.checking import check_source
from curate.links import LinkCheck
from curate.settings import LinkSettings
from curate.sources import SourceOptions

NOW = dt.datetime(2026, 11, 25, 3, 0)
DAY = dt.timedelta(days=1)
CSV = (
    "record_id,name,kind,url,chat_url,phone,country\n"
    "w,Web Only,forum,https://web.example/,,,GB\n"
    "c,Web And Chat,chat,https://both.example/,https://both.example/chat,,GB\n"
    "p,Moved Line,helpline,http://moved.example/help,,020 7946 0001,GB\n"
)
WEB, BOTH, CHAT, MOVED = "https://web.example", "https://both.example", "https://both.example/chat", "http://moved.example/help"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A warehouse holding the staged rows of CSV (built once; each test gets a copy)."""
    path = tmp_path_factory.mktemp("staged") / "w.duckdb"
    c = wh.connect(path)
    data = CSV.encode()
    r = check_source(data, "src.csv", "src", SourceOptions(), NOW.date())
    assert r.usable and r.rows_rejected == 0, r.problems
    wh.replace_staged(c, "src", r.accepted, wh.store_version(c, "src", "src.csv", data, NOW), 0, r.rejected)
    c.close()
    return path


@pytest.fixture
def con(staged, tmp_path):
    shutil.copy(staged, tmp_path / "w.duckdb")
    c = wh.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def night(con, when: dt.datetime, results: dict[str, str | LinkCheck]) -> dict[str, tuple[str, dt.datetime | None]]:
    """Record one run's checks, rebuild core; returns name -> (link_status, link_checked_at)."""
    checks = [r if isinstance(r, LinkCheck) else LinkCheck(u, r, http_status={"broken": 404, "ok": 200}.get(r)) for u, r in results.items()]
    wh.record_link_checks(con, f"run-{when:%m%d%H}", when, checks)
    wh.build_core(con, when, 24)
    return {str(n): (str(s), t) for n, s, t in wh.run(con, "SELECT name, link_status, link_checked_at FROM core_listings")}  # type: ignore[misc]


def public(con) -> set[str]:
    return {str(r[0]) for r in wh.run(con, "SELECT name FROM out_listings")}


def test_unchecked_listings_are_unknown(con):
    wh.build_core(con, NOW, 24)
    assert {s for (s,) in wh.run(con, "SELECT link_status FROM core_listings")} == {"unknown"}


def test_dead_after_exactly_three_broken_in_a_row_then_left_out(con):
    statuses = [night(con, NOW + i * DAY, {WEB: "broken"})["Web Only"][0] for i in range(3)]
    assert statuses == ["degraded", "degraded", "dead"]
    assert "Web Only" not in public(con)
    assert wh.run(con, "SELECT name, reason FROM out_withheld") == [("Web Only", "links dead")]
    assert night(con, NOW + 3 * DAY, {WEB: "ok"})["Web Only"][0] == "alive"  # back as soon as it answers
    assert "Web Only" in public(con)


def test_a_success_resets_the_count_and_other_failures_only_degrade(con):
    results = ["broken", "broken", "ok", "broken", "broken", "blocked", "error", "broken", "broken"]
    statuses = [night(con, NOW + i * DAY, {WEB: r})["Web Only"][0] for i, r in enumerate(results)]
    assert statuses == ["degraded", "degraded", "alive", "degraded", "degraded", "degraded", "degraded", "degraded", "degraded"]
    assert night(con, NOW + 9 * DAY, {WEB: "redirect"})["Web Only"][0] == "alive"


def test_skipped_results_never_change_a_status(con):
    assert night(con, NOW, {WEB: "ok"})["Web Only"] == ("alive", NOW)
    for i in range(1, 5):  # offline nights: skipped, the status and when it was last checked stay
        assert night(con, NOW + i * DAY, {WEB: "skipped"})["Web Only"] == ("alive", NOW)
    night(con, NOW + 5 * DAY, {WEB: "broken"})
    night(con, NOW + 6 * DAY, {WEB: "broken"})
    night(con, NOW + 7 * DAY, {WEB: "skipped"})
    assert night(con, NOW + 8 * DAY, {WEB: "broken"})["Web Only"][0] == "dead"  # three judged broken in a row


def test_a_listing_is_dead_only_when_every_link_is_dead(con):
    for i in range(3):
        got = night(con, NOW + i * DAY, {BOTH: "broken", CHAT: "ok"})
    assert got["Web And Chat"][0] == "degraded" and "Web And Chat" in public(con)
    for i in range(3, 6):
        got = night(con, NOW + i * DAY, {CHAT: "broken"})
    assert got["Web And Chat"] == ("dead", NOW + 5 * DAY)
    assert "Web And Chat" not in public(con)


def test_the_dead_threshold_is_a_setting(con):
    for i in range(2):
        night(con, NOW + i * DAY, {WEB: "broken"})
    wh.build_core(con, NOW + 2 * DAY, 24, dead_after=2)
    assert wh.run(con, "SELECT link_status FROM core_listings WHERE name = 'Web Only'") == [("dead",)]


def test_links_due_skips_urls_judged_within_the_max_age(con):
    assert wh.links_due(con, NOW, 20) == ([MOVED, BOTH, CHAT, WEB], [])
    night(con, NOW, {WEB: "ok", BOTH: "broken", CHAT: "skipped"})
    due, cached = wh.links_due(con, NOW + dt.timedelta(hours=19), 20)
    assert cached == [BOTH, WEB] and due == [MOVED, CHAT]  # skipped is no answer: asked again
    assert wh.links_due(con, NOW + dt.timedelta(hours=21), 20) == ([MOVED, BOTH, CHAT, WEB], [])


def test_every_check_is_kept_with_its_evidence(con):
    check = LinkCheck(MOVED, "redirect", http_status=200, final_url="https://moved.example/help/", suggested_url="https://moved.example/help/",
                      redirects=[(301, MOVED)], method="HEAD", elapsed_ms=12)  # fmt: skip
    night(con, NOW, {MOVED: check})
    night(con, NOW + DAY, {MOVED: check})
    rows = wh.run(con, "SELECT run_id, url, checked_at, result, http_status, final_url, suggested_url, redirects, method, elapsed_ms "
                       "FROM link_checks ORDER BY seq")  # fmt: skip
    assert len(rows) == 2
    assert rows[0] == ("run-112503", MOVED, NOW, "redirect", 200, "https://moved.example/help/", "https://moved.example/help/",
                       [{"status": 301, "url": MOVED}], "HEAD", 12)  # fmt: skip


def test_link_changes_since_the_last_run(con):
    night(con, NOW, {WEB: "ok"})
    night(con, NOW + DAY, {WEB: "broken"})
    assert wh.run(con, "SELECT name, before, after FROM link_changes") == [("Web Only", "alive", "degraded")]
    night(con, NOW + 2 * DAY, {WEB: "broken"})
    assert wh.run(con, "SELECT count(*) FROM link_changes") == [(0,)]


def test_the_link_report_shows_evidence_and_proposals(con, tmp_path):
    for i in range(3):
        evidence = LinkCheck(WEB, "broken", http_status=404, final_url="https://web.example/gone", error="answered 404 Not Found")
        night(con, NOW + i * DAY, {WEB: evidence})
    moved = LinkCheck(MOVED, "redirect", http_status=200, final_url="https://moved.example/", suggested_url="https://moved.example/",
                      redirects=[(301, MOVED)])  # fmt: skip
    night(con, NOW + 3 * DAY, {MOVED: moved, BOTH: "broken"})
    data = wh.link_report_data(con)
    assert [d.name for d in data.dead_listings] == ["Web Only"]
    dead = data.dead_listings[0]
    assert dead.rows == ["src record w"]
    assert [(e.checked_at, e.http_status, e.final_url) for e in dead.links[WEB]] == [
        (NOW + i * DAY, 404, "https://web.example/gone") for i in (2, 1, 0)
    ]
    assert [(p.source, p.row, p.column, p.url, p.suggested) for p in data.proposals] == [("src", 4, "url", MOVED, "https://moved.example/")]
    assert [(f.url, f.status, f.broken_streak) for f in data.failing] == [(BOTH, "degraded", 1)]
    path = links_report.write_links_report(tmp_path / "reports", data, NOW + 3 * DAY, None, LinkSettings())
    html = path.read_text(encoding="utf-8")
    assert "Web Only" in html and "2026-11-27 03:00 UTC" in html and "404" in html and "https://web.example/gone" in html
    assert "https://moved.example/" in html and "leads to the front page" in html  # /help -> / : the page may be gone
    assert "--skip-links" in html


def test_front_page_hint():
    assert links_report.front_page_only("https://a.example/help/chat", "https://a.example/")
    assert not links_report.front_page_only("http://a.example/", "https://a.example/")
    assert not links_report.front_page_only("https://a.example/old", "https://a.example/new")
