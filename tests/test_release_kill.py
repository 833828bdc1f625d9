"""Atomicity under SIGKILL: real `curate export` / `curate run` processes are killed at every step of publishing
(and at an unannounced moment while a release is being written).  `current` must always point at a complete,
checked release, and the next run must clean up and publish by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate import export
from tests.test_flow import LATER, NOW, run, settings_for

CURATE = str(Path(sys.executable).parent / "curate")


def current_is_complete(exports: Path) -> str:
    """The id of the release ``current`` points at, after checking that it is complete and valid."""
    current = exports / "current"
    assert current.is_symlink(), "current is missing or not a symlink"
    folder = current.resolve()
    assert folder.is_dir() and not folder.name.startswith(export.PARTIAL_PREFIX)
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert export.verify(folder, man) == []
    return folder.name


def spawn(settings, command: str, **env: str) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    args = [CURATE, command, "--sources", str(settings.sources_dir), "--exports", str(settings.exports_dir)]
    args += ["--warehouse", str(settings.warehouse_file)]
    environment = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), **env}  # the session's test server
    return subprocess.Popen(args, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(check, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before the kill point: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the kill point was never reached")
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture
def published(prefect_harness, fixture_sources, tmp_path):
    settings = settings_for(tmp_path, fixture_sources)
    first = run(settings, NOW)
    return settings, first.release_id


@pytest.mark.parametrize("how", ["built", "taken", "patched"])
def test_killed_at_every_step_of_publishing_current_stays_whole_and_the_next_run_recovers(published, how):
    """``how``: each release built (``publish``), or, its listings being the current release's, made of that release's
    files (``publish_unchanged``; not when ``BUILT_BY`` is gone), or, one listing renamed in a source each time, that
    release's files patched (``patched.publish_patched``)."""
    settings, first = published
    exports = settings.exports_dir
    steps = ["writing", "written", "verified", "renamed", "linked", "switched"]
    seen = {first}
    for n, step in enumerate(steps):
        command = "run" if n == 0 or how == "patched" else "export"  # a whole pipeline run too, not only export
        if how == "built":
            (exports / export.BUILT_BY).unlink(missing_ok=True)
        if how == "patched":
            source = settings.sources_dir / "alpha_lines.csv"
            source.write_text(
                source.read_text(encoding="utf-8").replace("Harbour Listening Line", f"Harbour Listening Line {n}", 1), encoding="utf-8"
            )
        proc = spawn(settings, command, CURATE_PAUSE_AT=step)
        marker = exports / f".paused-{step}"
        wait_for(marker.exists, proc)
        kill(proc)
        marker.unlink()
        now_current = current_is_complete(exports)
        if step == "switched":
            assert now_current not in seen  # the switch had happened: the new, complete release is current
            inodes = {(exports / "releases" / rid / "listings.json").stat().st_ino for rid in (first, now_current)}
            assert len(inodes) == (1 if how == "taken" else 2)
            tables = {(exports / "releases" / rid / "hsds" / "taxonomies.csv").stat().st_ino for rid in (first, now_current)}
            assert len(tables) == (2 if how == "built" else 1)  # (a table patched is taken when its bytes did not change)
        else:
            assert now_current in seen, step  # the switch had not happened: still a release that was already current
        seen.add(now_current)
        if step in ("writing", "written", "verified"):
            assert list((exports / "releases").glob(export.PARTIAL_PREFIX + "*")), step  # the half-made one is there ...
        if step == "linked":
            assert list(exports.glob(".current-*"))  # ... as is the link that was never moved into place
    recovered = run(settings, LATER)  # the next run cleans up by itself
    assert recovered.held is None and current_is_complete(exports) == recovered.release_id
    assert not list((exports / "releases").glob(export.PARTIAL_PREFIX + "*"))
    assert not list(exports.glob(".current-*"))


def test_killed_at_an_unannounced_moment_while_writing(published):
    settings, first = published
    exports = settings.exports_dir
    (exports / export.BUILT_BY).unlink()  # (a release built whole: one taken from the release before is too quick to catch)
    proc = spawn(settings, "export")
    wait_for(lambda: any((exports / "releases").glob(export.PARTIAL_PREFIX + "*")), proc)  # as soon as writing starts
    kill(proc)
    assert current_is_complete(exports) == first
    recovered = run(settings, LATER)
    assert current_is_complete(exports) == recovered.release_id != first
    assert not list((exports / "releases").glob(export.PARTIAL_PREFIX + "*"))
