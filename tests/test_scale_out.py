"""Scale-out: per-source ingest on a Dask LocalCluster with 2 workers gives byte-identical release files to the
thread runner (the manifest's timestamp aside)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from curate.settings import Settings
from tests.test_flow import NOW, release_files


def test_dask_local_cluster_gives_the_same_release_as_threads(prefect_harness, fixture_sources: Path, tmp_path: Path, monkeypatch) -> None:
    """On Dask, the cluster's workers check the sources: the run starts no worker processes of its own for them,
    however big they are (here: any size)."""
    from dask.distributed import Client, LocalCluster, get_task_stream
    from prefect_dask import DaskTaskRunner

    import flows.curate_run as cr
    from flows.curate_run import configured, curate_run, task_runner_for

    wanted: list[tuple[str, bool]] = []
    for name in ("checked_in_processes", "workers_forked"):
        real = getattr(cr, name)
        monkeypatch.setattr(cr, name, lambda want, _real=real, _name=name: wanted.append((_name, want)) or _real(want))
    monkeypatch.setattr(cr, "SHARED_WORKERS_MIN_BYTES", 0)

    (fixture_sources / "gamma.csv").write_text(  # a third source, so that the two workers share the work
        "record_id,name,kind,url,country,topics\ng1,Gamma Line,helpline,https://gamma.example/,NO,general\n", encoding="utf-8"
    )
    releases = {}
    for name in ("threads", "dask"):
        root = tmp_path / name
        sources = root / "sources"
        shutil.copytree(fixture_sources, sources)
        settings = Settings(sources_dir=sources, exports_dir=root / "exports", warehouse_file=root / "wh" / "d.duckdb", task_runner=name)
        if name == "threads":
            summary = configured(settings)(settings, now=NOW)
            assert wanted == [("checked_in_processes", True), ("workers_forked", False)]  # checked in processes here
            wanted.clear()
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                settings = dataclasses.replace(settings, dask_address=cluster.scheduler_address)
                runner = task_runner_for(settings)
                assert isinstance(runner, DaskTaskRunner)
                with Client(cluster) as client, get_task_stream(client) as stream:
                    summary = curate_run.with_options(task_runner=runner)(settings, now=NOW)
                assert len(cluster.workers) == 2
                keys = [str(t["key"]) for t in stream.data]
                # the three per-source ingest tasks and the link checks' host batches ran on the cluster's workers
                assert sum(k.startswith("ingest_source") for k in keys) == 3, keys
                assert any(k.startswith("check_link_batch") for k in keys), keys
                assert all(str(t["worker"]).startswith("tcp://127.0.0.1") for t in stream.data)
                assert wanted == [("checked_in_processes", False), ("workers_forked", False)]
        assert summary.release_id and summary.rows_read == 11
        files = release_files(settings.exports_dir / "current")
        manifest = json.loads(files.pop("manifest.json"))
        manifest.pop("generated_at")
        releases[name] = (files, manifest)
    assert releases["dask"][0].keys() == releases["threads"][0].keys()
    for path, data in releases["threads"][0].items():
        assert releases["dask"][0][path] == data, path
    assert releases["dask"][1] == releases["threads"][1]


def test_task_runner_setting() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.curate_run import task_runner_for

    assert Settings.from_env({}).task_runner == "threads"
    assert isinstance(task_runner_for(Settings.from_env({"CURATE_WORKERS": "3"})), ThreadPoolTaskRunner)
    dask = Settings.from_env({"CURATE_TASK_RUNNER": "Dask", "CURATE_DASK_ADDRESS": "tcp://10.0.0.5:8786"})
    runner = task_runner_for(dask)
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match="CURATE_TASK_RUNNER"):
        Settings.from_env({"CURATE_TASK_RUNNER": "spark"})


def test_duckdb_memory_is_capped_as_set(tmp_path: Path) -> None:
    from curate import warehouse as wh

    assert Settings.from_env({}).duckdb_memory == "2GB"
    assert Settings.from_env({"CURATE_DUCKDB_MEMORY": " 512MiB "}).duckdb_memory == "512MiB"
    assert Settings.from_env({"CURATE_DUCKDB_MEMORY": ""}).duckdb_memory == ""  # DuckDB's own default
    for bad in ("lots", "2 G", "-1GB", "2GB; DROP TABLE x"):
        with pytest.raises(ValueError, match="CURATE_DUCKDB_MEMORY"):
            Settings.from_env({"CURATE_DUCKDB_MEMORY": bad})
    con = wh.connect(tmp_path / "w.duckdb", "512MiB")
    capped = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.close()
    con = wh.connect(tmp_path / "w.duckdb")
    default = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.close()
    assert capped == "512.0 MiB" and capped != default


def test_a_run_opens_the_warehouse_with_the_memory_set(prefect_harness, fixture_sources: Path, tmp_path: Path, monkeypatch) -> None:
    from curate import warehouse as wh
    from tests.test_flow import run, settings_for

    limits: list[str] = []
    connect = wh.connect

    def recorded(path: Path, memory_limit: str = "") -> object:
        limits.append(memory_limit)
        return connect(path, memory_limit)

    monkeypatch.setattr(wh, "connect", recorded)
    summary = run(dataclasses.replace(settings_for(tmp_path, fixture_sources), duckdb_memory="768MiB"), NOW)
    assert summary.release_id and len(limits) >= 4 and set(limits) == {"768MiB"}


def test_a_big_run_checks_its_sources_in_worker_processes_and_a_single_big_source_with_phone_workers(
    prefect_harness, fixture_sources: Path, tmp_path: Path, monkeypatch
) -> None:
    """Ingest runs in threads.  When a run's sources are big enough (here: any size), several sources are checked in
    worker processes started for the run, each source whole, two given to each worker at once; a single source to
    check has its phone numbers parsed in worker processes beside it.  Either way the release is the one a run
    without workers makes."""
    from concurrent.futures import ProcessPoolExecutor

    import flows.curate_run as cr
    from schemas import distinct
    from tests.test_flow import run, settings_for

    pools: list[object] = []
    sent: list[str] = []

    class Recording(ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self)

        def map(self, fn, *iterables, **kwargs):
            sent.append(fn.__name__)
            return super().map(fn, *iterables, **kwargs)

        def submit(self, fn, /, *args, **kwargs):
            if hasattr(fn, "__name__"):  # (not ``map``'s chunks)
                sent.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(distinct, "ProcessPoolExecutor", Recording)
    monkeypatch.setattr(distinct, "SHARED_MIN_VALUES", 1)
    monkeypatch.setattr(distinct, "_cpus", lambda: 2)
    limits: list[int] = []
    gate = cr.checked_at_most
    monkeypatch.setattr(cr, "checked_at_most", lambda n: limits.append(n) or gate(n))
    releases = {}
    for kept, name, least in (("both", "big", 0), ("both", "small", 10**12), ("one", "big", 0), ("one", "small", 10**12)):
        monkeypatch.setattr(cr, "SHARED_WORKERS_MIN_BYTES", least)
        sources = tmp_path / kept / name / "sources"
        shutil.copytree(fixture_sources, sources)
        if kept == "one":
            (sources / "beta_lines.tsv").unlink()
        summary = run(settings_for(tmp_path / kept / name, sources), NOW)
        releases[kept, name] = release_files(Path(summary.release_path))
        if (kept, name) == ("both", "big"):  # one pool for the run, each source checked whole in it
            assert len(pools) == 1 and sent.count("_checked_in_worker") == 2 and "phone_in_country" not in sent
            assert limits[-1] == cr.CHECKED_PER_PROCESS * 2
        elif (kept, name) == ("one", "big"):  # one pool for its numbers, beside this process
            assert len(pools) == 1 and sent.count("phone_in_country") >= 1 and "_checked_in_worker" not in sent
            assert limits[-1] == cr.CHECKED_WITH_WORKERS
        else:
            assert not pools and not sent and limits[-1] == 1  # too small: checked in the threads, one at a time
        pools.clear(), sent.clear()
    assert releases["both", "big"] == releases["both", "small"]
    assert releases["one", "big"] == releases["one", "small"]


@pytest.mark.parametrize("limit", [1, 2, None])
def test_checked_at_most_lets_that_many_sources_be_checked_at_once(monkeypatch, limit: int | None) -> None:
    """Inside ``checked_at_most(n)``, threads started with the block's context check at most ``n`` sources at once
    (each waits its turn and is still checked); outside it, as many as there are threads."""
    import contextlib
    import contextvars
    import datetime as dt
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from curate import checking
    from curate.sources import SourceOptions

    lock, now, most = threading.Lock(), [0], [0]

    def checked(result, data, options, today, fmt):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        result.rows_read = len(data)
        return result

    monkeypatch.setattr(checking, "_checked_source", checked)
    with checking.checked_at_most(limit) if limit else contextlib.nullcontext(), ThreadPoolExecutor(4) as pool:
        args = [(b"x" * i, f"s{i}.csv", f"s{i}", SourceOptions(), dt.date(2026, 12, 3), "csv") for i in range(1, 5)]
        futures = [pool.submit(contextvars.copy_context().run, checking.check_source, *a) for a in args]
        results = [f.result() for f in futures]
    assert [r.rows_read for r in results] == [1, 2, 3, 4] and all(r.sha256 for r in results)
    assert most[0] == limit if limit else most[0] >= 2
