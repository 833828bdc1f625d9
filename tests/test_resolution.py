"""Entity resolution (curate/resolve.py, warehouse/sql/er_*.sql): domain rules, overrides, review queue, ids, chain guard."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from curate import resolve as er
from curate import warehouse as wh
from tests.test_core import NOW, load

HEADER = "record_id,name,kind,phone,sms,url,email,country"


@pytest.fixture
def con(tmp_path):
    c = wh.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def rows(*lines: str) -> str:
    return HEADER + "\n" + "\n".join(lines) + "\n"


def groups(con) -> set[frozenset[str]]:
    """The listings as sets of row keys."""
    found = wh.run(con, "SELECT list_transform(sources, lambda s: s.source || '/' || s.record_id) FROM core_listings")
    return {frozenset(r[0]) for r in found}  # type: ignore[call-overload]


def build(con, overrides: er.Overrides | None = None, params: er.ResolveParams | None = None, days: int = 0) -> set[frozenset[str]]:
    wh.build_core(con, NOW + dt.timedelta(days=days), 24, overrides, params)
    return groups(con)


def ids(con) -> dict[frozenset[str], str]:
    found = wh.run(con, "SELECT list_transform(sources, lambda s: s.source || '/' || s.record_id), id FROM core_listings")
    return {frozenset(r[0]): str(r[1]) for r in found}  # type: ignore[call-overload]


# --- blocking and scoring ---------------------------------------------------------------------------------


def test_phone_notations_and_url_variants_of_one_service_merge(con):
    load(con, "a", rows("1,Kalamo Helpline,helpline,+47 22 40 00 40,,https://kalamo.example/,,NO"))
    load(con, "b", rows("1,KALAMO HELPLINE AS,helpline,0047 22400040,,http://www.kalamo.example/index.html?utm_source=x,,Norge"))
    load(con, "c", rows("1,The Kalamo Helpline,helpline,22 40 00 40,,,,NO", "2,Other Place,chat,,,https://other.example,,NO"))
    assert build(con) == {frozenset({"a/1", "b/1", "c/1"}), frozenset({"c/2"})}


def test_shared_number_with_a_different_name_is_only_a_possible_duplicate(con):
    load(con, "a", rows("1,Kalamo Helpline,helpline,+4722400040,,,,NO"))
    load(con, "b", rows("1,Vendor Switchboard,helpline,+4722400040,,,,NO"))
    assert build(con) == {frozenset({"a/1"}), frozenset({"b/1"})}
    (pair,) = er.duplicates(con)[0]
    assert {pair["a_name"], pair["b_name"]} == {"Kalamo Helpline", "Vendor Switchboard"} and pair["phone_cmp"] == "same"


# --- domain rules: each with the case that must not merge and the one that must -----------------------------


def test_one_short_number_in_three_countries_is_three_services(con):
    load(con, "a", rows("1,Mental Line,helpline,116 123,,,,GB", "2,Kriselinja,helpline,116 123,,,,NO"))
    load(con, "b", rows("1,Listening Ireland,helpline,116 123,,,,IE", "2,Mental Line,helpline,116123,,,,GB"))
    assert build(con) == {frozenset({"a/1", "b/2"}), frozenset({"a/2"}), frozenset({"b/1"})}


def test_short_number_in_two_countries_stays_apart_even_with_one_name_and_site(con):
    # the same charity name and web site in GB and IE, each country's line on 116 123: two listings
    load(con, "a", rows("1,Kalamo,helpline,116 123,,https://kalamo.example,,GB"))
    load(con, "b", rows("1,Kalamo,helpline,116 123,,https://kalamo.example,,IE"))
    assert build(con) == {frozenset({"a/1"}), frozenset({"b/1"})}


def test_chapters_with_one_domain_stay_apart_but_the_same_chapter_merges(con):
    load(con, "a", rows("1,Kalamo Oslo,helpline,+4722000001,,https://kalamo.example/oslo,,NO",
                        "2,Kalamo Bergen,helpline,+4755000002,,https://kalamo.example/bergen,,NO"))  # fmt: skip
    load(con, "b", rows("1,Kalamo Oslo,helpline,,,https://www.kalamo.example/oslo/,,NO",
                        "2,Kalamo Tromso,support_group,,,https://kalamo.example/tromso,,NO"))  # fmt: skip
    assert build(con) == {frozenset({"a/1", "b/1"}), frozenset({"a/2"}), frozenset({"b/2"})}


@pytest.mark.parametrize("name", ["Helpline", "Support group", "Forum", "Mental Health Chat"])
def test_generic_names_never_match_on_the_name_alone(con, name):
    load(con, "a", rows(f"1,{name},helpline,+4722000001,,,,NO"))
    load(con, "b", rows(f"1,{name},helpline,,,https://one.example,,NO"))
    load(con, "c", rows(f"1,{name},helpline,+4722000001,,,,NO"))  # ... but a shared number does
    assert build(con) == {frozenset({"a/1", "c/1"}), frozenset({"b/1"})}


def test_a_distinctive_name_alone_does_match_inside_one_country_only(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO", "2,Vendoria,forum,,,https://vendoria.example,,NO"))
    load(con, "b", rows("1,Kalamo,helpline,,,https://kalamo.example,,NO", "2,Vendoria,forum,,,https://elsewhere.example,,SE"))
    assert build(con) == {frozenset({"a/1", "b/1"}), frozenset({"a/2"}), frozenset({"b/2"})}


def test_a_worldwide_community_listed_under_many_countries_is_one_listing_serving_all(con):
    load(con, "a", rows("1,Tembrik Community,online_community,,,https://tembrik.example,,GB",
                        "2,Tembrik Community,online_community,,,https://tembrik.example/,,NO"))  # fmt: skip
    load(
        con,
        "b",
        rows(
            "1,Tembrik,online_community,,,http://www.tembrik.example,,DE",
            "2,Tembrik Community,forum,,,https://tembrik.example/join,hi@tembrik.example,WW",
        ),
    )
    load(
        con,
        "c",
        rows(
            "1,Other Forum Group,forum,,,https://forum.example/c/other,,DE",
            "2,Vendoria Circle,forum,,,https://forum.example/c/vendoria,,DE",
        ),
    )
    found = build(con)
    assert found == {frozenset({"a/1", "a/2", "b/1", "b/2"}), frozenset({"c/1"}), frozenset({"c/2"})}
    areas = wh.run(con, "SELECT areas FROM core_listings WHERE list_contains(list_transform(sources, lambda s: s.source), 'a')")
    assert areas == [(["DE", "GB", "NO", "WW"],)]


# --- survivorship ---------------------------------------------------------------------------------------------


def test_survivorship_priority_then_verified_then_completeness_and_every_row_in_sources(con):
    head = "record_id,name,kind,phone,url,description,hours,country,verified_at\n"
    load(con, "low", head + "1,Kalamo Low,helpline,+4722000001,https://kalamo.example,Low text.,24/7,NO,2026-06-01\n", priority=0)
    load(con, "old", head + "1,Kalamo Old,helpline,+4722000001,,,,NO,2025-01-01\n", priority=5)
    load(con, "new", head + "1,Kalamo New,helpline,+4722000001,,,,NO,2026-01-01\n", priority=5)
    load(con, "full", head + "1,Kalamo Full,helpline,+4722000001,,Full text.,,NO,2026-01-01\n", priority=5)
    build(con)
    ((name, description, url, hours, verified, sources),) = wh.run(
        con, "SELECT name, description, url, hours, verified_at, sources FROM core_listings"
    )
    # priority 5 beats 0; among those, 2026-01-01 beats 2025-01-01; of the two verified that day, the more complete wins
    assert name == "Kalamo Full" and description == "Full text."
    # a field no better source has comes from the next best; the newest verification date is kept
    assert url == "https://kalamo.example" and hours == "24/7" and verified == dt.date(2026, 6, 1)
    assert sources == [{"source": s, "record_id": "1"} for s in ("full", "low", "new", "old")]


# --- stable ids -----------------------------------------------------------------------------------------------


def test_an_id_stays_when_members_join_and_leave(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO"))
    build(con)
    (first,) = ids(con).values()
    load(con, "b", rows("1,Kalamo Helpline,helpline,+4722000001,,https://kalamo.example,,NO"))
    assert ids(con) and set(ids(con).values()) == {first}
    assert build(con, days=1) == {frozenset({"a/1", "b/1"})} and ids(con)[frozenset({"a/1", "b/1"})] == first
    load(con, "a", rows("2,Something Else,chat,,,https://else.example,,NO"))  # a/1 deleted from its source
    build(con, days=2)
    assert ids(con)[frozenset({"b/1"})] == first


def test_when_listings_merge_the_oldest_id_wins_and_the_other_is_never_reused(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO"))
    build(con)
    old = ids(con)[frozenset({"a/1"})]
    load(con, "b", rows("1,Vendor Line,chat,,,https://vendor.example,,NO"))
    build(con, days=1)
    young = ids(con)[frozenset({"b/1"})]
    # a curator says they are one service: one listing, the older id
    same = er.parse_overrides('same = [\n  ["a/1", "b/1"],\n]\n')
    assert build(con, same, days=2) == {frozenset({"a/1", "b/1"})}
    assert ids(con)[frozenset({"a/1", "b/1"})] == old
    # ... and when they split again, the younger id is not handed to an unrelated new listing
    load(con, "c", rows("1,Third Service,chat,,,https://third.example,,NO"))
    build(con, days=3)
    assert ids(con)[frozenset({"a/1"})] == old and young not in {ids(con)[frozenset({"c/1"})]}


def test_the_part_that_splits_off_gets_a_new_id_even_when_named_by_the_same_row(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,https://kalamo.example,,NO"))
    load(con, "b", rows("1,Kalamo,helpline,+4722000001,,,,NO", "2,Kalamo,helpline,,,https://kalamo.example,,NO"))
    build(con)
    (first,) = ids(con).values()
    load(con, "a", rows("1,Vendor Line,chat,,,https://vendor.example,,NO"))
    build(con, days=1)
    after = ids(con)
    assert after[frozenset({"b/1", "b/2"})] == first and after[frozenset({"a/1"})] != first


# --- overrides ------------------------------------------------------------------------------------------------


def test_overrides_same_and_different_are_always_obeyed(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO", "2,Vendor Line,chat,,,https://vendor.example,,NO"))
    load(con, "b", rows("1,Kalamo,helpline,+4722000001,,https://kalamo.example,,NO", "2,Totally Other,forum,,,https://other.example,,SE"))
    assert build(con) == {frozenset({"a/1", "b/1"}), frozenset({"a/2"}), frozenset({"b/2"})}
    text = 'same = [\n  ["a/2", "b/2"],   # one service\n]\ndifferent = [\n  ["a/1", "b/1"],\n]\n'
    assert build(con, er.parse_overrides(text), days=1) == {frozenset({"a/1"}), frozenset({"b/1"}), frozenset({"a/2", "b/2"})}


def test_overrides_by_listing_id(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO"))
    load(con, "b", rows("1,Vendor Line,chat,,,https://vendor.example,,NO"))
    build(con)
    listing = ids(con)
    text = f'same = [["{listing[frozenset({"a/1"})]}", "{listing[frozenset({"b/1"})]}"]]\n'
    assert build(con, er.parse_overrides(text), days=1) == {frozenset({"a/1", "b/1"})}


def test_a_different_override_splits_a_chain_that_would_join_them(con):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,https://kalamo.example,,NO"))
    load(con, "b", rows("1,Kalamo,helpline,+4722000001,,,,NO"))
    load(con, "c", rows("1,Kalamo,helpline,,,https://kalamo.example,,NO"))
    assert build(con) == {frozenset({"a/1", "b/1", "c/1"})}
    found = build(con, er.parse_overrides('different = [["b/1", "c/1"]]'), days=1)
    assert len(found) == 2 and not any({"b/1", "c/1"} <= g for g in found)


def test_bad_override_lines_give_clear_messages_and_good_lines_still_count():
    text = 'same = [\n  ["a/1", "b/1"],\n  ["a/1"],\n  ["not a reference", "b/2"],\n  ["a/3", "a/3"],\n]\nsometimes = [["a/1", "b/1"]]\n'
    parsed = er.parse_overrides(text)
    assert [(o.kind, o.a, o.b, o.line) for o in parsed.pairs] == [("same", "a/1", "b/1", 2)]
    assert len(parsed.problems) == 4
    assert "line 3" in parsed.problems[0] and "pair of two texts" in parsed.problems[0]
    assert "line 4" in parsed.problems[1] and "'not a reference'" in parsed.problems[1]
    assert "line 5" in parsed.problems[2] and "itself" in parsed.problems[2]
    assert "'sometimes'" in parsed.problems[3]


def test_an_override_file_that_is_not_toml_keeps_its_readable_lines():
    text = 'same = [\n  ["a/1", "b/1"],\n  ["a/2", "b/2"\n  ["a/3", "b/3"],   # note\n]\ndifferent = [\n  ["c/1", "d/1"],\n]\n'
    parsed = er.parse_overrides(text, "overrides.toml")
    assert [(o.kind, o.a, o.b) for o in parsed.pairs] == [("same", "a/1", "b/1"), ("same", "a/3", "b/3"), ("different", "c/1", "d/1")]
    assert "not valid TOML" in parsed.problems[0] and any("line 3" in p for p in parsed.problems[1:])


def test_overrides_naming_rows_no_source_has_are_reported_not_fatal(con, tmp_path):
    load(con, "a", rows("1,Kalamo,helpline,+4722000001,,,,NO"))
    (tmp_path / "overrides.toml").write_text('different = [\n  ["a/1", "gone/7"],\n]\n', encoding="utf-8")
    assert build(con, er.load_overrides(tmp_path / "overrides.toml")) == {frozenset({"a/1"})}
    (problem,) = er.duplicates(con)[2]
    assert "line 2" in problem and "'gone/7'" in problem
    assert er.load_overrides(tmp_path / "missing.toml") == er.Overrides()
    (tmp_path / "overrides.toml").write_bytes(b"\xff\xfe\x00bad")
    assert "cannot be read" in er.load_overrides(tmp_path / "overrides.toml").problems[0]


def test_the_shipped_example_overrides_file_parses_cleanly():
    from tests.conftest import REPO

    parsed = er.load_overrides(REPO / "sources" / "overrides.toml")
    assert parsed.problems == [] and parsed.pairs == []


# --- review queue ---------------------------------------------------------------------------------------------


def test_review_page_lists_pairs_below_the_threshold_with_both_override_lines(con, tmp_path):
    load(con, "a", rows('1,"Kalamo <b>Line</b>",helpline,+4722000001,,,,NO', "2,Tembrik,chat,,,https://tembrik.example,,NO"))
    load(con, "b", rows('1,"Kalamo, ""Oslo""",chat,,,https://kalamo.example,,NO', "2,Tembrik,chat,,,https://tembrik.example,,NO"))
    build(con)
    pairs, total, _ = er.duplicates(con)
    assert total == 1 and (pairs[0]["a_record"], pairs[0]["b_record"]) == ("1", "1")  # b/2 merged with a/2: not in the queue
    page = er.write_duplicates_report(tmp_path / "reports", con).read_text(encoding="utf-8")
    assert "<b>Line</b>" not in page and "Kalamo Line" in page  # staging removed the markup; the page escapes the rest
    assert "Kalamo, &quot;Oslo&quot;" in page
    line = er.override_line("a/1", "b/1")
    assert line == '["a/1", "b/1"],' and page.count("[&quot;a/1&quot;, &quot;b/1&quot;],") == 2
    assert "same = [" in page and "different = [" in page and "the names are nearly the same" in page
    # settling the pair takes it out of the queue
    build(con, er.parse_overrides(f"different = [\n{line}\n]\n"), days=1)
    assert er.duplicates(con)[1] == 0
    assert "No possible duplicates" in er.render_duplicates_html([], [])


