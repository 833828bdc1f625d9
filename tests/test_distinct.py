"""Tests of ``schemas.distinct``: columns worked on once per distinct value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from curate import normalise as n
from curate.stage import phone_in_country
from schemas import distinct
from schemas.distinct import Distinct


def test_of_numbers_rows_by_distinct_value_and_folds_nulls_into_none():
    column = Distinct.of(pd.Series(["NO", None, "GB", "NO", math.nan, pd.NA], dtype=object))
    assert sorted(column.values, key=str) == ["GB", "NO", None]
    assert column.rows().tolist() == ["NO", None, "GB", "NO", None, None]


def test_map_calls_the_function_once_per_distinct_value():
    calls: list[str] = []
    column = Distinct.of(np.array(["a", "b", "a", "a", "b"], dtype=object))
    mapped = column.map(lambda v: calls.append(v) or v.upper())
    assert sorted(calls) == ["a", "b"]
    assert mapped.rows().tolist() == ["A", "B", "A", "A", "B"]


def test_pair_is_one_value_per_distinct_pair_of_rows():
    numbers = Distinct.of(np.array(["116 123", "116 123", "116 123", "22 40 00 40"], dtype=object))
    countries = Distinct.of(np.array(["GB", "NO", "GB", "NO"], dtype=object))
    pairs = numbers.pair(countries)
    assert len(pairs.values) == 3
    assert pairs.rows().tolist() == [("116 123", "GB"), ("116 123", "NO"), ("116 123", "GB"), ("22 40 00 40", "NO")]


def test_compact_makes_equal_values_one_so_pairs_are_made_once_per_value():
    numbers = Distinct.of(np.array(["22 40 00 40"] * 4 + [None], dtype=object))
    written = Distinct.of(np.array(["NO", "Norge", "Norway", "GB", None], dtype=object))
    country = written.map(lambda v: {"Norge": "NO", "Norway": "NO"}.get(v, v))
    assert len(numbers.pair(country).values) == 5  # "NO" three times over
    compact = country.compact()
    assert compact.rows().tolist() == country.rows().tolist() == ["NO", "NO", "NO", "GB", None]
    assert sorted(compact.values, key=str) == ["GB", "NO", None]
    assert numbers.pair(compact).values == [("22 40 00 40", "NO"), ("22 40 00 40", "GB"), (None, None)]
    assert compact.compact() is compact  # nothing left to make one


def test_by_identity_judges_one_list_object_once_and_equal_copies_apart():
    shared, copy = ["en"], ["en"]
    column = Distinct.by_identity(pd.Series([shared, shared, copy, shared], dtype=object))
    assert len(column.values) == 2
    assert column.test(lambda v: v is shared).tolist() == [True, True, False, True]


def test_rows_where_gives_the_rows_whose_value_passes():
    column = Distinct.of(np.array(["=SUM(A1)", "ok", "=1+1", "ok"], dtype=object))
    assert column.rows_where(lambda v: v.startswith("=")).tolist() == [0, 2]


def test_map_in_processes_gives_what_map_gives(monkeypatch):
    """Worker processes are used above PROCESS_MIN_VALUES; their results are the same, in the same rows."""
    monkeypatch.setattr(distinct, "PROCESS_MIN_VALUES", 2)
    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    cells = ["22 40 00 40", "116 123", "+47 22 40 00 40", "4722400040", "113", "not a number", "988", None]
    countries = ["NO", "GB", "WW", "NO", "NL", "NO", "US", "NO"]
    pairs = Distinct.of(np.array(cells * 50, dtype=object)).pair(Distinct.of(np.array(countries * 50, dtype=object)))
    in_processes = pairs.map_in_processes(phone_in_country).rows().tolist()
    assert in_processes == [phone_in_country((c, k)) for c, k in zip(cells * 50, countries * 50, strict=True)]
    assert [staged for staged, _ in in_processes] == [n.phone(c, k) for c, k in zip(cells * 50, countries * 50, strict=True)]
    assert in_processes[:4] == [("+4722400040", None), ("116123", None), ("+4722400040", None), ("+4722400040", None)]
    assert in_processes[5:7] == [("not a number", "phone_number"), ("988", None)]  # 988: the US suicide and crisis line


def test_arrow_patterns_fall_back_to_python_when_arrow_cannot_hold_the_values():
    """A lone surrogate (bytes that were not UTF-8) or a value that is not text: every value goes the Python way."""
    for odd in ("bad \udcff byte", 12):
        column = Distinct(np.array([0, 1, 2, 0]), ["=SUM(A1)", odd, "plain"])
        assert column.matches("^=", otherwise=True).tolist() == [True, True, True]
        assert column.matches("^=", otherwise=False).tolist() == [False, False, False]
        assert column.rows_where(lambda v: str(v).startswith("="), candidates="^=").tolist() == [0, 3]
        assert column.map_unless("^plain$", lambda v: f"<{v}>").values == ["<=SUM(A1)>", f"<{odd}>", "<plain>"]
    clean = Distinct(np.array([0, 1, 2, 0]), ["=SUM(A1)", None, "plain"])
    assert clean.matches("^=", otherwise=False).tolist() == [True, False, False]
    assert clean.rows_where(lambda v: v is not None, candidates="^=").tolist() == [0, 3]  # None never a candidate
    assert clean.map_unless("^plain$", lambda v: f"<{v}>").values == ["<=SUM(A1)>", "<None>", "plain"]


def test_by_null_tells_rows_apart_by_null_alone():
    column = Distinct.by_null(np.array(["a", None, "b", math.nan, "a"], dtype=object))
    assert column.codes.tolist() == [0, 1, 0, 1, 0]
    assert column.values == ["a", None]  # each non-null row shows the first non-null value
    assert Distinct.by_null(np.array(["a", "b"], dtype=object)).values == ["a"]


def test_of_cells_takes_a_large_column_that_repeats_nothing_in_its_sample_as_it_is(monkeypatch):
    monkeypatch.setattr(distinct, "UNIQUE_SAMPLE_MIN_ROWS", 10)
    monkeypatch.setattr(distinct, "UNIQUE_SAMPLE", 5)
    ids = np.array([f"id-{i}" for i in range(40)] + [math.nan, pd.NA, "id-3"], dtype=object)
    column = Distinct.of_cells(ids)
    assert column.codes.tolist() == list(range(43))  # not hashed: "id-3" twice is two values
    assert column.rows().tolist() == [*ids[:40].tolist(), None, None, "id-3"]
    repeats = Distinct.of_cells(np.array(["NO", "GB", "SE"] * 20, dtype=object))  # any sample repeats: hashed
    assert sorted(repeats.values) == ["GB", "NO", "SE"] and repeats.rows().tolist() == ["NO", "GB", "SE"] * 20
    small = Distinct.of_cells(np.array([*ids[:9], "id-0"], dtype=object))  # too few rows to sample: hashed
    assert len(small.values) == 9 and small.codes.tolist() == [*range(9), 0]


def _pid(_: object) -> int:
    import os

    return os.getpid()


def test_workers_forked_before_the_work_do_it_and_a_broken_pool_leaves_it_to_this_process(monkeypatch):
    import os
    import signal

    monkeypatch.setattr(distinct, "PROCESS_MIN_VALUES", 100)  # workers of their own from 100 values; started ones from 2
    monkeypatch.setattr(distinct, "SHARED_MIN_VALUES", 2)
    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    column = Distinct(np.arange(50), list(range(50)))
    assert column.map_in_processes(_pid).values == [os.getpid()] * 50  # too few to fork workers for
    with distinct.workers_forked():
        starting = distinct._FORKED.get()
        pool = starting.result() if starting is not None else None
        assert pool is not None
        forked = {p.pid for p in pool._processes.values()}
        begun = column.start_map_in_processes(_pid)
        pids = set(begun().values)
        assert pids and pids <= forked and os.getpid() not in pids  # the workers forked on entry did it
        for pid in forked:
            os.kill(pid, signal.SIGKILL)
        assert column.map_in_processes(_pid).values == [os.getpid()] * 50  # the pool broke: done here
    assert distinct._FORKED.get() is None
    with distinct.workers_forked(wanted=False):
        assert distinct._FORKED.get() is None


def test_a_large_file_is_checked_alike_with_workers_forked_before_reading(monkeypatch):
    import datetime as dt

    from benchmarks.directory_gen import csv_bytes
    from curate import checking
    from curate.sources import SourceOptions

    data = csv_bytes(3000)
    alone = checking.check_source(data, "big.csv", "big", SourceOptions(), dt.date(2026, 11, 25))
    forked: list[bool] = []
    workers_forked = checking.workers_forked
    monkeypatch.setattr(checking, "workers_forked", lambda wanted: forked.append(wanted) or workers_forked(wanted))
    monkeypatch.setattr(checking, "WORKERS_MIN_BYTES", len(data))
    monkeypatch.setattr(distinct, "PROCESS_MIN_VALUES", 2)
    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    with_workers = checking.check_source(data, "big.csv", "big", SourceOptions(), dt.date(2026, 11, 25))
    assert forked == [True]
    assert with_workers.problems == alone.problems
    assert with_workers.accepted.equals(alone.accepted)
    checking.check_source(data[: len(data) // 2], "small.csv", "small", SourceOptions(), dt.date(2026, 11, 25))
    assert forked == [True, False]  # a smaller file: no workers


def test_sources_checked_in_processes_are_checked_alike_and_a_broken_pool_leaves_them_to_this_process(monkeypatch):
    """Inside ``checked_in_processes``, a worker process checks each source and sends it back pickled (the bytes
    kept for the cache): the same rows and problems as checked here.  Once its workers are gone, sources are
    checked in this process again."""
    import datetime as dt
    import os
    import signal

    from benchmarks.directory_gen import csv_bytes
    from curate import checking
    from curate.sources import SourceOptions

    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    data, today = csv_bytes(400), dt.date(2026, 11, 25)
    here = checking.check_source(data, "a.csv", "a", SourceOptions(), today)
    assert here.pickled is None and here.problems and here.accepted is not None
    with checking.checked_in_processes() as count:
        assert count == 2
        starting = checking._CHECKERS.get()
        pool = starting.result() if starting is not None else None
        assert pool is not None
        sent = checking.check_source(data, "a.csv", "a", SourceOptions(), today)
        assert sent.pickled and sent.problems == here.problems and sent.accepted.equals(here.accepted)
        assert sent.raw.equals(here.raw) and sent.sha256 == here.sha256 and sent.mapping == here.mapping
        for pid in [p.pid for p in pool._processes.values()]:
            os.kill(pid, signal.SIGKILL)
        after = checking.check_source(data, "a.csv", "a", SourceOptions(), today)
        assert after.pickled is None and after.problems == here.problems  # checked here
    assert checking._CHECKERS.get() is None
    with checking.checked_in_processes(wanted=False) as count:
        assert count == 0 and checking._CHECKERS.get() is None


def test_a_worker_checking_sources_starts_no_workers_of_its_own(monkeypatch):
    """A checker process (``_checked_in_worker``) parses its phone numbers itself: the other CPUs check sources of
    their own, so neither ``workers_forked`` nor ``map_in_processes`` starts workers in it."""
    import datetime as dt
    import os
    import pickle

    from benchmarks.directory_gen import csv_bytes
    from curate import checking
    from curate.sources import SourceOptions

    monkeypatch.setattr(distinct, "_ALONE", False)
    monkeypatch.setattr(distinct, "PROCESS_MIN_VALUES", 2)
    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    monkeypatch.setattr(checking, "WORKERS_MIN_BYTES", 1)
    column = Distinct(np.arange(50), list(range(50)))
    result = pickle.loads(checking._checked_in_worker(csv_bytes(300), "a.csv", "a", SourceOptions(), dt.date(2026, 11, 25), None))
    assert result.rows_read == 300 and distinct._ALONE
    assert column.map_in_processes(_pid).values == [os.getpid()] * 50  # (2 values would have been enough for workers)
    with distinct.workers_forked():
        assert distinct._FORKED.get() is None
