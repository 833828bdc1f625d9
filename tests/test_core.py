"""core_listings.sql: the first de-duplication, survivorship and stable ids, on tiny inline sources."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import strategies as st

from curate import warehouse as wh
from curate.checking import check_source
from curate.problems import Problem
from curate.sources import SourceOptions

NOW = dt.datetime(2026, 11, 25, 3, 0)


@pytest.fixture
def con(tmp_path):
    c = wh.connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def load(con, source: str, csv_text: str, priority: int = 0) -> None:
    data = csv_text.encode()
    r = check_source(data, f"{source}.csv", source, SourceOptions(priority=priority), NOW.date())
    assert r.usable and r.rows_rejected == 0, r.problems
    digest = wh.store_version(con, source, f"{source}.csv", data, NOW)
    wh.replace_staged(con, source, r.accepted, digest, priority, r.rejected)


def listings(con) -> dict[str, dict]:
    cols = ["id", "name", "phone", "url", "areas", "topics", "sources", "first_seen", "updated_at"]
    rows = wh.run(con, f"SELECT {', '.join(cols)} FROM core_listings")
    return {r[1]: dict(zip(cols, r, strict=True)) for r in rows}


def _table_of(path, rows: int) -> None:
    c = duckdb.connect(str(path))
    c.execute("CREATE TABLE t (k VARCHAR, v INTEGER)")
    c.execute("INSERT INTO t SELECT 'k' || i, i FROM range(?) r(i)", [rows])
    c.close()


def _share_after(path, delete: str, policy: bool) -> float:
    """``t``'s deleted share once ``delete`` ran on a connection (``policy``: with ``wh.compaction``) and closed."""
    c = duckdb.connect(str(path))
    if policy:
        wh.compaction(c, ("t",))
    c.execute(delete)
    c.close()
    c = duckdb.connect(str(path))
    try:
        return wh.deleted_share(c, "t")
    finally:
        c.close()


def test_checkpoints_compact_a_table_edited_in_place_only_once_a_tenth_of_its_rows_are_deleted_ones(tmp_path):
    """Rows deleted are kept stored (a checkpoint does not compact the table) while they are at most a tenth of the
    table's; past that, the next connection's checkpoints compact it as DuckDB does by default."""
    _table_of(tmp_path / "small.duckdb", 400)
    assert _share_after(tmp_path / "small.duckdb", "DELETE FROM t WHERE v < 20", policy=True) == pytest.approx(0.05)
    for policy in (True, False):  # three row groups of 123k rows, most of whose rows go: DuckDB compacts them into two
        _table_of(tmp_path / f"{policy}.duckdb", 250_000)
        share = _share_after(tmp_path / f"{policy}.duckdb", "DELETE FROM t WHERE v % 5 < 3", policy)
        assert share == (pytest.approx(0.6) if policy else 0.0)
    c = duckdb.connect(str(tmp_path / "True.duckdb"))
    assert wh.compaction(c, ("t",)) and c.execute("SELECT current_setting('max_vacuum_tasks')").fetchone() == (wh.VACUUM_TASKS,)
    c.close()
    fresh = wh.connect(tmp_path / "w.duckdb")  # (nothing deleted yet)
    assert fresh.execute("SELECT current_setting('max_vacuum_tasks')").fetchone() == (0,)
    fresh.close()


def test_rows_sharing_an_e164_phone_or_url_merge_transitively(con):
    load(con, "a", "name,kind,phone,url,country\nOne Line,helpline,020 7946 0001,,GB\nOne Line,chat,,https://two.example,GB\n")
    load(con, "b", "name,kind,phone,url,country\nOne Line Ltd,helpline,+44 20 7946 0001,http://www.two.example/,GB\n")
    counts = wh.build_core(con, NOW, 24)
    assert counts == {"staged_rows": 3, "listings": 1, "public_listings": 1}
    (merged,) = listings(con).values()
    assert [s["record_id"] for s in merged["sources"]] == ["2", "3", "2"]