def test_the_review_page_escapes_what_curators_wrote():
    pair = {"a_source": "a", "a_record": '1"><script>x()</script>', "b_source": "b", "b_record": "2", "a_name": "<img src=x>",
            "b_name": "B & C", "score": 5, "why": "below the threshold", "name_cmp": "close"}  # fmt: skip
    page = er.render_duplicates_html([pair], ["overrides.toml line 3: <script>"])
    assert "<script>" not in page and "<img" not in page and "&lt;img src=x&gt;" in page and "B &amp; C" in page


# --- the chain guard ------------------------------------------------------------------------------------------


def test_chain_guard_splits_a_chain_whose_ends_conflict(con):
    # GB line and IE line on 116 123, each also listed without its number; all four share name and site
    load(con, "a", rows("1,Kalamo,helpline,116 123,,https://kalamo.example,,GB", "2,Kalamo,helpline,,,https://kalamo.example,,GB"))
    load(con, "b", rows("1,Kalamo,helpline,,,https://kalamo.example,,IE", "2,Kalamo,helpline,116 123,,https://kalamo.example,,IE"))
    assert build(con) == {frozenset({"a/1", "a/2"}), frozenset({"b/1", "b/2"})}
    cut = {(p["a_record"], p["b_source"], p["b_record"], p["why"]) for p in er.duplicates(con)[0]}
    assert ("2", "b", "1", "kept apart by the chain guard") in cut


