"""One source, checked: bytes in, staged rows and problems out (pure; shared by ``curate run`` and ``curate check``)."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import logging
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from curate.collector import collection_paused, give_back_freed_memory
from curate.problems import Problem, problem
from curate.read import ROW, Table, read_table
from curate.read_hsds import hsds_files_from_zip, read_hsds
from curate.read_json import read_json
from curate.read_xlsx import read_xlsx
from curate.sources import SOURCE_ID, SourceOptions, guess_format
from curate.stage import stage_listings
from curate.validate import split_rows, validate_listings
from schemas import distinct
from schemas.distinct import workers_forked

log = logging.getLogger(__name__)

#: formats ``check_source`` reads
READERS = ("csv", "tsv", "xlsx", "json", "hsds")


@dataclass
class SourceResult:
    """Everything a run or a check learns from one source file."""

    source_id: str
    file: str
    sha256: str
    raw: pd.DataFrame | None = None
    accepted: pd.DataFrame | None = None
    rejected: pd.DataFrame | None = None  # staged rows with errors (their match keys let the warehouse keep their last valid version)
    problems: list[Problem] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    #: what the source's last parse found (set by the warehouse step; None on a first read), for "what changed"
    previous_problems: list[Problem] | None = None
    rows_read: int = 0
    priority: int = 0
    #: this result as a worker process pickled it (``checked_in_processes``), until it is written for the cache
    #: (``caching.IngestSerializer``), which then need not pickle it again
    pickled: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def usable(self) -> bool:
        """False when a file-level error stopped the whole file."""
        return self.accepted is not None

    @property
    def rows_accepted(self) -> int:
        return 0 if self.accepted is None else len(self.accepted)

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_accepted


def read_any(data: bytes, fmt: str, options: SourceOptions) -> tuple[Table, list[str]]:
    """Bytes of any accepted format -> a table of strings, and numbers a HSDS package holds beyond phone and sms."""
    with collection_paused():
        return _read_any(data, fmt, options)


def _read_any(data: bytes, fmt: str, options: SourceOptions) -> tuple[Table, list[str]]:
    if fmt in ("csv", "tsv"):
        return read_table(data, "." + fmt), []
    if fmt == "xlsx":
        return read_xlsx(data, options.sheet), []
    if fmt == "json":
        return read_json(data), []
    files = hsds_files_from_zip(data)
    if isinstance(files, str):
        return Table(None, error=files), []
    table = read_hsds(files)
    extra = []
    if table.frame is not None and "phone_numbers_all" in table.frame:
        for record in table.frame.to_dict("records"):
            used = {record.get("phone"), record.get("sms")}
            extra.append("; ".join(x for x in str(record["phone_numbers_all"] or "").split(";") if x and x not in used))
        table.frame = table.frame.drop(columns="phone_numbers_all")
    return table, extra


def check_source(data: bytes, file: str, source_id: str, options: SourceOptions, today: dt.date, fmt: str | None = None) -> SourceResult:
    """Read, stage and validate one source's bytes (a HSDS package as a ZIP); inside ``checked_at_most``, waits for
    its turn first; inside ``checked_in_processes``, a worker process does it."""
    gate, checkers = _GATE.get(), _CHECKERS.get()
    with gate if gate is not None else contextlib.nullcontext():
        pool = checkers.result() if checkers is not None else None
        if pool is not None:
            try:
                return _sent_back(pool.submit(_checked_in_worker, data, file, source_id, options, today, fmt).result())
            except Exception:  # a worker that died, or a result it could not send: checked here (a bug raises again here)
                log.warning("checking %s in a worker process failed; it is checked in this one", file, exc_info=True)
        return _checked_here(data, file, source_id, options, today, fmt)


def _checked_here(data: bytes, file: str, source_id: str, options: SourceOptions, today: dt.date, fmt: str | None) -> SourceResult:
    with ThreadPoolExecutor(1) as hasher:
        digest = hasher.submit(_sha256, data)  # hashlib lets go of the GIL: 170 MB hashed beside reading them
        result = _checked_source(SourceResult(source_id, file, "", priority=options.priority), data, options, today, fmt)
        result.sha256 = digest.result()
    return result


def _checked_in_worker(data: bytes, file: str, source_id: str, options: SourceOptions, today: dt.date, fmt: str | None) -> bytes:
    """``check_source`` in a worker process of ``checked_in_processes``, its result pickled: phone numbers are
    parsed here too (the other CPUs have sources of their own), and the heap a source took is handed back before
    the next one."""
    distinct.work_here()
    try:
        return pickle.dumps(_checked_here(data, file, source_id, options, today, fmt), protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        give_back_freed_memory()


@collection_paused()  # (thousands of problems and cells, none in a cycle)
def _sent_back(pickled: bytes) -> SourceResult:
    """A worker's result, keeping its bytes for the cache (pickling a result again took 30 ms per 10k rows, half of
    it calling each problem's ``__getnewargs__``)."""
    result: SourceResult = pickle.loads(pickled)
    result.pickled = pickled
    return result


