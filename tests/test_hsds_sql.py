"""hsds_sql.py (warehouse/sql/hsds_rows.sql): DuckDB writes the HSDS package's parts as hsds.py writes them in Python."""

from __future__ import annotations

import datetime as dt
import threading
import time

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export, hsds, hsds_sql
from curate import warehouse as wh
from schemas import hsds as m
from schemas import vocabularies as v
from schemas.fields import LISTING_FIELDS
from tests.test_core import CELL_TEXT, NOW, load

#: a cell's text, or a value that means something to the HSDS rows (a cost term, a code named by the locations)
CODES = ["GB", "NO", "US-CA", "WW", "ZZ", ""]
TAGS = ["en", "nb", "pt-BR", "zh-Hant", "x-klingon", "", "??"]
LISTS = st.one_of(st.none(), st.lists(st.one_of(CELL_TEXT, st.sampled_from(["lgbtq", "young_people", "adults"])), max_size=3))
COLUMNS = {
    "name": CELL_TEXT,
    "kind": st.one_of(st.none(), CELL_TEXT, st.sampled_from(list(v.KINDS))),
    "description": st.one_of(st.none(), CELL_TEXT),
    "url": st.one_of(st.none(), CELL_TEXT),
    "chat_url": st.one_of(st.none(), CELL_TEXT),
    "phone": st.one_of(st.none(), CELL_TEXT),
    "sms": st.one_of(st.none(), CELL_TEXT),
    "email": st.one_of(st.none(), CELL_TEXT),
    "areas": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.sampled_from(CODES), CELL_TEXT), max_size=3)),
    "languages": st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(TAGS), CELL_TEXT), max_size=3)),
    "topics": LISTS,
    "audience": LISTS,
    "cost": st.one_of(st.none(), st.sampled_from([*v.COSTS, "None", "gratis"])),
    "hours": st.one_of(st.none(), CELL_TEXT),
    "always_open": st.one_of(st.none(), st.booleans()),
    "verified_at": st.one_of(st.none(), st.dates()),
    "updated_at": st.one_of(st.none(), st.datetimes()),
}
NAMES = {"GB": "United Kingdom", "NO": "Norway", "US-CA": "California, US", "WW": "Worldwide"}


@pytest.fixture
def out(tmp_path):
    """A warehouse with ``out_listings`` as a run makes it (its columns' types)."""
    con = wh.connect(tmp_path / "w.duckdb")
    load(con, "a", "name,kind,phone,country\nOne,helpline,020 7946 0001,GB\n")
    wh.build_core(con, NOW, 24)
    yield con
    con.close()


def _filled(con, rows: list[dict]) -> list[dict]:
    """``out_listings`` holding ``rows`` (other columns empty), read back as ``public_listings`` reads a release's."""
    wh.run(con, "DELETE FROM out_listings")
    for n, row in enumerate(rows):
        values = {**dict.fromkeys(LISTING_FIELDS), **row, "id": row.get("id", f"lst_{n:012x}")}
        con.execute(f"INSERT INTO out_listings ({', '.join(LISTING_FIELDS)}) VALUES ({', '.join('?' * len(LISTING_FIELDS))})",
                    [values[name] for name in LISTING_FIELDS])  # fmt: skip
    return export.public_listings(con)


def _pieces(listings: list[dict], cuts: list[int]) -> list[list[dict]]:
    bounds = sorted({min(c, len(listings)) for c in cuts})
    return [listings[a:b] for a, b in zip([0, *bounds], [*bounds, len(listings)], strict=True)]


def test_duckdb_writes_the_hsds_parts_as_python_does(out):
    """``hsds_sql.warehouse_parts`` gives, for each part wanted, the bytes and the terms ``hsds.part_bodies`` gives of
    its listings: cells to guard and quote, missing and empty values, web and chat addresses, costs (a term, unknown,
    none), audiences, 24/7 and hours, areas named or not, language tags langcodes knows or not, kinds and topics; in
    parts of any size, some of them empty, a few wanted out of several."""
    con = out

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.fixed_dictionaries(COLUMNS), max_size=7), st.lists(st.integers(0, 8), max_size=3), st.data())
    def check(rows, cuts, data):
        listings = _filled(con, rows)
        pieces = _pieces(listings, cuts)
        wanted = sorted(data.draw(st.sets(st.sampled_from(range(len(pieces))), min_size=1)))
        made = hsds_sql.warehouse_parts(con, "out_listings", pieces, wanted, NAMES)
        assert sorted(made) == wanted
        for i in wanted:
            assert made[i] == hsds.part_bodies(pieces[i], NAMES, export.csv_cell), i

    check()


def test_the_hsds_rows_ids_are_the_uuids_python_makes(out):
    """The rows' ids (uuid5 of the namespace and a name, as ``schemas.hsds.hsds_id`` makes them) for names with and
    without a part, in any script, and an empty part (none)."""
    con = out
    rows = [{"id": lid, "name": "X", "kind": "chat", "phone": "+4722400040", "areas": ["NO", ""], "languages": ["日本", ""],
             "topics": ["ø/x"]} for lid in ["lst_1", "日本語", "a:b", "'"]]  # fmt: skip
    listings = _filled(con, rows)
    bodies, _ = hsds_sql.warehouse_parts(con, "out_listings", [listings], [0], {})[0]
    ids = {line.split(b",")[0].decode() for t in ("organizations.csv", "phones.csv", "attributes.csv") for line in bodies[t].splitlines()}
    expected = {m.hsds_id("organization", x["id"]) for x in listings} | {m.hsds_id("phone", x["id"], "phone") for x in listings}
    expected |= {m.hsds_id("attribute", x["id"], f"{tax}/{val}") for x in listings
                 for tax, val in [("support-directory-kind", "chat"), ("support-directory-topic", "ø/x")]}  # fmt: skip
    assert ids == expected
    areas = bodies["service_areas.csv"].decode()
    assert m.hsds_id("service_area", "lst_1", "NO") in areas and m.hsds_id("service_area", "lst_1") in areas