def test_short_numbers_and_different_paths_do_not_merge(con):
    load(con, "a", "name,kind,phone,url,country\nLine GB,helpline,116 123,,GB\nForum A,forum,,https://host.example/a,WW\n")
    load(con, "b", "name,kind,phone,url,country\nLine IE,helpline,116 123,,IE\nForum B,forum,,https://host.example/b,WW\n")
    assert wh.build_core(con, NOW, 24)["listings"] == 4


def test_survivorship_prefers_priority_and_unites_lists(con):
    load(con, "low", "name,kind,phone,country,topics\nLow Name,helpline,020 7946 0001,GB,grief\n", priority=0)
    load(con, "high", "name,kind,phone,country,topics\nHigh Name,helpline,+442079460001,IE,anxiety\n", priority=10)
    wh.build_core(con, NOW, 24)
    (merged,) = listings(con).values()
    assert merged["name"] == "High Name" and merged["areas"] == ["GB", "IE"] and merged["topics"] == ["anxiety", "grief"]


def test_ids_are_stable_across_runs_and_fresh_warehouses(con, tmp_path):
    text = "name,kind,phone,country\nOne,helpline,020 7946 0001,GB\nTwo,helpline,020 7946 0002,GB\n"
    load(con, "a", text)
    wh.build_core(con, NOW, 24)
    first = {n: x["id"] for n, x in listings(con).items()}
    wh.build_core(con, NOW + dt.timedelta(days=1), 24)
    assert {n: x["id"] for n, x in listings(con).items()} == first
    other = wh.connect(tmp_path / "other.duckdb")
    load(other, "a", text)
    wh.build_core(other, NOW, 24)
    assert {n: x["id"] for n, x in listings(other).items()} == first
    other.close()


def test_a_split_keeps_the_id_with_the_bigger_part(con):
    load(con, "a", "record_id,name,kind,phone,url,country\n1,Kalamo,helpline,020 7946 0001,https://one.example,GB\n")
    load(
        con, "b", "record_id,name,kind,phone,url,country\n1,Kalamo,helpline,020 7946 0001,,GB\n2,Kalamo,helpline,,https://one.example,GB\n"
    )
    wh.build_core(con, NOW, 24)
    (merged,) = listings(con).values()
    # a/1 changes its name, phone and URL: b/1 and b/2 (still one service: same name, same country) keep the id
    load(con, "a", "record_id,name,kind,phone,url,country\n1,Other Service,helpline,020 7946 0009,https://other.example,GB\n")
    wh.build_core(con, NOW + dt.timedelta(days=1), 24)
    after = {n: x["id"] for n, x in listings(con).items()}
    assert len(after) == 2
    assert after["Kalamo"] == merged["id"] and after["Other Service"] != merged["id"]


def test_first_seen_and_updated_at_follow_content_changes(con):
    load(con, "a", "name,kind,phone,country\nOne,helpline,020 7946 0001,GB\n")
    wh.build_core(con, NOW, 24)
    load(con, "a", "name,kind,phone,country,description\nOne,helpline,020 7946 0001,GB,Now described.\n")
    wh.build_core(con, NOW + dt.timedelta(days=2), 24)
    (x,) = listings(con).values()
    assert x["first_seen"] == NOW and x["updated_at"] == NOW + dt.timedelta(days=2)


def test_out_listings_leaves_out_records_verified_over_24_months_ago(con):
    load(
        con,
        "a",
        "name,kind,phone,country,verified_at\nFresh,helpline,020 7946 0001,GB,2026-01-01\n"
        "Stale,helpline,020 7946 0002,GB,2024-11-24\nEdge,helpline,020 7946 0003,GB,2024-11-25\n",
    )
    assert wh.build_core(con, NOW, 24)["public_listings"] == 2
    withheld = wh.run(con, "SELECT name, reason FROM out_withheld")
    assert withheld == [("Stale", "not verified for over 24 months")]


