"""The benchmarks' own arithmetic (the benchmarks themselves run behind ``make bench``, never as timed tests)."""

from __future__ import annotations

import pytest

from benchmarks.run_bench import _union_seconds


@pytest.mark.parametrize(
    ("intervals", "seconds"),
    [
        ([], 0.0),
        ([(0.0, 2.0)], 2.0),
        ([(0.0, 2.0), (1.0, 3.0)], 3.0),  # overlapping task runs (ingest in threads) count once
        ([(0.0, 5.0), (1.0, 2.0)], 5.0),  # one inside another
        ([(4.0, 6.0), (0.0, 1.0)], 3.0),  # a gap: the time no task ran (Prefect's share) is not counted
        ([(0.0, 1.0), (1.0, 2.0), (3.0, 3.5)], 2.5),
    ],
)
def test_union_of_task_intervals(intervals, seconds):
    assert _union_seconds(intervals) == pytest.approx(seconds)


def test_frictionless_is_given_the_checks_both_share(tmp_path):
    """The comparison is fair only if Frictionless's Table Schema flags what this project's checks flag where they overlap."""
    import csv
    import datetime as dt
    import io

    from frictionless import Resource, Schema

    from benchmarks.directory_gen import HEADER
    from benchmarks.frictionless_compare import table_schema
    from curate.checking import check_source
    from curate.sources import SourceOptions

    good = ["r1", "Fjordhjelp", "helpline", "Support.", "https://fjordhjelp.example/", "22 40 00 40", "", "NO", "en", "", "free"]
    bad = ["r2", "", "not a kind", "Support.", "javascript:alert(1)", "22 40 00 40", "", "Narnia", "en", "", "priceless"]
    good, bad = [*good, "", "2026-01-15"], [*bad, "", "someday"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, good, bad])
    (tmp_path / "listings.csv").write_text(buffer.getvalue(), encoding="utf-8")
    report = Resource("listings.csv", basepath=str(tmp_path), schema=Schema.from_descriptor(table_schema())).validate()
    theirs = {(e.row_number, e.field_name) for e in report.tasks[0].errors}
    checked = check_source(buffer.getvalue().encode(), "listings.csv", "s", SourceOptions(), dt.date(2026, 11, 25))
    ours = {(p.row, p.column) for p in checked.problems}
    shared = {(3, "name"), (3, "kind"), (3, "url"), (3, "country"), (3, "cost"), (3, "verified_at")}
    assert shared <= theirs and shared <= ours
    assert not {(row, field) for row, field in theirs if row == 2}  # the good row passes Frictionless too


def test_the_memory_sampler_counts_worker_processes_and_this_process():
    """The run's peak memory counts the worker processes it starts, not only this process."""
    import subprocess
    import sys
    import time

    from benchmarks.run_bench import MemorySampler

    holds = "import time; x = bytearray(300 * 1024 * 1024); x[::4096] = b'x' * len(x[::4096]); time.sleep(1.5)"
    with MemorySampler(every=0.05) as memory:
        worker = subprocess.Popen([sys.executable, "-c", holds])
        kept = bytearray(100 * 1024 * 1024)
        kept[::4096] = b"y" * len(kept[::4096])  # touched: resident
        time.sleep(1.2)
        worker.wait()
    assert memory.process_mb >= 100  # this process's high-water mark holds its own 100 MB
    assert memory.with_workers_mb >= memory.process_mb + 250  # and the worker's 300 MB are counted beside it
    del kept


def test_stages_wait_for_task_runs_that_reach_the_server_late(monkeypatch):
    """Task runs reach Prefect's server as events after the flow returns: the stages are read until two readings
    agree, so a stage that lands a moment late is counted."""
    import datetime as dt
    from types import SimpleNamespace

    import prefect

    from benchmarks import run_bench

    at = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)

    def run(key: str, start: float, end: float | None) -> SimpleNamespace:
        return SimpleNamespace(task_key=f"{key}-abc", name=key, start_time=at + dt.timedelta(seconds=start),
                               end_time=None if end is None else at + dt.timedelta(seconds=end))  # fmt: skip

    readings = [
        [run("ingest_source", 0, 2)],
        [run("ingest_source", 0, 2), run("build_core", 2, None)],
        [run("ingest_source", 0, 2), run("build_core", 2, 5), run("export_release", 5, 9)],
    ]

    class Client:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read_task_runs(self, **kwargs):
            return readings.pop(0) if len(readings) > 1 else readings[0]

    monkeypatch.setattr(prefect, "get_client", lambda **kwargs: Client())
    stages, busy = run_bench._stages("0b7c5a8e-4f1d-4a57-9a3e-2f6c1d9e8b10")
    assert stages == {"ingest_source": 2.0, "build_core": 3.0, "export_release": 4.0}
    assert busy == 9.0


def test_the_bench_renames_the_first_row_or_the_first_national_one(tmp_path):
    from benchmarks.run_bench import renamed

    path = tmp_path / "s.csv"
    text = 'record_id,name,Country\nr1,Everywhere,WW\nr2,"Quoted, name",\nr3,Oslo line,NO\nr4,Other,SE\n'
    path.write_text(text, encoding="utf-8")
    assert renamed(path, national=True) == 3
    assert path.read_text(encoding="utf-8") == text.replace("r3,Oslo", "r3,Renamed Oslo")
    assert renamed(path, national=False) == 1
    assert path.read_text(encoding="utf-8").splitlines()[1] == "r1,Renamed Everywhere,WW"
    path.write_text("record_id,name,country\nr1,Everywhere,WW\n", encoding="utf-8")
    assert renamed(path, national=True) == 0 and path.read_text(encoding="utf-8").endswith("r1,Everywhere,WW\n")
