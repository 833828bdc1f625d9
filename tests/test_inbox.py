"""Curator drops: debounce, size-stable files, one run per burst, reports and temporary files ignored."""

from __future__ import annotations

from pathlib import Path

from curate.inbox import InboxWatcher, is_drop, snapshot


def test_a_burst_of_drops_settles_once() -> None:
    w = InboxWatcher(settle_seconds=5, last={"a.csv": (10, 1)})
    assert w.poll({"a.csv": (10, 1)}, 0) == []  # nothing changed
    assert w.poll({"a.csv": (10, 1), "b.csv": (100, 2)}, 1) == []  # b dropped ...
    assert w.poll({"a.csv": (10, 1), "b.csv": (200, 3)}, 3) == []  # ... still being copied: it grew
    assert w.poll({"a.csv": (20, 4), "b.csv": (200, 3)}, 5) == []  # a replaced in the same burst
    assert w.poll({"a.csv": (20, 4), "b.csv": (200, 3)}, 9) == []  # quiet for 4 s only
    assert w.poll({"a.csv": (20, 4), "b.csv": (200, 3)}, 10) == ["a.csv", "b.csv"]  # settled: one run
    assert w.poll({"a.csv": (20, 4), "b.csv": (200, 3)}, 30) == []  # and only one


def test_a_removed_file_is_a_change_too() -> None:
    w = InboxWatcher(settle_seconds=1, last={"a.csv": (10, 1)})
    assert w.poll({}, 0) == [] and w.poll({}, 1) == ["a.csv"]


def test_snapshot_sees_curator_files_only(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "a.html").write_text("report")
    (tmp_path / "hsds").mkdir()
    (tmp_path / "hsds" / "services.csv").write_text("x")
    for name in ("a.csv", ".hidden.csv", "~$a.xlsx", "b.csv.part", "c.xlsx~"):
        (tmp_path / name).write_text("x")
    assert set(snapshot(tmp_path)) == {"a.csv", "hsds/services.csv"}
    assert snapshot(tmp_path / "missing") == {}
    assert not is_drop(Path("reports/x.rejected.csv")) and is_drop(Path("sources.toml"))