def test_problems_are_kept_per_source_and_read_back_whole(con):
    """A source's problems of a run replace its last ones, every field as it was (nulls and numbers too)."""

    first = [Problem("alpha", "alpha.csv", 3, "name", "N/A", "error", "not_placeholder", "A name is missing.", "Write the name.")]
    first.append(Problem("alpha", "alpha.csv", None, None, None, "warning", "unknown_column", "A column is unknown.", "Rename it."))
    wh.record_problems(con, "run-1", "alpha", first)
    wh.record_problems(con, "run-1", "beta", [first[0]._replace(source="beta", file="beta.csv", row=7)])
    wh.run(con, "INSERT INTO source_reads (run_id, source_id, path, read_at, status) VALUES ('run-1', 'alpha', 'alpha.csv', now(), 'ok')")
    assert wh.previous_problems(con, "alpha") == first
    assert wh.run(con, "SELECT run_id, row FROM problems WHERE source = 'beta'") == [("run-1", 7)]
    wh.record_problems(con, "run-2", "alpha", first[1:])  # fixed the name: the old problem is gone
    assert wh.previous_problems(con, "alpha") == first[1:]
    assert wh.run(con, "SELECT count(*) FROM problems") == [(2,)]


@pytest.mark.parametrize("batch", [1, 50_000])
def test_public_listings_share_each_repeating_value_and_read_as_the_table_holds_them(con, monkeypatch, batch):
    """``export.public_listings``: the listings as out_listings holds them (dates and times in ISO form, ordered by
    kind, name, id), each repeating value (a vocabulary's term, a date, a code in a list, a source's name) one object."""
    from curate import export
    from schemas.fields import LISTING_FIELDS

    load(
        con,
        "a",
        "name,kind,phone,country,topics,languages\nB Line,helpline,020 7946 0001,GB,grief,en\nA Line,helpline,020 7946 0002,GB,grief,en\n",
    )
    load(con, "b", "name,kind,url,country,topics,languages\nForum,forum,https://f.example/,GB,grief,en\n")
    wh.build_core(con, NOW, 24)
    monkeypatch.setattr(export, "FETCHED", batch)  # read a listing at a time, or all at once
    got = export.public_listings(con)
    rows = wh.run(con, f"SELECT {', '.join(LISTING_FIELDS)} FROM out_listings")
    plain = [{k: export._iso(v) for k, v in zip(LISTING_FIELDS, r, strict=True)} for r in rows]
    assert got == sorted(plain, key=lambda x: (x["kind"], x["name"], x["id"])) and [x["name"] for x in got] == ["Forum", "A Line", "B Line"]
    first, *others = got
    for x in others:
        assert x["first_seen"] is first["first_seen"] and x["verified_at"] is first["verified_at"] and x["cost"] is first["cost"]
        assert x["areas"][0] is first["areas"][0] and x["topics"][0] is first["topics"][0] and x["languages"][0] is first["languages"][0]
    assert got[1]["sources"][0]["source"] is got[2]["sources"][0]["source"]
    assert isinstance(first["first_seen"], str) and first["first_seen"].endswith("Z")


