"""A whole ``curate run --skip-links`` over generated directories of 100 curator files, stage by stage.

    .venv/bin/python -m benchmarks.run_bench [ROWS ...] [--files 100]      (default: 10000)

For each size, in a temporary folder, each step in a fresh process of its own (the runs start with no generator's or
DuckDB's heap behind them, as ``curate run`` does, and their peak memory is their own):

* the files, made by ``benchmarks.directory_gen.source_files``;
* the DuckDB floor: the same CSV files read by DuckDB alone and written to one table and to Parquet;
* Prefect's own start: a flow that does nothing, which starts Prefect's temporary local server;
* the first run (``flows.curate_run.configured``, as ``curate run --skip-links`` calls it): wall seconds, each
  stage's seconds (the union of its task runs' intervals, read back from Prefect), and Prefect's share of the
  wall (the time no task was running: orchestration, the flow's own code between tasks);
* a rerun after one source file changed (its first row's name edited), which reads only that file again.  That
  row is a worldwide service other files list too: at 100k rows the edit changed no listing;
* a second rerun after another file changed (the name of its first row of one country edited: at 100k rows one
  listing changed, and the release took the files of the 13 locations of 16 whose listings did not);
* each run's peak memory, sampled every 0.1 s from ``/proc`` by a process of its own: this process (its
  high-water mark, ``VmHWM``, reset before each run) and, apart, this process together with its worker processes
  (the fork server's phone and release workers); Prefect's temporary server is a process of its own and is not
  counted.

The files come from ``benchmarks.directory_gen.source_files`` (invented services, perturbed duplicates across
files, reserved ``.example`` domains).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _status_kb(pid: int | str, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """This process's children, theirs, and so on (from ``/proc/<pid>/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def _is_prefect_server(pid: int) -> bool:
    try:
        return b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class MemorySampler:
    """Peak memory of one run: this process's high-water mark (``VmHWM``, reset at the start where the kernel allows)
    and the largest sum of resident memory of this process and its worker processes seen every ``every`` seconds.

    The sums are taken by a process of its own (``--sample``): a thread of this one waits for the GIL, which a long
    call in C holds for seconds (orjson writing a 0.4 GB release file), and missed moments of the runs' peaks."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.most_kb = every, 0
        self._sampler: subprocess.Popen[str] | None = None

    def __enter__(self) -> MemorySampler:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
        command = [sys.executable, "-m", "benchmarks.run_bench", "--sample", str(os.getpid()), str(self.every)]
        self._sampler = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._sampler is not None
        out, _ = self._sampler.communicate("stop\n", timeout=60)
        self.most_kb = int(out.split()[-1])

    @property
    def process_mb(self) -> float:
        return _status_kb("self", "VmHWM") / 1024

    @property
    def with_workers_mb(self) -> float:
        return max(self.most_kb / 1024, self.process_mb)


def sample(pid: int, every: float) -> int:
    """The largest sum of the resident memory of ``pid`` and its descendants (this process and Prefect's server
    left out) seen every ``every`` seconds until a line comes on standard input; in kB."""
    me, most = os.getpid(), 0
    while not select.select([sys.stdin], [], [], every)[0]:
        kids = [k for k in _descendants(pid) if k != me and not _is_prefect_server(k)]
        most = max(most, _status_kb(pid, "VmRSS") + sum(_status_kb(k, "VmRSS") for k in kids))
    return most


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _stages(flow_run_id: Any) -> tuple[dict[str, float], float]:
    """Each task's seconds (the union of its runs' intervals) and the seconds covered by any task."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def task_runs(client: Any) -> list[Any]:
        runs: list[Any] = []
        while True:  # the API gives at most 200 at a time
            page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                return runs

    with get_client(sync_client=True) as client:
        # task runs reach the server as events, after the flow returns: read until every run read has ended and a
        # reading a second later finds no more (a 10k rerun's read at once came back without its core and release)
        runs, deadline = task_runs(client), time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            again = task_runs(client)
            if len(again) == len(runs) and all(r.end_time is not None for r in again):
                break
            runs = again
    by_task: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        by_task.setdefault(run.task_key.rsplit("-", 1)[0] if run.task_key else run.name, []).append(
            (run.start_time.timestamp(), run.end_time.timestamp())
        )
    every = [i for intervals in by_task.values() for i in intervals]
    return {k: _union_seconds(v) for k, v in by_task.items()}, _union_seconds(every)


