"""How long building and checking a release takes, and how big it is, per listing count.

usage: python -m benchmarks.release_speed [LISTINGS ...]      (default: 10000 50000)
Prints one line per size: seconds to build every file, to run the mass-removal guard, to write and check
the release (publish: checksums, counts, JSON Schema, Frictionless, HSDS), and the release's size.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

import pycountry

from curate import export
from schemas.fields import LISTING_FIELDS


def generated(n: int, seed: int = 1) -> list[dict[str, object]]:
    """Invented listings over 60 countries (a few regions), 2% worldwide; reserved .example domains only."""
    rnd = random.Random(seed)
    countries = [c.alpha_2 for c in list(pycountry.countries)[:60]]
    out = []
    for i in range(n):
        c = rnd.choice(countries)
        areas = ["WW"] if i % 50 == 0 else [f"{c}-01"] if i % 7 == 0 else [c]
        x: dict[str, object] = {f: None for f in LISTING_FIELDS}
        x.update(id=f"lst_{i:012x}", name=f"Invented Line {i}", kind=rnd.choice(["helpline", "chat", "forum", "text_line"]),
                 url=f"https://line{i}.example/", areas=areas, languages=["en"], topics=["general"], audience=[],
                 moderation="unknown", cost="free", always_open=i % 3 == 0, link_status="unknown",
                 sources=[{"source": "bench", "record_id": str(i)}], first_seen="2026-11-25T03:00:00Z",
                 updated_at="2026-11-25T03:00:00Z")  # fmt: skip
        out.append(x)
    return sorted(out, key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [10_000, 50_000]:
        listings = generated(n)
        previous = listings[: n * 9 // 10]
        t0 = time.perf_counter()
        files = export.release_files(listings, None, previous)
        t1 = time.perf_counter()
        export.mass_removals(previous, listings)
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            export.publish(listings, Path(tmp), dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC), 14, {})
            t3 = time.perf_counter()
        size = sum(map(len, files.values())) / 1e6
        shown = sum(len(v) for k, v in files.items() if k.startswith("preview/")) / 1e6
        print(f"listings={n:>7}  build={t1 - t0:6.2f}s  guard={t2 - t1:5.2f}s  publish={t3 - t2:6.2f}s  "
              f"files={len(files)}  size={size:6.1f}MB  preview={shown:5.1f}MB")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