def test_a_listing_of_one_row_is_that_row_as_grouping_would_make_it(con, monkeypatch):
    """``merged`` takes a listing of one row as it is (not grouped): every field of every listing is what grouping
    all of them gives, with empty, 'unknown' and missing values, lists to sort and unite, and listings of one row,
    two rows and three rows side by side."""
    head = "record_id,name,kind,description,url,phone,sms,chat_url,email,country,region,languages,topics,audience,moderation,cost,hours,"
    head += "verified_at\n"
    load(con, "a", head + "1,Alone,forum,,https://alone.example,,,,,WW,,\"nb, en\",\"grief, anxiety\",youth,unknown,unknown,,\n"
         "2,Pair,helpline,Talk,https://pair.example,020 7946 0001,,,,GB,,en,anxiety,,,free,24/7,2026-01-02\n"
         "3,Trio,chat,,https://trio.example,,,https://trio.example/chat,x@trio.example,NO,NO-03,,,,peer,,,\n"
         "4,Bare,support group,,,020 7946 0009,,,,SE,,,,,,,,\n")  # fmt: skip
    load(con, "b", head + "1,Pair Ltd,helpline,,,+442079460001,,,,IE,,\"en, ga\",grief,adults,none,,,2025-05-05\n"
         "2,Trio,chat,Chat room,https://trio.example/,,,,,NO,,nb,,,unknown,paid,evenings,\n")  # fmt: skip
    load(con, "c", head + "1,Trio,chat,,https://www.trio.example,,,,,WW,,,loneliness,,,,,\n", priority=5)
    cols = "id, name, kind, description, url, phone, sms, chat_url, email, areas, languages, topics, audience, moderation, cost, hours, "
    cols += "verified_at, sources, member_count"
    wh.build_core(con, NOW, 24)
    fast = sorted(wh.run(con, f"SELECT {cols} FROM core_listings"), key=str)
    assert sorted(x[-1] for x in fast) == [1, 1, 2, 3]  # one row, two rows and three rows side by side
    text = wh.sql("core_listings")
    assert "FROM sized WHERE n = 1" in text and "FROM sized m WHERE n > 1" in text
    grouped = text.replace("FROM sized WHERE n = 1", "FROM sized WHERE false").replace("FROM sized m WHERE n > 1", "FROM sized m")
    monkeypatch.setattr(wh, "sql", lambda name, sql=wh.sql: grouped if name == "core_listings" else sql(name))
    wh.build_core(con, NOW, 24)
    assert sorted(wh.run(con, f"SELECT {cols} FROM core_listings"), key=str) == fast


#: text a CSV cell could hold: formula starts (each of ``FORMULA_START``), "+" numbers (ASCII digits and others), what
#: the csv module quotes, and any other text
TRICKY = ["=1+1", "+4722400040", "+47 22", "+", "+٣٤", "+²", "-", "-1", "@x", "\tx", "\rx", " =x", "'x", "a,b", 'a"b', "a\nb",
          "a\r\nb", "\r", '"', "", " ", "None", "; ", "x:y", "ø", "日本"]  # fmt: skip
ANY_CHARACTER = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
CELL_TEXT = st.one_of(st.sampled_from(TRICKY), st.text(ANY_CHARACTER, max_size=8))


def _column(type_: str) -> st.SearchStrategy[object]:
    """Values of an ``out_listings`` column of DuckDB type ``type_`` (None among them)."""
    if type_ == "VARCHAR":
        return st.one_of(st.none(), CELL_TEXT)
    if type_ == "VARCHAR[]":
        return st.one_of(st.none(), st.lists(st.one_of(st.none(), CELL_TEXT), max_size=3))
    if type_ == "BOOLEAN":
        return st.one_of(st.none(), st.booleans())
    if type_ == "DATE":
        return st.one_of(st.none(), st.dates())
    if type_ == "TIMESTAMP":
        return st.one_of(st.none(), st.datetimes())
    assert type_.startswith("STRUCT") and type_.endswith("[]"), type_
    part = st.one_of(st.none(), CELL_TEXT)
    return st.one_of(st.none(), st.lists(st.one_of(st.none(), st.fixed_dictionaries({"source": part, "record_id": part})), max_size=3))


