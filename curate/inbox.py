"""Curator drops: notice a file dropped or replaced in ``sources/`` and say when a burst of drops has settled.

:class:`InboxWatcher` is a small state machine over snapshots of the folder (name -> size, mtime); the caller
polls it with the current time.  A change starts a burst; the burst is *settled* once the folder has not changed
for ``settle_seconds`` (every file's size and time stable, so a file still being copied is not read half-written);
a settled burst gives exactly one run.  Reports the pipeline writes (``sources/reports/``), hidden files and
editors' lock and temporary files are not drops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Snapshot = dict[str, tuple[int, int]]

#: names that are never a curator's drop
IGNORED_DIRS = {"reports"}
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


def is_drop(relative: Path) -> bool:
    parts = relative.parts
    if not parts or parts[0] in IGNORED_DIRS:
        return False
    name = parts[-1]
    return not (any(p.startswith(".") for p in parts) or name.startswith("~$") or name.endswith(TEMP_SUFFIXES))


def snapshot(folder: Path) -> Snapshot:
    """Size and modification time of every curator file in ``folder`` (HSDS sub-folders included)."""
    seen: Snapshot = {}
    if not folder.is_dir():
        return seen
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if not is_drop(rel):
            continue
        try:
            st = path.stat()
        except OSError:  # gone between listing and stat: the next poll sees it
            continue
        if path.is_file():
            seen[rel.as_posix()] = (st.st_size, st.st_mtime_ns)
    return seen


@dataclass
class InboxWatcher:
    """``poll(snapshot, now)`` returns the changed names once a burst has settled, else an empty list."""

    settle_seconds: float
    last: Snapshot = field(default_factory=dict)
    #: names changed in the current burst, and when the folder last changed
    pending: set[str] = field(default_factory=set)
    changed_at: float | None = None

    def poll(self, current: Snapshot, now: float) -> list[str]:
        changed = {n for n in current.keys() | self.last.keys() if current.get(n) != self.last.get(n)}
        self.last = current
        if changed:
            self.pending |= changed
            self.changed_at = now
            return []
        if self.changed_at is not None and now - self.changed_at >= self.settle_seconds:
            done, self.pending, self.changed_at = sorted(self.pending), set(), None
            return done
        return []
