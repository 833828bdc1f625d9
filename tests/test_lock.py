"""One writer: the warehouse lock between real processes, a killed holder, and `curate run` refusing to share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.lock import WarehouseBusy, holder, lock_path, warehouse_lock
from curate.settings import Settings

HOLD = """
import sys, time
from pathlib import Path
from curate.lock import warehouse_lock
with warehouse_lock(Path(sys.argv[1]), 0, "holder-test"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def hold(warehouse: Path, seconds: float) -> subprocess.Popen[str]:
    """A real second process that takes the lock and keeps it for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_gives_up_naming_the_holder(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh" / "directory.duckdb"
    proc = hold(warehouse, 30)
    try:
        start = time.monotonic()
        with pytest.raises(WarehouseBusy) as err, warehouse_lock(warehouse, 0.6, "second"):
            pytest.fail("the lock was taken twice")
        assert time.monotonic() - start >= 0.5  # it waited as allowed
        message = str(err.value)
        assert f"pid {proc.pid}" in message and "holder-test" in message and "CURATE_LOCK_WAIT" in message
        assert holder(lock_path(warehouse))["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    warehouse = tmp_path / "directory.duckdb"
    proc = hold(warehouse, 1.0)
    told: list[str] = []
    try:
        with warehouse_lock(warehouse, 30, "second", told.append):
            assert holder(lock_path(warehouse))["pid"] == os.getpid()
            assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert len(told) == 1 and f"pid {proc.pid}" in told[0] and "waiting up to 30 s" in told[0]


def test_a_lock_left_by_a_killed_process_is_recovered(tmp_path: Path) -> None:
    warehouse = tmp_path / "directory.duckdb"
    proc = hold(warehouse, 60)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert holder(lock_path(warehouse))["pid"] == proc.pid  # the dead run's note is still there ...
    with warehouse_lock(warehouse, 0, "next"):  # ... but the kernel let go of its lock
        assert holder(lock_path(warehouse))["what"] == "next"
    assert lock_path(warehouse).read_text() == ""  # released cleanly: no stale holder note


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    warehouse = tmp_path / "directory.duckdb"
    with pytest.raises(RuntimeError), warehouse_lock(warehouse, 0):
        raise RuntimeError("boom")
    with warehouse_lock(warehouse, 0):
        pass


def test_lock_wait_setting_comes_from_the_environment() -> None:
    assert Settings.from_env({"CURATE_LOCK_WAIT": "2.5"}).lock_wait_seconds == 2.5
    assert Settings.from_env({}).lock_wait_seconds == Settings().lock_wait_seconds
    with pytest.raises(ValueError, match="CURATE_LOCK_WAIT"):
        Settings.from_env({"CURATE_LOCK_WAIT": "soon"})


def test_curate_run_exits_1_while_another_process_writes(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    warehouse = tmp_path / "wh" / "directory.duckdb"
    proc = hold(warehouse, 60)
    try:
        curate = str(Path(sys.executable).parent / "curate")
        args = [curate, "run", "--sources", str(fixture_sources), "--exports", str(tmp_path / "exports"), "--warehouse", str(warehouse)]
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "CURATE_LOCK_WAIT": "0", "COLUMNS": "250"}
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 1, done.stderr[-2000:]
    assert "is being written by run holder-test" in done.stderr and f"pid {proc.pid}" in done.stderr
    assert not (tmp_path / "exports" / "current").exists()  # it wrote nothing


def test_curate_run_with_a_bad_lock_wait_exits_2(fixture_sources: Path, tmp_path: Path) -> None:
    curate = str(Path(sys.executable).parent / "curate")
    env = {**os.environ, "CURATE_LOCK_WAIT": "soon"}
    done = subprocess.run([curate, "run", "--sources", str(fixture_sources), "--exports", str(tmp_path / "x")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "CURATE_LOCK_WAIT" in done.stderr


def test_a_killed_run_leaves_the_lock_free_and_the_next_run_succeeds(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    """A real `curate run` killed while it holds the lock (paused in publishing): a second run is told who holds
    it while it lives; after the kill the next run takes the lock, publishes, and status shows the dead run."""
    from curate.status import gather
    from tests.test_flow import NOW
    from tests.test_release_kill import current_is_complete, kill, spawn, wait_for

    settings = Settings(sources_dir=fixture_sources, exports_dir=tmp_path / "exports", warehouse_file=tmp_path / "wh" / "d.duckdb")
    settings.exports_dir.mkdir()
    proc = spawn(settings, "run", CURATE_PAUSE_AT="writing")
    wait_for((settings.exports_dir / ".paused-writing").exists, proc)
    with pytest.raises(WarehouseBusy, match=f"pid {proc.pid}"), warehouse_lock(settings.warehouse_file, 0):
        pass
    during = gather(settings.warehouse_file, settings.exports_dir, "0 3 * * *", "UTC", None, NOW)
    assert during.running and f"pid {proc.pid}" in during.running  # DuckDB lets no reader in while a run writes:
    assert (during.runs, during.runs_note.startswith("the warehouse cannot be read right now")) == ([], True)  # said so
    kill(proc)
    from tests.test_flow import run

    summary = run(settings, NOW)  # takes the lock at once: the kernel released the dead run's
    assert summary.release_id and current_is_complete(settings.exports_dir) == summary.release_id
    runs = gather(settings.warehouse_file, settings.exports_dir, "0 3 * * *", "UTC", None, NOW).runs
    assert sorted(r.outcome for r in runs) == ["failed (did not finish)", "published"]
