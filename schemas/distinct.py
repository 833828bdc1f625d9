"""Columns evaluated once per distinct value: the work of staging and of the generated checks."""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Below this many distinct values, ``map_in_processes`` works in this process (starting workers costs more).
PROCESS_MIN_VALUES = 20_000
#: distinct values from which ``map_in_processes`` gives its work to workers already started (``workers_forked``):
#: they cost no start, only sending the values and their answers
SHARED_MIN_VALUES = 64
#: ``of_cells`` takes a column of more rows than this as it is when a random sample of ``UNIQUE_SAMPLE`` repeats no value.
UNIQUE_SAMPLE_MIN_ROWS = 50_000
UNIQUE_SAMPLE = 1_000
#: At most this many worker processes.
PROCESS_MAX_WORKERS = 8

#: A column of values: a pandas Series or a NumPy object array.
Column = pd.Series | np.ndarray


@dataclass(frozen=True)
class Distinct:
    """A column as each row's number of a distinct value (``codes``) and those values: work is done per value.

    Files repeat values a lot (countries, kinds, a number shared by many rows); hashing happens in pandas
    (``factorize``), never row by row in Python.
    """

    codes: np.ndarray
    values: list[Any]

    @classmethod
    def of(cls, column: Column) -> Distinct:
        codes, uniques = pd.factorize(np.asarray(column, dtype=object))
        missing = codes < 0
        if missing.any():  # nulls (None, NaN, NA) are one value: None
            codes[missing] = len(uniques)
            return cls(codes, [*uniques.tolist(), None])
        return cls(codes, uniques.tolist())

    @classmethod
    def of_cells(cls, column: Column) -> Distinct:
        """``of``, except that a column of more than ``UNIQUE_SAMPLE_MIN_ROWS`` whose random sample of
        ``UNIQUE_SAMPLE`` rows repeats no value is taken as it is, a value per row (ids, descriptions): hashing it
        would cost more than the repeats it could find save.  Its values need not be distinct; nulls are None."""
        objects = np.asarray(column, dtype=object)
        if len(objects) > UNIQUE_SAMPLE_MIN_ROWS:
            sample = objects[np.random.default_rng(0).choice(len(objects), UNIQUE_SAMPLE, replace=False)]
            if pd.Series(sample).nunique(dropna=False) == UNIQUE_SAMPLE:
                values = objects.tolist()
                for i in np.flatnonzero(pd.isna(objects)).tolist():
                    values[i] = None  # nulls (NaN, NA) are None, as ``of`` makes them
                return cls(np.arange(len(objects)), values)
        return cls.of(objects)

    @classmethod
    def by_identity(cls, column: Column) -> Distinct:
        """Values that cannot be hashed (lists), told apart by identity: equal lists made once per distinct value
        (as staging makes them) are judged once, others each on their own."""
        objects = np.asarray(column, dtype=object)
        codes, _ = pd.factorize(np.fromiter(map(id, objects), dtype=np.int64, count=len(objects)))
        return cls(codes, objects[first_rows(codes)].tolist())

    @classmethod
    def by_null(cls, column: Column) -> Distinct:
        """Values told apart by whether they are null alone (each non-null row shows the first non-null value): for
        checks that read no more of a column (one that must not be null, a contact in some column or other)."""
        objects = np.asarray(column, dtype=object)
        codes, nulls = pd.factorize(pd.isna(objects))
        return cls(codes, [None if null else objects[i] for null, i in zip(nulls.tolist(), first_rows(codes).tolist(), strict=True)])

    def map(self, fn: Callable[[Any], Any]) -> Distinct:
        return Distinct(self.codes, [fn(v) for v in self.values])

    def compact(self) -> Distinct:
        """The same column with equal values made one (after ``map``: "NO" and "Norge" are both NO), so that work
        on pairs with it (``pair``) is done once per value.  Values must be hashable."""
        codes, uniques = pd.factorize(pd.Series(self.values, dtype=object), use_na_sentinel=False)
        if len(uniques) == len(self.values):
            return self
        return Distinct(codes[self.codes], [self.values[i] for i in first_rows(codes)])

    def map_in_processes(self, fn: Callable[[Any], Any]) -> Distinct:
        """``map`` shared among worker processes when there are many distinct values and several CPUs.

        For pure-Python work that dominates a run (``phonenumbers``).  Workers only run ``fn`` (they import no
        module again: forked from this process, or from the fork server of ``workers_forked``); if they cannot be
        had or break, the work is done here.
        """
        return self.start_map_in_processes(fn)()

    def start_map_in_processes(self, fn: Callable[[Any], Any]) -> Callable[[], Distinct]:
        """``map_in_processes`` begun: calling what this returns gives the column.

        Inside ``workers_forked``, the workers started there work while this process goes on, and the call waits
        for them; otherwise workers are forked now and the work is done before this returns.
        """
        workers = min(_cpus(), PROCESS_MAX_WORKERS)
        starting = _FORKED.get()
        if len(self.values) < (PROCESS_MIN_VALUES if starting is None else SHARED_MIN_VALUES) or workers < 2 or _ALONE:
            return _done(self.map(fn))
        shared = starting.result() if starting is not None else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() of a threaded process
                pool = shared or ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
                results = pool.map(fn, self.values, chunksize=len(self.values) // (4 * workers) + 1)
        except (OSError, RuntimeError, BrokenProcessPool):
            return _done(self.map(fn))

        def finish() -> Distinct:
            try:
                return Distinct(self.codes, list(results))
            except (OSError, RuntimeError, BrokenProcessPool):
                return self.map(fn)
            finally:
                if pool is not shared:
                    pool.shutdown()

        return finish if shared else _done(finish())

    def pair(self, other: Distinct) -> Distinct:
        """The column of (this value, the other's value) pairs, each distinct pair once."""
        codes = combined_codes([self, other])
        first = first_rows(codes).tolist()
        return Distinct(codes, [(self.values[self.codes[i]], other.values[other.codes[i]]) for i in first])

    def rows(self) -> np.ndarray:
        """The value of every row (an object array; equal rows share one value object)."""
        return np.fromiter(self.values, dtype=object, count=len(self.values))[self.codes]

    def test(self, test: Callable[[Any], bool]) -> np.ndarray:
        """Whether each row's value passes ``test`` (a boolean array; judged once per distinct value)."""
        return np.array([bool(test(v)) for v in self.values], dtype=bool)[self.codes]

    def rows_where(self, test: Callable[[Any], bool], candidates: str | np.ndarray | None = None) -> np.ndarray:
        """The indexes of the rows whose value passes ``test``.

        ``candidates``, an RE2 pattern, must match (somewhere in it) every value that can pass ``test``:
        Arrow finds those in one pass, in C, and ``test`` judges them alone (most values of a text column
        are nowhere near a finding).  It may also be such a pattern's ``matches``, for tests sharing one pass.
        """
        if candidates is None:
            return np.flatnonzero(self.test(test))
        passed = np.zeros(len(self.values), dtype=bool)
        maybe = self.matches(candidates, otherwise=True) if isinstance(candidates, str) else candidates
        judged = np.flatnonzero(maybe).tolist()
        passed[judged] = [bool(test(self.values[i])) for i in judged]
        return np.flatnonzero(passed[self.codes])

    def map_unless(self, unchanged: str, fn: Callable[[Any], Any], rewrite: tuple[str, str] | None = None) -> Distinct:
        """``map(fn)``, except for the values the RE2 pattern ``unchanged`` matches, which are kept as they are.

        ``unchanged`` must match only values that ``fn`` returns unchanged (text already clean): Arrow finds
        them in one pass, in C, and ``fn`` is called on the others alone.  With ``rewrite`` (an RE2 pattern and
        its replacement), those values are not kept but rewritten by Arrow, which must give what ``fn`` gives.
        """
        keep = self.matches(unchanged, otherwise=False)
        values = list(self.values)
        if rewrite is not None and self._arrow is not None and keep.any():
            kept = np.flatnonzero(keep)
            rewritten = pc.replace_substring_regex(self._arrow.take(pa.array(kept)), pattern=rewrite[0], replacement=rewrite[1])
            for i, value in zip(kept.tolist(), rewritten.to_pylist(), strict=True):
                values[i] = value
        for i in np.flatnonzero(~keep).tolist():
            values[i] = fn(values[i])
        return Distinct(self.codes, values)

    def matches(self, pattern: str, *, otherwise: bool) -> np.ndarray:
        """Per distinct value, whether it is a string with a match of the RE2 ``pattern`` (None: no match).

        ``otherwise`` is the answer for every value when Arrow cannot hold them (a value that is not a
        string, or one that is not valid Unicode): callers pick the answer that makes their Python path judge.
        """
        if self._arrow is None:
            return np.full(len(self.values), otherwise, dtype=bool)
        return pc.match_substring_regex(self._arrow, pattern).fill_null(False).to_numpy(zero_copy_only=False)

    @cached_property
    def _arrow(self) -> pa.Array | None:
        """The distinct values as an Arrow string array (made once, for every pattern), or None when they are not all text."""
        try:
            return pa.array(self.values, type=pa.string())
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            return None


#: where the block of ``workers_starting`` keeps its workers: a pool being started (None when it could not be)
Starting = contextvars.ContextVar[Future[ProcessPoolExecutor | None] | None]


#: The workers ``workers_forked`` made for this thread of work, if any.
_FORKED: Starting = contextvars.ContextVar("forked_workers", default=None)


@contextlib.contextmanager
def workers_forked(wanted: bool = True) -> Iterator[None]:
    """Worker processes for the ``map_in_processes`` calls inside the block, started on entry (when ``wanted`` and
    there are several CPUs); they work while this process goes on (``start_map_in_processes``).

    They are forked from multiprocessing's fork server, a small process that has imported ``__main__`` (a script
    must guard its work with ``if __name__ == "__main__"``, as for any start method but fork) and
    ``curate.stage`` once.  Forked from this process instead, they would share the pages of everything it holds,
    and each page it then writes, reading and staging a file of millions of cells, is copied (1 s per 1M rows).
    """
    workers = min(_cpus(), PROCESS_MAX_WORKERS)
    if not wanted or workers < 2 or _ALONE:
        yield
        return
    with workers_starting(_FORKED, workers, "curate.stage"):
        yield


@contextlib.contextmanager
def workers_starting(where: Starting, workers: int, module: str) -> Iterator[None]:
    """``started_workers(workers, module)`` started in a thread on entry, while this process goes on, and kept in
    ``where`` for the block (the context Prefect's thread runner copies into each task run's thread); shut down on
    exit."""
    starting: Future[ProcessPoolExecutor | None] = Future()
    threading.Thread(target=lambda: starting.set_result(started_workers(workers, module)), daemon=True).start()
    token = where.set(starting)
    try:
        yield
    finally:
        where.reset(token)
        pool = starting.result()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def started_workers(workers: int, module: str = "curate.stage") -> ProcessPoolExecutor | None:
    """A pool of ``workers`` processes from the fork server, each started (None when they cannot be had: whatever
    went wrong, the work is then done in this process, and ``workers_forked`` never waits on a thread that died).
    The fork server imports ``__main__`` and ``module`` when it starts (once per process: a server already
    running keeps what it imported, and the workers import the rest when they first need it)."""
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", module])
        pool = ProcessPoolExecutor(workers, mp_context=context)
        list(pool.map(abs, range(workers)))
    except Exception:
        return None
    return pool


#: True in a process that does its work alone (a worker of ``curate.checking.checked_in_processes``: the other CPUs
#: have work of their own): ``workers_forked`` and ``map_in_processes`` then start no workers
_ALONE = False


def work_here() -> None:
    """From now on, this process starts no workers of its own (``_ALONE``)."""
    global _ALONE
    _ALONE = True


def _done(column: Distinct) -> Callable[[], Distinct]:
    return lambda: column


def _cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def combined_codes(columns: list[Distinct]) -> np.ndarray:
    """Per row, the number of its distinct tuple of values across ``columns`` (0, 1, ... in order of first row)."""
    codes = columns[0].codes
    for other in columns[1:]:
        codes = pd.factorize(codes * max(len(other.values), 1) + other.codes)[0]
    return pd.factorize(codes)[0] if len(columns) == 1 else codes


def first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row holding each code (codes numbered 0, 1, ... in order of first row, as ``factorize`` does)."""
    first = np.empty(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last assignment wins: each code's first row
    return first