def test_chain_guard_splits_a_cluster_larger_than_the_limit_at_its_weakest_links(con):
    # a chain a/1 - b/1 - a/2 - b/2 - ... - a/6: b/i has a/i's number and, as its SMS, a/(i+1)'s;
    # a/3 - b/3 also share a web address and an email (the strongest link)
    web = ",https://k.example,k@k.example"
    load(con, "a", rows(*[f"{i},Kalamo {i},helpline,+47220000{i:02d},{web if i == 3 else ',,'},NO" for i in range(1, 7)]))
    load(con, "b", rows(*[f"{i},Kalamo {i},helpline,+47220000{i:02d},+47220000{i + 1:02d}{web if i == 3 else ',,'},NO"
                          for i in range(1, 6)]))  # fmt: skip
    together = build(con)
    assert len(together) == 1 and len(next(iter(together))) == 11
    split = build(con, params=er.ResolveParams(max_cluster_size=4), days=1)
    assert len(split) > 1 and all(len(g) <= 4 for g in split) and any({"a/3", "b/3"} <= g for g in split)
    assert {p["why"] for p in er.duplicates(con)[0]} >= {"kept apart by the chain guard"}


def test_connected_components_match_a_union_find(con):
    rnd = random.Random(3)
    edges = {(rnd.randrange(300), rnd.randrange(300)) for _ in range(260)} | {(i, i + 1) for i in range(400, 460)}
    wh.run(con, "CREATE OR REPLACE TEMP TABLE er_cc_edges (a INTEGER, b INTEGER)")
    con.executemany("INSERT INTO er_cc_edges VALUES (?, ?)", [list(e) for e in edges if e[0] != e[1]])
    er.connected_components(con, wh.sections("er_clusters"))
    got = dict(wh.run(con, "SELECT node, comp FROM er_cc"))
    parent = {n: n for e in edges for n in e}

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        parent[max(find(a), find(b))] = min(find(a), find(b))
    expected = {n: find(n) for n in parent if any(n in e and e[0] != e[1] for e in edges)}
    assert got == expected