def test_duckdb_writes_the_csv_records_and_the_parquet_file_as_python_does(con, monkeypatch):
    """``export.warehouse_writers`` (DuckDB writes the location files' records and ``listings.parquet``) gives the
    bytes ``export.csv_records`` (the csv module) and ``export.parquet_bytes`` (pyarrow, from Python values) write of
    the same listings as ``public_listings`` reads them: every column of ``out_listings``' own types, with missing
    values, missing list elements, formula starts, "+" before ASCII and other digits, cells to quote, times with
    microseconds, before 1970 too, and names and ids to sort; for all of them, a subset, and a listing not in the
    table.  ``public_listings`` reads them (from Arrow columns) as DuckDB's own Python values give them."""
    from hypothesis import given, settings

    from curate import export
    from schemas.fields import LISTING_FIELDS

    load(con, "a", "name,kind,phone,country\nOne,helpline,020 7946 0001,GB\n")
    wh.build_core(con, NOW, 24)  # out_listings as the run makes it: its columns' types are the ones read
    types = dict(wh.run(con, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'out_listings'"))
    columns = {name: _column(str(types[name])) for name in LISTING_FIELDS if name != "id"}
    columns |= {"name": CELL_TEXT, "kind": CELL_TEXT}  # (a listing always has them: listings.parquet's schema says so)
    written = export.warehouse_writers(con)
    pure, fallbacks = export.parquet_bytes, []
    monkeypatch.setattr(export, "parquet_bytes", lambda listings: fallbacks.append(len(listings)) or pure(listings))
    monkeypatch.setattr(export, "ARROW_BATCH", 2)  # DuckDB's Arrow columns in parts and pages full,
    monkeypatch.setattr(export, "PARQUET_PAGE", 16)  # as at 200k listings

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.fixed_dictionaries(columns), max_size=6), st.data())
    def check(rows, data):
        wh.run(con, "DELETE FROM out_listings")
        for n, row in enumerate(rows):
            values = {**row, "id": f"lst_{n:012x}"} if n % 2 else {**row, "id": data.draw(CELL_TEXT) + f"#{n}"}  # ids to write too
            con.execute(f"INSERT INTO out_listings ({', '.join(LISTING_FIELDS)}) VALUES ({', '.join('?' * len(LISTING_FIELDS))})",
                        [values[name] for name in LISTING_FIELDS])  # fmt: skip
        got = export.public_listings(con)
        table = wh.run(con, f"SELECT {', '.join(LISTING_FIELDS)} FROM out_listings")  # (DuckDB's own Python values)
        plain = [{k: export._iso(v) for k, v in zip(LISTING_FIELDS, r, strict=True)} for r in table]
        assert got == sorted(plain, key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))  # read from Arrow as they are
        assert written.records(got) == export.csv_records(got)
        assert written.records(got[::2]) == export.csv_records(got[::2])
        stranger = {**dict.fromkeys(LISTING_FIELDS), "id": "lst_not_in_table", "name": "=X", "areas": ["NO"]}
        assert written.records([stranger, *got]) == export.csv_records([stranger, *got])
        fallbacks.clear()
        assert written.parquet(got) == pure(got) and fallbacks == []  # (by DuckDB, on a connection of its own)
        assert written.parquet(got[::-1]) == pure(got[::-1])  # (not the table's order: written from them)

    check()


def test_formula_class_is_formula_start():
    """The SQL records' formula guard (``FORMULA_CLASS``) takes the first characters ``csv_cell`` guards, and no other."""
    from curate import export

    con = duckdb.connect()
    for c in [*export.FORMULA_START, "a", "'", " ", "0", "\n", "#", "\\"]:
        matched = con.execute(f"SELECT regexp_matches(? || 'x', '^{export.FORMULA_CLASS}')", [c]).fetchall()[0][0]
        assert matched == (c in export.FORMULA_START), repr(c)


def _staged(con) -> list[tuple]:
    return wh.run(con, "SELECT * FROM stg_listings ORDER BY row_key")