def test_listings_that_are_not_the_tables_are_not_written_from_it(out):
    """A piece holding a listing the table does not (or a missing topic, which only Python writes) is refused, for
    the release to build it in Python."""
    con = out
    listings = _filled(con, [{"name": "A", "kind": "chat"}, {"name": "B", "kind": "forum", "topics": ["grief"]}])
    stranger = {**listings[0], "id": "lst_not_in_table"}
    with pytest.raises(LookupError):
        hsds_sql.warehouse_parts(con, "out_listings", [[stranger], listings], [0, 1], {})
    assert hsds_sql.warehouse_parts(con, "out_listings", [[stranger], listings], [1], {})[1][0]  # (the other piece: fine)
    listings = _filled(con, [{"name": "A", "kind": "chat", "topics": ["grief", None]}])
    with pytest.raises(ValueError):
        hsds_sql.warehouse_parts(con, "out_listings", [listings], [0], {})


def test_a_release_has_duckdb_write_its_hsds_parts_and_python_those_it_refuses(out, monkeypatch):
    """``iter_release_files`` with ``warehouse_writers`` has DuckDB build the HSDS parts (in a thread of its own) and
    gives the package ``release_files`` gives in Python; when DuckDB's build fails, each part is built in Python,
    with the same bytes."""
    con, kinds = out, list(v.KINDS)
    rows = [{"name": f"Service {n}", "kind": kinds[n % len(kinds)], "phone": f"+47224000{n:02d}", "areas": ["NO", "WW"][: 1 + n % 2],
             "languages": ["nb", "en"][: 1 + n % 2], "topics": ["grief"] if n % 3 else [], "always_open": n % 4 == 0,
             "verified_at": dt.date(2026, 1, 1 + n % 28), "updated_at": NOW} for n in range(40)]  # fmt: skip
    listings = _filled(con, rows)
    monkeypatch.setattr(export, "HSDS_PART_EVERY", 4)  # about ten parts, all sent
    monkeypatch.setattr(export, "PARTS_BUILT_HERE", 0)
    assert len(export.hsds_pieces(listings)) > 3
    pure = {rel: data for rel, data in export.release_files(listings).items() if rel.startswith("hsds/")}
    built = []
    writers = export.warehouse_writers(con)
    spied = export.Writers(writers.records, writers.parquet, lambda *a: built.append(a[1]) or writers.hsds(*a))
    got = {rel: data for rel, data in export.iter_release_files(listings, writers=spied) if rel.startswith("hsds/")}
    assert built == [list(range(len(export.hsds_pieces(listings))))] and got == pure

    def failing(*a):
        built.append("failed")
        raise RuntimeError("DuckDB broke")

    got = {rel: data for rel, data in export.iter_release_files(listings, writers=export.Writers(hsds=failing)) if rel.startswith("hsds/")}
    assert built[-1] == "failed" and got == pure

    def short(pieces, wanted, names):  # (a part it did not give is built in Python; none is waited for forever)
        made = writers.hsds(pieces, wanted, names)
        del made[wanted[0]]
        return made

    got = {rel: data for rel, data in export.iter_release_files(listings, writers=export.Writers(hsds=short)) if rel.startswith("hsds/")}
    assert got == pure


def test_closing_the_writers_stops_and_waits_for_their_hsds_builds(out, monkeypatch):
    """``Writers.close`` stops the HSDS build going on (its caller gets an error, and builds the parts in Python) and
    returns once it has ended: the connection can then be closed; a build asked for after it is refused."""
    con = out
    listings = _filled(con, [{"name": f"S{n}", "kind": "chat", "topics": ["grief"]} for n in range(300)])
    writers = export.warehouse_writers(con)
    started, ended, real = threading.Event(), [], hsds_sql.parts_of_ids

    def slow(cur, *a):
        cur.execute("CREATE TEMP MACRO slow() AS TABLE SELECT max(hash(i)) FROM range(20000000000) t(i)")
        started.set()
        try:
            cur.execute("SELECT * FROM slow()").fetchall()  # (about a minute, unless interrupted)
        except duckdb.Error as exc:
            ended.append(type(exc).__name__)
            raise
        return real(cur, *a)

    monkeypatch.setattr(hsds_sql, "parts_of_ids", slow)
    raised = []

    def build():
        try:
            writers.hsds([listings], [0], {})  # type: ignore[misc]
        except duckdb.Error as exc:
            raised.append(exc)

    building = threading.Thread(target=build)
    building.start()
    assert started.wait(30)
    t = time.perf_counter()
    writers.close()
    assert time.perf_counter() - t < 20 and ended == ["InterruptException"]
    building.join()
    assert len(raised) == 1 and not writers.hsds._cursors  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        writers.hsds([listings], [0], {})  # type: ignore[misc]