def duckdb_floor(files: list[Path], work: Path) -> float:
    """Seconds for DuckDB alone to read the CSV files and write them to a table and to Parquet."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(work / "floor.duckdb"))
    names = [str(f) for f in files]
    con.execute("CREATE TABLE rows AS SELECT * FROM read_csv(?, all_varchar = true, union_by_name = true, filename = true)", [names])
    con.execute(f"COPY rows TO '{work / 'floor.parquet'}' (FORMAT parquet)")
    con.close()
    return time.perf_counter() - started


def make_files(folder: Path, rows: int, n_files: int) -> None:
    """The generated curator files of one size, in ``folder`` (a process of their own: its heap is not the runs')."""
    from benchmarks.directory_gen import source_files

    for name, (data, _) in source_files(rows, n_files).items():
        (folder / name).write_bytes(data)


def one(work: Path) -> dict[str, Any]:
    """The measurements of the runs over the files in ``work / "sources"`` (in a process of its own)."""
    from prefect import flow

    from curate.settings import Settings
    from flows.curate_run import configured, on_local_server

    sources = work / "sources"
    files = sorted(sources.glob("*.csv"))
    out: dict[str, Any] = {"files": len(files)}

    started = time.perf_counter()
    flow(name="bench-noop")(lambda: None)()
    out["prefect_start_s"] = time.perf_counter() - started

    settings = Settings.from_env(sources_dir=sources, exports_dir=work / "exports", warehouse_file=work / "warehouse" / "curate.duckdb")
    runner = configured(settings)
    for label, changed in (("first", None), ("rerun", (files[0], False)), ("rerun_national", (files[1 % len(files)], True))):
        if changed is not None:  # one row of one file renamed: that file is read again, the 99 others are not
            renamed(*changed)
        with MemorySampler() as memory:
            started = time.perf_counter()
            with on_local_server():  # (as ``curate run`` makes a run)
                state = runner(settings, skip_links=True, return_state=True)
            wall = time.perf_counter() - started
        summary = state.result()
        stages, busy = _stages(state.state_details.flow_run_id)
        out[label] = {"wall_s": wall, "stages": stages, "prefect_share": max(0.0, 1 - busy / wall), "peak_mb": memory.process_mb,
                      "peak_with_workers_mb": memory.with_workers_mb, "listings": summary.listings,
                      "rows_read": summary.rows_read}  # fmt: skip
    return out


def measured(rows: int, n_files: int) -> dict[str, Any] | str:
    """One size's measurements (``one``), each step in a child process; the error's words when one fails."""
    with tempfile.TemporaryDirectory(prefix="curate-run-bench-") as tmp:
        work = Path(tmp)
        (work / "sources").mkdir()
        steps = {"make": ["--make", str(work / "sources"), "--files", str(n_files), str(rows)],
                 "floor": ["--floor", str(work)], "one": ["--one", str(work)]}  # fmt: skip
        out: dict[str, Any] = {}
        for step, args in steps.items():
            child = subprocess.run([sys.executable, "-m", "benchmarks.run_bench", *args], capture_output=True, text=True, check=False)
            if child.returncode != 0:
                return f"{step} failed (exit {child.returncode})\n{child.stderr[-3000:]}"
            if step != "make":
                out.update(json.loads(child.stdout.strip().splitlines()[-1]))
        return {"rows": rows, **out}


def renamed(path: Path, national: bool) -> int:
    """Edit the name of one row of the CSV file ``path``: its first, or (``national``) its first whose country is not
    worldwide; returns that row's number (1 is the first after the header), 0 when none was found."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), [])
    names = [h.strip().lower() for h in header]
    at = names.index("country") if "country" in names else None
    for n, line in enumerate(lines[1:], start=1):  # (not ``national``: the first row, renamed and returned)
        if national:
            cells = next(csv.reader([line]), [])
            if at is None or at >= len(cells) or cells[at].strip().upper() in ("", "WW", "WORLDWIDE"):
                continue
        lines[n] = re.sub(r"^([^,]*,)", r"\1Renamed ", line, count=1)
        path.write_text("".join(lines), encoding="utf-8")
        return n
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="*", type=int, default=[10_000])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # a child making one size's files there
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # a child measuring the floor of the files there
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child measuring the runs over the files there
    parser.add_argument("--sample", nargs=2, help=argparse.SUPPRESS)  # a child sampling memory (MemorySampler)
    args = parser.parse_args(argv)
    if args.sample:
        print(sample(int(args.sample[0]), float(args.sample[1])))
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # the children inherit it
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.make:
        make_files(args.make, args.rows[0], args.files)
        return
    if args.floor:
        print(json.dumps({"floor_s": duckdb_floor(sorted((args.floor / "sources").glob("*.csv")), args.floor)}))
        return
    if args.one:
        print(json.dumps(one(args.one)))
        return
    for rows in args.rows:
        m = measured(rows, args.files)
        if isinstance(m, str):
            print(f"rows={rows}: {m}")
            continue
        first, rerun, national = m["first"], m["rerun"], m["rerun_national"]
        print(f"rows={rows:>8} files={m['files']}: curate run --skip-links {first['wall_s']:.1f} s "
              f"({first['wall_s'] / m['floor_s']:.0f}x the DuckDB floor of {m['floor_s']:.2f} s), Prefect share "
              f"{100 * first['prefect_share']:.0f}%, peak {first['peak_mb']:.0f} MB ({first['peak_with_workers_mb']:.0f} MB with its "
              f"workers); Prefect start {m['prefect_start_s']:.1f} s; "
              f"rerun with one file changed {rerun['wall_s']:.1f} s (Prefect share {100 * rerun['prefect_share']:.0f}%, "
              f"peak {rerun['peak_mb']:.0f} MB, {rerun['peak_with_workers_mb']:.0f} MB with its workers); "
              f"rerun with one national row of another file changed {national['wall_s']:.1f} s "
              f"(peak {national['peak_mb']:.0f} MB, {national['peak_with_workers_mb']:.0f} MB with its workers)")  # fmt: skip
        for label in ("first", "rerun", "rerun_national"):
            stages = sorted(m[label]["stages"].items(), key=lambda kv: -kv[1])
            print(f"  {label:14} stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages))


if __name__ == "__main__":
    main()