def test_sources_staged_together_are_staged_as_one_after_the_other(tmp_path, monkeypatch):
    """``replace_staged_many`` (the run's load: rows of several sources in one statement, ``STAGED_AT_ONCE`` at a time)
    leaves the staged rows, and keeps the last valid versions of rows turned invalid, exactly as ``replace_staged``
    one source after the other does: each row under its own source, version and priority."""
    first = {
        "a": "record_id,name,kind,phone,country\n1,Alpha Line,helpline,020 7946 0001,GB\n2,Beta Line,helpline,020 7946 0002,GB\n",
        "b": "record_id,name,kind,url,country\n1,Gamma Forum,forum,https://gamma.example,WW\n2,Delta Chat,chat,https://delta.example,NO\n",
        "c": "record_id,name,kind,url,country\n7,Epsilon Group,support group,https://epsilon.example,SE\n",
    }
    second = {  # a's row 2 and b's row 1 turn invalid (their last valid versions are kept); c gets a row; d is new
        "a": "record_id,name,kind,phone,country\n1,Alpha Line,helpline,020 7946 0001,GB\n2,Beta Line,helpline,12,GB\n",
        "b": "record_id,name,kind,url,country\n1,Gamma Forum,forum,javascript:alert(1),WW\n2,Delta Chat,chat,https://delta.example,NO\n",
        "c": "record_id,name,kind,url,country\n7,Epsilon Group,support group,https://epsilon.example,SE\n8,Zeta Line,helpline,https://zeta.example,SE\n",
        "d": "record_id,name,kind,url,country\n1,Eta Forum,forum,https://eta.example,DK\n",
    }

    def staged(source: str, text: str, priority: int) -> wh.Staged:
        r = check_source(text.encode(), f"{source}.csv", source, SourceOptions(priority=priority), NOW.date())
        assert r.accepted is not None and r.rejected is not None
        return wh.Staged(source, r.accepted, f"sha-{source}-{len(text)}", priority, r.rejected)

    got = {}
    for how in ("one after the other", "together"):
        con = wh.connect(tmp_path / f"{how}.duckdb")
        kept = []
        for version in (first, second):
            batch = [staged(s, text, priority) for priority, (s, text) in enumerate(sorted(version.items()))]
            if how == "together":
                monkeypatch.setattr(wh, "STAGED_AT_ONCE", 3)  # (statements of 2 and 2 + 1 rows, then of 1 + 1 and 2 + 1)
                kept.append(wh.replace_staged_many(con, batch))
            else:
                kept.append([wh.replace_staged(con, b.source_id, b.frame, b.digest, b.priority, b.invalid) for b in batch])
        got[how] = (_staged(con), kept)
        con.close()
    rows, kept = got["together"]
    assert (rows, kept) == got["one after the other"]
    assert [k for k in kept[1] if k] == [{next(iter(kept[1][0])): 3}, {next(iter(kept[1][1])): 2}]  # a's row 3, b's row 2
    by_key = {r[0]: r for r in rows}
    assert set(by_key) == {"a/1", "a/2", "b/1", "b/2", "c/7", "c/8", "d/1"}
    assert by_key["b/1"][2:6:2] == ("b", "sha-b-" + str(len(first["b"])))  # the kept version: its own source and version
    assert by_key["d/1"][2:6:3] == ("d", 3)  # (source id, priority)


# --- listings kept from the last build (core_listings.sql, section keep) ------------------------------------

#: few values, so that rows of different sources often are one service (by phone, address or name) and often not
POOL = {
    "name": ["Kalamo Line", "Kalamo", "Birch Forum", "Cedar Chat", "Helpline"],
    "kind": ["helpline", "chat", "forum"],
    "phone": ["", "020 7946 0001", "020 7946 0002", "+44 20 7946 0001"],
    "url": ["https://one.example", "https://two.example/a", "https://two.example/b", ""],
    "country": ["GB", "IE", "WW"],
    "topics": ["", "grief", "anxiety"],
}
ROW = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in POOL.items()})
SOURCE = st.lists(ROW, min_size=1, max_size=5)


def _csv(rows: list[dict[str, str]], start: int = 1) -> str:
    lines = ["record_id," + ",".join(POOL)]
    for n, r in enumerate(rows, start=start):
        r = r if r["phone"] or r["url"] else {**r, "url": "https://one.example"}  # (a row with no contact is rejected)
        if r["phone"].startswith("0") and r["country"] != "GB":  # (a national number is a number only in its country)
            r = {**r, "phone": "+44 " + r["phone"][1:]}
        lines.append(f"{n}," + ",".join(r[k] for k in POOL))
    return "\n".join(lines) + "\n"