def test_registrable_domain_uses_the_bundled_public_suffix_list():
    assert er.registrable_domain("oslo.kalamo.co.uk") == "kalamo.co.uk"
    assert er.registrable_domain("someone.github.io") == "someone.github.io"
    assert er.registrable_domain("www.kalamo.example") == "kalamo.example"


# --- registrable domains, remembered between runs ---------------------------------------------------------------


def test_the_suffix_list_is_asked_about_each_host_once_across_runs(con, monkeypatch):
    """``host_domains`` keeps each host's registrable domain: a rerun asks the suffix list only about a host it has not
    met, forgets a host no source names any more, and asks again about them all under other rules; the domains are
    those the suffix list gives."""
    asked: list[str] = []
    answer = er.registrable_domain

    def counted(host: str) -> str:
        asked.append(host)
        return answer(host)

    monkeypatch.setattr(er, "registrable_domain", counted)
    load(con, "a", rows("1,Kalamo,helpline,,,https://oslo.kalamo.example.co.uk/a,,NO", "2,Other,chat,,,https://other.example,,NO"))
    build(con)
    assert sorted(asked) == ["oslo.kalamo.example.co.uk", "other.example"]
    memo = "SELECT host, domain FROM host_domains ORDER BY host"
    assert wh.run(con, memo) == [(h, answer(h)) for h in sorted(asked)]
    assert answer("oslo.kalamo.example.co.uk") == "example.co.uk"  # (the suffix list's answer, not the host)
    asked.clear()
    build(con, days=1)
    assert asked == []  # nothing new: not asked again
    load(con, "a", rows("1,Kalamo,helpline,,,https://oslo.kalamo.example.co.uk/a,,NO", "2,Third,chat,,,https://third.example,,NO"))
    assert build(con, days=2) == {frozenset({"a/1"}), frozenset({"a/2"})}
    assert asked == ["third.example"]
    assert wh.run(con, memo) == [("oslo.kalamo.example.co.uk", "example.co.uk"), ("third.example", "third.example")]
    asked.clear()
    monkeypatch.setattr(er, "DOMAIN_RULES", er.DOMAIN_RULES + " (other)")
    build(con, days=3)
    assert sorted(asked) == ["oslo.kalamo.example.co.uk", "third.example"]
    assert wh.run(con, "SELECT DISTINCT rules FROM host_domains") == [(er.DOMAIN_RULES,)]
    assert wh.run(con, "SELECT count(*) FROM er_hosts")[0][0] == 2


