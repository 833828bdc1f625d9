"""How long reading, staging (normalising) and validating take per row count.

usage: python -m benchmarks.validate_speed [ROWS ...]      (default: 10000 100000)
Prints one line per size: seconds to read, to stage, to validate, and peak memory.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time

from benchmarks.directory_gen import csv_bytes
from curate.read import read_table
from curate.sources import SourceOptions
from curate.stage import stage_listings
from curate.validate import validate_listings


def measure(n: int) -> dict[str, float]:
    data = csv_bytes(n)
    t0 = time.perf_counter()
    table = read_table(data, ".csv")
    t1 = time.perf_counter()
    assert table.frame is not None
    staged = stage_listings(table.frame, "bench", "bench.csv", SourceOptions())
    t2 = time.perf_counter()
    assert staged.frame is not None
    problems = validate_listings(staged.frame, "bench", "bench.csv", dt.date(2026, 11, 25))
    t3 = time.perf_counter()
    return {"rows": n, "read_s": t1 - t0, "stage_s": t2 - t1, "validate_s": t3 - t2, "problems": len(problems),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [10_000, 100_000]:
        m = measure(n)
        per_row = (m["stage_s"] + m["validate_s"]) / m["rows"] * 1e6
        print(f"rows={m['rows']:>8}  read={m['read_s']:6.2f}s  stage={m['stage_s']:6.2f}s  validate={m['validate_s']:6.2f}s  "
              f"({per_row:.0f} µs/row)  problems={m['problems']}  peak={m['peak_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