def _core_state(con) -> dict[str, list[tuple]]:
    return {
        "core_listings": sorted(wh.run(con, "SELECT * FROM core_listings ORDER BY id"), key=str),
        "out_listings": sorted(wh.run(con, "SELECT * FROM out_listings ORDER BY id"), key=str),
        "listing_members": wh.run(con, "SELECT * FROM listing_members ORDER BY row_key"),
        "listing_state": wh.run(con, "SELECT * FROM listing_state ORDER BY id"),
        "er_rows": wh.run(con, "SELECT * FROM er_rows ORDER BY rid"),  # (the features entity resolution compared)
        "er_pairs": wh.run(con, "SELECT * FROM er_pairs ORDER BY a, b"),  # (their scores, known or worked out)
        "possible_duplicates": wh.run(con, "SELECT * FROM possible_duplicates"),
    }


def test_listings_kept_from_the_last_build_are_those_merging_every_row_again_gives(tmp_path_factory):
    """A build that takes unchanged rows' features from the last resolution and keeps the last build's listings whose
    rows are as they were (``reuse``) leaves the features, the review queue, core_listings, out_listings,
    listing_members and listing_state exactly as working every row out and merging every listing again does: over three builds
    of three sources, with rows edited, added and removed, priorities changed and sources removed in between, so that
    listings gain, lose and swap members, split, merge and take over ids."""
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data):
        folder = tmp_path_factory.mktemp("kept")
        kept, merged = wh.connect(folder / "kept.duckdb"), wh.connect(folder / "merged.duckdb")
        try:
            version = {s: data.draw(SOURCE, label=f"{s} first") for s in "abc"}
            priority = dict.fromkeys("abc", 0)
            for build in range(3):
                for con in (kept, merged):
                    for s, rows in version.items():
                        load(con, s, _csv(rows), priority[s])
                    wh.drop_sources_not_in(con, list(version))
                    wh.build_core(con, NOW + dt.timedelta(days=build), 24, reuse=con is kept)
                assert _core_state(kept) == _core_state(merged)
                for s in sorted(version):  # the next build's sources: each as it was, edited, replaced or removed
                    how = data.draw(st.sampled_from(["same", "same", "edit", "add", "remove row", "new", "priority", "gone"]))
                    rows = version[s]
                    if how == "edit":
                        at = data.draw(st.integers(0, len(rows) - 1))
                        field = data.draw(st.sampled_from(list(POOL)))
                        rows = [*rows[:at], {**rows[at], field: data.draw(st.sampled_from(POOL[field]))}, *rows[at + 1 :]]
                    elif how == "add":
                        rows = [*rows, data.draw(ROW)]
                    elif how == "remove row" and len(rows) > 1:
                        rows = rows[1:]
                    elif how == "new":
                        rows = data.draw(SOURCE)
                    elif how == "priority":
                        priority[s] += 1
                    elif how == "gone" and len(version) > 1:
                        del version[s]
                        continue
                    version[s] = rows
        finally:
            kept.close()
            merged.close()

    check()