def test_same_overrides_that_a_different_one_keeps_apart_leave_every_other_listing_whole(con):
    # a/1 = a/2 = a/3 by "same" lines, a/1 <> a/3 by a "different" line: the chain guard finds nothing to cut
    load(con, "a", rows("1,Alpha Line,helpline,+4722000001,,,,NO", "2,Beta Forum,forum,,,https://beta.example,,SE",
                        "3,Gamma Chat,chat,,,https://gamma.example,,DK"))  # fmt: skip
    load(
        con,
        "b",
        rows(
            "1,Delta Line,helpline,+4722000009,,https://delta.example,,NO", "2,Delta Line,helpline,+4722000009,,https://delta.example,,NO"
        ),
    )
    text = 'same = [["a/1", "a/2"], ["a/2", "a/3"]]\ndifferent = [["a/1", "a/3"]]\n'
    assert build(con, er.parse_overrides(text)) == {frozenset({"a/1", "a/2", "a/3"}), frozenset({"b/1", "b/2"})}
    assert wh.run(con, "SELECT count(*), count(DISTINCT row_key) FROM er_clusters") == [(5, 5)]
    # the other listing has each member once (kept twice before: its sources listed twice, member_count 4)
    assert wh.run(con, "SELECT member_count, len(sources) FROM core_listings WHERE name = 'Delta Line'") == [(2, 2)]
    assert any("the same pairs win" in str(m) for (m,) in wh.run(con, "SELECT message FROM override_problems"))


