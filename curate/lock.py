"""One writer at a time: an exclusive ``flock`` on ``<warehouse>.lock`` held for a whole run or export.

The kernel releases a ``flock`` when its holder dies, so a lock left by a killed run is recovered by the
next run without guessing from pids; the pid, host and start time written into the file only serve the
message a waiting run shows.  The lock file itself is never deleted (deleting it would let two runs lock
two different files).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse and did not let go within the wait allowed."""


def lock_path(warehouse_file: Path) -> Path:
    """``warehouse/directory.duckdb`` -> ``warehouse/directory.duckdb.lock``."""
    return warehouse_file.with_name(warehouse_file.name + ".lock")


def holder(path: Path) -> dict[str, object]:
    """What the current holder wrote into the lock file (empty when unknown)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def describe(info: dict[str, object]) -> str:
    if not info:
        return "another run"
    return f"run {info.get('what', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')})"


@contextmanager
def warehouse_lock(
    warehouse_file: Path,
    wait_seconds: float,
    what: str = "curate",
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 0.2,
) -> Iterator[Path]:
    """Hold the warehouse for the ``with`` block; wait up to ``wait_seconds`` for another holder, else raise
    :class:`WarehouseBusy` naming it."""
    path = lock_path(warehouse_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            busy = describe(holder(path))
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {warehouse_file} is being written by {busy}; waited {wait_seconds:g} s. "
                    f"Try again when it has finished (or raise CURATE_LOCK_WAIT to wait longer)."
                ) from None
            if not told and on_wait is not None:
                on_wait(f"the warehouse {warehouse_file} is being written by {busy}; waiting up to {wait_seconds:g} s for it to finish")
                told = True
            time.sleep(poll_seconds)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        info = {"what": what, "pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def current_holder(warehouse_file: Path) -> dict[str, object] | None:
    """Who holds the warehouse now (``{}`` when the holder left no note), or ``None`` when nobody does.

    Probes with a non-blocking lock taken and dropped at once; never waits."""
    path = lock_path(warehouse_file)
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            return holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
