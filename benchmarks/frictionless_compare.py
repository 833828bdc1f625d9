"""Checking a curator's CSV here against ``frictionless validate`` on the same file, side by side in one run.

usage: python -m benchmarks.frictionless_compare [ROWS ...]      (default: 100000)

Both are given the same generated file (``benchmarks.directory_gen``). Frictionless gets a Table Schema holding
the checks the two share, written from the field registry: ids unique, name required and capped in length,
the accepted spellings of the vocabularies (``kind``, ``cost``), http(s) URLs, capped descriptions, a country
code or name, the date formats staging reads, and a phone number's characters. It runs as its command-line tool,
in a process of its own, with no cap on the errors it reports. This project checks the file as ``curate check``
does (``checking.check_source``: read, stage, validate): far more checks than the shared ones, and it puts
the values right, which Frictionless does not do.
Prints one line per size: the seconds each took and the ratio.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pycountry

from benchmarks.directory_gen import csv_bytes
from curate.checking import check_source
from curate.sources import SourceOptions
from schemas.fields import BY_NAME
from schemas.vocabularies import COSTS, KINDS, Term

#: The date formats staging reads (``normalise.date``), as one pattern.
DATE_FORMATS = r"\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{4}|\d{1,2}/\d{1,2}/\d{4}"


def _spellings(vocabulary: dict[str, Term]) -> list[str]:
    """Every accepted spelling as written in the vocabulary (Frictionless compares exactly; staging folds case)."""
    return sorted({s for canonical, term in vocabulary.items() for s in (canonical, *term.synonyms)} | {""})


def table_schema() -> dict[str, object]:
    countries = sorted({c.alpha_2 for c in pycountry.countries} | {c.name for c in pycountry.countries} | {"WW", ""})
    countries += ["Norge", "Deutschland", "United Kingdom"]  # names staging reads beside English ones
    description_cap = BY_NAME["description"].max_length
    name_cap = BY_NAME["name"].max_length or 300

    def string(name: str, **constraints: object) -> dict[str, object]:
        return {"name": name, "type": "string", **({"constraints": constraints} if constraints else {})}

    return {
        "fields": [
            string("record_id", required=True, unique=True),
            string("name", required=True, maxLength=name_cap),
            string("kind", enum=_spellings(KINDS)),
            string("description", maxLength=description_cap),
            string("url", pattern=r"https?://\S+"),
            string("phone", pattern=r"\+?[0-9 ().-]{3,}"),
            string("sms", pattern=r"\+?[0-9 ().-]{3,}"),
            string("country", enum=countries),
            string("languages"),
            string("topics"),
            string("cost", enum=_spellings(COSTS)),
            string("hours"),
            string("verified_at", pattern=DATE_FORMATS),
        ]
    }


def measure(n: int, folder: Path) -> dict[str, float]:
    data = csv_bytes(n)
    (folder / "listings.csv").write_bytes(data)
    (folder / "schema.json").write_text(json.dumps(table_schema()), encoding="utf-8")
    start = time.perf_counter()
    result = check_source(data, "listings.csv", "bench", SourceOptions(), dt.date(2026, 11, 25), "csv")
    ours = time.perf_counter() - start
    command = [str(Path(sys.executable).parent / "frictionless"), "validate", "listings.csv", "--schema", "schema.json"]
    start = time.perf_counter()
    done = subprocess.run([*command, "--limit-errors", str(10 * n), "--json"], cwd=folder, capture_output=True, text=True)
    theirs = time.perf_counter() - start
    report = json.loads(done.stdout)
    errors = sum(len(task.get("errors", [])) for task in report.get("tasks", []))
    return {"rows": n, "ours": ours, "theirs": theirs, "our_problems": len(result.problems), "their_errors": errors}


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            m = measure(n, Path(tmp))
        print(f"rows={m['rows']:>8}  curate check (read, stage, validate)={m['ours']:6.2f}s  frictionless validate={m['theirs']:6.2f}s  "
              f"ratio={m['theirs'] / m['ours']:.1f}x  problems: ours={m['our_problems']} theirs={m['their_errors']}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
