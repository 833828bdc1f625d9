"""``curate publish --to DEST``: copy the current release to a folder or an fsspec URL (``s3://bucket/dir``).

Readers of DEST start from ``manifest.json``, so it is written last: every file it names is
already there when it appears.  Files the previous manifest at DEST named and the new one
does not are removed only after the new manifest is in place; nothing else at DEST is
touched.  Files whose size and sha256 already match are not copied again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Published:
    release_id: str
    destination: str
    copied: int
    unchanged: int
    removed: int


def _filesystem(dest: str) -> tuple[object, str]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(dest)
    except (ImportError, ValueError) as exc:
        raise RuntimeError(f"cannot write to {dest}: {exc}. For s3:// install s3fs (pip install 'support-directory[s3]').") from exc
    return fs, str(root).rstrip("/")


def publish_release(release: Path, dest: str, progress: Callable[[str], None] = lambda path: None) -> Published:
    """Copy the release folder ``release`` to ``dest``, manifest last; returns what was done."""
    man = json.loads((release / MANIFEST).read_bytes())
    fs, root = _filesystem(dest)
    fs.makedirs(root, exist_ok=True)  # type: ignore[attr-defined]
    old_paths: set[str] = set()
    old_manifest = f"{root}/{MANIFEST}"
    if fs.exists(old_manifest):  # type: ignore[attr-defined]
        try:
            old = json.loads(fs.cat_file(old_manifest))  # type: ignore[attr-defined]
            old_paths = {str(f["path"]) for f in old.get("files", [])}
            old_sums = {str(f["path"]): str(f["sha256"]) for f in old.get("files", [])}
        except (ValueError, KeyError, TypeError):
            old_paths, old_sums = set(), {}
    else:
        old_sums = {}
    copied = unchanged = 0
    for entry in man["files"]:
        rel = str(entry["path"])
        target = f"{root}/{rel}"
        if old_sums.get(rel) == entry["sha256"] and fs.exists(target) and fs.size(target) == entry["bytes"]:  # type: ignore[attr-defined]
            unchanged += 1
            continue
        data = (release / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"{release / rel} does not match its manifest: the release is damaged, nothing more was copied")
        parent = target.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)  # type: ignore[attr-defined]
        fs.pipe_file(target, data)  # type: ignore[attr-defined]
        copied += 1
        progress(rel)
    fs.pipe_file(old_manifest, (release / MANIFEST).read_bytes())  # type: ignore[attr-defined]
    stale = sorted(old_paths - {str(f["path"]) for f in man["files"]})
    for rel in stale:
        if fs.exists(f"{root}/{rel}"):  # type: ignore[attr-defined]
            fs.rm_file(f"{root}/{rel}")  # type: ignore[attr-defined]
    return Published(str(man["release_id"]), dest, copied, unchanged, len(stale))
