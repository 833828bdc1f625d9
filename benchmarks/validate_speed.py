"""How long reading, staging (normalising) and validating take per row count.

usage: python -m benchmarks.validate_speed [ROWS ...]      (default: 10000 100000)
Prints one line per size: wall seconds to read, to stage and to validate, the CPU seconds of each (this
process and its worker processes that have ended: steadier than wall time on a busy machine; the workers
``check_source`` starts before reading come from multiprocessing's fork server and are not counted), how much longer normalising
and validating take than reading, and peak memory.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.directory_gen import csv_bytes
from curate.checking import WORKERS_MIN_BYTES, read_any
from curate.sources import SourceOptions
from curate.stage import stage_listings
from curate.validate import validate_listings
from schemas.distinct import workers_forked


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and its CPU seconds."""
    cpu, wall = _cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall, _cpu() - cpu


def measure(n: int) -> dict[str, float]:
    data = csv_bytes(n)
    with workers_forked(len(data) >= WORKERS_MIN_BYTES):  # as ``check_source`` does, before reading
        return _measure(n, data)


def _measure(n: int, data: bytes) -> dict[str, float]:
    (table, _), read_s, read_cpu = timed(lambda: read_any(data, "csv", SourceOptions()))
    assert table.frame is not None
    staged, stage_s, stage_cpu = timed(lambda: stage_listings(table.frame, "bench", "bench.csv", SourceOptions()))
    assert staged.frame is not None
    today = dt.date(2026, 11, 25)
    problems, validate_s, validate_cpu = timed(lambda: validate_listings(staged.frame, "bench", "bench.csv", today, staged.columns))
    return {"rows": n, "read_s": read_s, "stage_s": stage_s, "validate_s": validate_s, "read_cpu": read_cpu, "stage_cpu": stage_cpu,
            "validate_cpu": validate_cpu, "problems": len(problems) + len(staged.problems),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [10_000, 100_000]:
        m = measure(n)
        extra = m["stage_s"] + m["validate_s"] - m["read_s"]
        print(f"rows={m['rows']:>8}  wall: read={m['read_s']:6.2f}s stage={m['stage_s']:6.2f}s validate={m['validate_s']:6.2f}s "
              f"(normalise+validate - read = {extra:+.2f}s)  cpu: read={m['read_cpu']:6.2f}s stage={m['stage_cpu']:6.2f}s "
              f"validate={m['validate_cpu']:6.2f}s  problems={m['problems']}  peak={m['peak_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