#: The worker processes ``checked_in_processes`` started for this thread of work, if any.
_CHECKERS: distinct.Starting = contextvars.ContextVar("checkers", default=None)


@contextlib.contextmanager
def checked_in_processes(wanted: bool = True) -> Iterator[int]:
    """``check_source`` calls inside the block, and in threads started with its context (Prefect's thread runner
    copies it into each task run's thread), are made by worker processes, one per CPU, started on entry (when
    ``wanted`` and there are several CPUs); gives how many there are (0: none, the sources are checked here).

    Checking a source is Python work under the GIL: in threads of one process, 100 files of 10k rows kept about 1.65
    CPUs busy with their phone numbers parsed in workers (``workers_forked``); in processes, each file whole, the
    CPUs are all busy.  The workers come from multiprocessing's fork server (``distinct.started_workers``), having
    imported this module; if they cannot be had or break, the sources are checked here."""
    count = min(distinct._cpus(), distinct.PROCESS_MAX_WORKERS)
    if not wanted or count < 2:
        yield 0
        return
    with distinct.workers_starting(_CHECKERS, count, "curate.checking"):  # (they start while this process reads)
        yield count


#: The limit ``checked_at_most`` set for this thread of work, if any.
_GATE: contextvars.ContextVar[threading.Semaphore | None] = contextvars.ContextVar("checked_at_most", default=None)


@contextlib.contextmanager
def checked_at_most(n: int) -> Iterator[None]:
    """At most ``n`` sources checked (``check_source``) at once by the block and the threads it starts with its
    context (Prefect's thread runner copies it into each task run's thread); reading and downloading are not held up.

    Checking is Python work under the GIL: in several threads at once, each call that lets go of the GIL (Arrow,
    NumPy, pandas' hashing, file stats) waits to get it back from the others, and 100 files of 1k rows took 17-21 s
    in 4 threads against 13-16 s one after the other.  A second thread gains only while phone numbers are parsed in
    worker processes (``workers_forked``): one file's Python work then goes on while another waits for its numbers.
    """
    token = _GATE.set(threading.Semaphore(max(1, n)))
    try:
        yield
    finally:
        _GATE.reset(token)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked_source(result: SourceResult, data: bytes, options: SourceOptions, today: dt.date, fmt: str | None) -> SourceResult:
    source_id, file = result.source_id, result.file
    fmt = (fmt or options.format or guess_format(file) or "").lower()
    if not SOURCE_ID.match(source_id):
        return _failed(result, "bad_source_id", value=source_id)
    if fmt not in READERS:
        return _failed(result, "unsupported_format", value=("." + file.rsplit(".", 1)[-1].lower()) if "." in file else file)
    with workers_forked(len(data) >= WORKERS_MIN_BYTES):
        return _checked(result, data, options, today, fmt)


#: From this size on, a file's phone work is begun in workers started before it is read (``workers_forked``).  A
#: smaller file rarely holds ``PROCESS_MIN_VALUES`` distinct numbers (100k generated rows, 10 MB, hold 8k), and
#: starting workers costs about 0.4 s; staging still forks them for one that does.
WORKERS_MIN_BYTES = 16_000_000


def _failed(result: SourceResult, rule: str, **kw: object) -> SourceResult:
    result.problems.append(problem(result.source_id, result.file, rule, **kw))  # type: ignore[arg-type]
    return result


def _checked(result: SourceResult, data: bytes, options: SourceOptions, today: dt.date, fmt: str) -> SourceResult:
    source_id, file = result.source_id, result.file
    table, extra_numbers = read_any(data, fmt, options)
    if table.error:
        return _failed(result, "unreadable_file", detail=table.error)
    if table.frame is None or table.empty:
        return _failed(result, "empty_file")
    result.raw = table.frame
    result.rows_read = len(table.frame)
    staged = stage_listings(table.frame, source_id, file, options)
    result.mapping = staged.mapping
    result.problems.extend(staged.problems)
    if staged.frame is None:
        return result
    for row, extra in zip(table.frame[ROW].tolist() if extra_numbers else [], extra_numbers, strict=False):
        if extra:  # numbers a HSDS package holds beyond phone and sms
            result.problems.append(problem(source_id, file, "extra_numbers", row=int(row), column="phone", value=extra))
    result.problems.extend(validate_listings(staged.frame, source_id, file, today, staged.columns))
    result.problems.sort(key=lambda p: (p.row if p.row is not None else -1, p.column or "", p.rule))
    result.accepted, result.rejected = split_rows(staged.frame, result.problems)
    return result