def _guard_tables(con, seed: int, forced: float) -> None:
    """A random graph of matches (``forced``: the share forced by "same" lines) and cannot-links, clustered as resolve
    clusters it before the guard."""
    rnd = random.Random(seed)
    edges = {}
    for _ in range(700):
        a, b = sorted(rnd.sample(range(300), 2))
        edges[(a, b)] = (rnd.randrange(7, 14), rnd.random() < forced)
    wh.run(con, "CREATE OR REPLACE TEMP TABLE er_edges (a INTEGER, b INTEGER, score INTEGER, forced BOOLEAN)")
    con.executemany("INSERT INTO er_edges VALUES (?, ?, ?, ?)", [[a, b, s, f] for (a, b), (s, f) in edges.items()])
    wh.run(con, "CREATE OR REPLACE TEMP TABLE er_cannot (a INTEGER, b INTEGER)")
    con.executemany("INSERT INTO er_cannot VALUES (?, ?)", [sorted(rnd.sample(range(300), 2)) for _ in range(40)])
    wh.run(con, "CREATE OR REPLACE TEMP TABLE er_params AS SELECT 12 AS max_cluster_size")
    cl = wh.sections("er_clusters")
    wh.run(con, cl["guard_start"])
    er.connected_components(con, cl)


@pytest.mark.parametrize(("seed", "forced"), [(1, 0.05), (2, 0.05), (3, 0.5)])
def test_the_guard_rounds_in_python_cut_and_keep_what_the_sql_rounds_do(con, monkeypatch, seed, forced):
    results = []
    for in_python in (-1, 10**9):  # every round in DuckDB; the rounds after the first in Python
        monkeypatch.setattr(er, "GUARD_IN_PYTHON", in_python)
        _guard_tables(con, seed, forced)
        out = er.Resolution()
        er.chain_guard(con, wh.sections("er_clusters"), er.ResolveParams(max_cluster_size=12), out)
        wh.run(con, wh.sections("er_clusters")["guard_done"])
        tables = [sorted(wh.run(con, f"SELECT * FROM {t}")) for t in ("er_kept", "er_split", "er_edges")]
        results.append((out.guard_rounds, out.links_cut, out.problems, tables))
    assert results[0] == results[1]
    rounds, cut, problems, (kept, split, _) = results[0]
    assert rounds > 3 and cut == len(split) > 3  # (the graph is one the guard works on for several rounds)
    assert (problems == [er.STUCK]) == (forced > 0.2)  # half the links forced: a round finds nothing it may cut
    assert len(kept) == len({n for n, _ in kept})  # each row kept once


def test_components_in_python_are_the_sql_ones(con):
    rnd = random.Random(5)
    edges = {tuple(sorted(rnd.sample(range(500), 2))) for _ in range(400)} | {(i, i + 1) for i in range(600, 700)}
    wh.run(con, "CREATE OR REPLACE TEMP TABLE er_cc_edges (a INTEGER, b INTEGER)")
    con.executemany("INSERT INTO er_cc_edges VALUES (?, ?)", [list(e) for e in edges])
    er.connected_components(con, wh.sections("er_clusters"))
    assert er.components(edges) == dict(wh.run(con, "SELECT node, comp FROM er_cc"))