def test_a_rerun_scores_only_the_pairs_of_rows_that_changed(con):
    """A pair's comparisons and score are kept by its rows' prints (er_score_cache): after one row changed, only its
    pair is scored again, and the pairs are those scoring every pair gives.  The cache is emptied with the row
    cache (other rules), and made again of the pairs met once it holds more than twice as many."""
    text = "record_id,name,kind,phone,country\n" + "".join(f"{n},Line {n},helpline,020 7946 {n:04d},GB\n" for n in range(1, 21))
    load(con, "a", text)
    load(con, "b", text.replace("Line", "Other"))  # (each row of b shares its number with one of a: 20 pairs)
    wh.build_core(con, NOW, 24)
    pairs = wh.run(con, "SELECT count(*) FROM er_pairs")[0][0]
    assert wh.run(con, "SELECT count(*) FROM er_known") == [(0,)] and wh.run(con, "SELECT count(*) FROM er_new_scores") == [(pairs,)]
    load(con, "a", text.replace("Line 7,", "Line Seven,"))
    wh.build_core(con, NOW + dt.timedelta(days=1), 24)
    new = wh.run(con, "SELECT x.row_key, y.row_key FROM er_new_scores s JOIN er_rows x ON x.rid = s.a JOIN er_rows y ON y.rid = s.b")
    assert ("a/7", "b/7") in new and all("a/7" in pair for pair in new)  # (its pairs, and only those)
    assert wh.run(con, "SELECT count(*) FROM er_known") == [(pairs - len(new),)] and pairs > len(new)
    taken = wh.run(con, "SELECT * FROM er_pairs ORDER BY a, b")
    wh.build_core(con, NOW + dt.timedelta(days=1), 24, reuse=False)  # (every pair scored)
    assert wh.run(con, "SELECT count(*) FROM er_new_scores") == [(pairs,)]
    assert wh.run(con, "SELECT * FROM er_pairs ORDER BY a, b") == taken
    wh.run(con, "INSERT INTO er_score_cache SELECT range, range, NULL, NULL, NULL, NULL, NULL, NULL, 0 FROM range(5000)")
    wh.build_core(con, NOW + dt.timedelta(days=2), 24)
    assert wh.run(con, "SELECT count(*) FROM er_score_cache") == wh.run(con, "SELECT count(*) FROM er_known") == [(pairs,)]
    wh.run(con, "UPDATE er_cache_made_by SET made_by = 'another'")
    wh.build_core(con, NOW + dt.timedelta(days=3), 24)
    assert wh.run(con, "SELECT count(*) FROM er_new_scores") == [(pairs,)]


def test_a_rerun_merges_again_only_the_listings_whose_rows_changed(con):
    """After one row of one source changed, only its features are worked out again and only its listing is merged
    again; the others are kept as they were. A build by another ``core_listings.sql``, or one that did not end,
    lends no listing; features worked out by another ``er_rows.sql`` or suffix list are not taken."""
    text = "record_id,name,kind,phone,country\n" + "".join(f"{n},Line {n},helpline,020 7946 {n:04d},GB\n" for n in range(1, 21))
    load(con, "a", text)
    load(con, "b", text.replace("Line", "Other").replace("020 7946", "020 7947"))
    wh.build_core(con, NOW, 24)
    assert wh.run(con, "SELECT count(*) FROM kept_clusters") == [(0,)]  # (a first build has nothing to keep)
    load(con, "a", text.replace("Line 7,", "Line Seven,"))
    wh.build_core(con, NOW + dt.timedelta(days=1), 24)
    assert wh.run(con, "SELECT row_key FROM er_fresh") == [("a/7",)]
    assert wh.run(con, "SELECT count(*) FROM er_rows") == wh.run(con, "SELECT count(*) FROM er_row_cache") == [(40,)]
    assert wh.run(con, "SELECT count(*) FROM kept_clusters") == [(39,)]
    assert wh.run(con, "SELECT row_key FROM clusters") == [("a/7",)]
    assert wh.run(con, "SELECT name FROM core_listings WHERE updated_at > first_seen") == [("Line Seven",)]
    wh.run(con, "UPDATE core_build SET sql_sha256 = 'another'")
    wh.build_core(con, NOW + dt.timedelta(days=2), 24)
    assert wh.run(con, "SELECT count(*) FROM kept_clusters") == [(0,)]
    assert wh.run(con, "SELECT count(*) FROM clusters") == [(40,)]
    wh.run(con, "DELETE FROM core_build")  # as a build that failed after its first statement leaves it
    wh.build_core(con, NOW + dt.timedelta(days=3), 24)
    assert wh.run(con, "SELECT count(*) FROM kept_clusters") == [(0,)]
    wh.build_core(con, NOW + dt.timedelta(days=4), 24)
    assert wh.run(con, "SELECT count(*) FROM kept_clusters") == [(40,)]
    assert wh.run(con, "SELECT count(*) FROM er_fresh") == [(0,)]
    wh.run(con, "UPDATE er_cache_made_by SET made_by = 'another'")
    wh.build_core(con, NOW + dt.timedelta(days=5), 24)
    assert wh.run(con, "SELECT count(*) FROM er_fresh") == [(40,)]
