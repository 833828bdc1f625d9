"""Prefect task caching for ingest: a local source whose bytes, options and warehouse state have not changed is
not read and checked again within a day (a retried or re-run flow, a burst of inbox runs).

The key covers everything ``ingest_source``'s result depends on: the source's full path and content (sha256 of the file, or of
every file of an HSDS folder), its options, the day (``verified`` ages), the warehouse's fingerprint of the
source, whether its report exists, and the size limit.  URL sources are not cached here: their freshness is
HTTP's business (conditional GET in ``curate.fetch``).  Results are kept in Prefect's local result storage
(``PREFECT_LOCAL_STORAGE_PATH``, by default ``$PREFECT_HOME/storage``) as ``ingest-<sha256>`` files; those older
than :data:`KEEP` are pruned at the start of each run.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import pickle
import time
from pathlib import Path
from typing import Any

from prefect.serializers import Serializer
from pydantic import Field

from curate import ingest
from curate.collector import collection_paused
from curate.sources import report_path


class IngestSerializer(Serializer):  # type: ignore[type-arg]
    """How an ingest result is written for the cache: the standard library's pickle in base64 of one line, where
    Prefect's default (``PickleSerializer``) takes cloudpickle's pure-Python pickler and base64 in lines of 76
    characters, which the record's JSON then escapes.  It runs in the thread that checks the sources, under the GIL:
    at 1M rows, writing the results took a fifth of the GIL's time while sources were ingested (``py-spy --gil``).
    A source checked in a worker process (``SourceResult.pickled``) is written with the bytes the worker pickled
    its result in, not pickled again.  What it writes holds only importable classes (dataclasses, frames, problems)."""

    type: str = Field(default="curate-ingest-pickle", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        result: Any = getattr(obj, "result", None)
        pickled = getattr(result, "pickled", None)
        if pickled is None:
            return base64.b64encode(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        result.pickled = None  # (written now: not held longer)
        apart = (_APART, dataclasses.replace(obj, result=None), pickled)
        return base64.b64encode(pickle.dumps(apart, protocol=pickle.HIGHEST_PROTOCOL))

    def loads(self, blob: bytes) -> Any:
        with collection_paused():  # (millions of cells and problems, none in a cycle)
            got = pickle.loads(base64.b64decode(blob))  # (only files this module's tasks wrote, in Prefect's storage)
            if isinstance(got, tuple) and len(got) == 3 and got[0] == _APART:
                got[1].result = pickle.loads(got[2])
                return got[1]
            return got


#: the mark of an ingest result written as the result without its checked source, and that source's own bytes
_APART = "curate-ingest-apart"


#: ``ingest_source``'s ``result_serializer``
SERIALIZER = IngestSerializer()

#: how long a cached ingest result is used, and kept on disk
EXPIRATION = dt.timedelta(hours=20)
KEEP = dt.timedelta(days=2)


def content_digest(path: Path) -> str:
    """sha256 of a file, or of an HSDS folder's files (names and bytes) in sorted order."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def ingest_cache_key(context: Any, inputs: dict[str, Any]) -> str | None:
    """The ``cache_key_fn`` of ``ingest_source``; ``None`` (no caching) for URL sources and unreadable files."""
    source, settings, previous = inputs["source"], inputs["settings"], inputs["previous"]
    if source.path is None:
        return None
    try:
        digest = content_digest(source.path)
    except OSError:
        return None  # let the task itself report the unreadable file
    report = report_path(settings.reports_dir, source.source_id).is_file()
    # (the code that reads, stages and validates: a result parsed by other code is not taken after an upgrade, which
    # ``previous.fingerprint`` does not tell when a run of other code parsed the same bytes after the same run)
    parts = [source.source_id, str(source.path.resolve()), digest, repr(source.options), str(inputs["today"]), str(previous.fingerprint),
             str(report), str(settings.max_source_bytes), ingest.CODE_VERSION]  # fmt: skip
    return "ingest-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def prune(folder: Path, keep: dt.timedelta = KEEP, now: float | None = None) -> int:
    """Delete cached ingest results (``ingest-*``) older than ``keep``; returns how many went."""
    if not folder.is_dir():
        return 0
    limit = (now if now is not None else time.time()) - keep.total_seconds()
    gone = 0
    for f in folder.iterdir():
        if f.name.startswith("ingest-") and f.is_file() and f.stat().st_mtime < limit:
            f.unlink(missing_ok=True)
            gone += 1
    return gone


def prune_prefect_storage(keep: dt.timedelta = KEEP) -> int:
    """Prune this module's entries (``ingest-*``) from Prefect's local result storage."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    return prune(Path(PREFECT_LOCAL_STORAGE_PATH.value()).expanduser(), keep)
