"""Ingestion, the edge where sources are read: files, HSDS folders and URLs.

``ingest`` turns one source into a checked ``SourceResult`` and the bytes that were
read.  It never loses yesterday's data: a download that fails, is cut short or is
not what it should be leaves the source unusable for this run, so the warehouse
keeps its last good rows; a 304 reuses the last good snapshot.  A source whose
bytes, options and code are those of its last successful parse is not parsed again
(``fingerprint``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from curate import fetch as f
from curate.checking import SourceResult, check_source
from curate.problems import problem
from curate.sources import SourceFile

log = logging.getLogger(__name__)

#: A hash of the code that reads, stages and validates: a change of it re-parses every source.
CODE_VERSION = hashlib.sha256(
    b"".join(p.read_bytes() for d in ("curate", "schemas") for p in sorted((Path(__file__).parent.parent / d).glob("*.py")))
).hexdigest()[:16]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Previous:
    """What the warehouse knows of a source from earlier runs."""

    fingerprint: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    errors: int = 0
    warnings: int = 0
    #: for URL sources: the last good download and its validators
    good_sha256: str | None = None
    good_bytes: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Ingested:
    """One source after ingestion."""

    result: SourceResult
    data: bytes = b""
    origin: str = ""  # the path or URL the bytes came from
    fingerprint: str | None = None
    reused: bool = False  # unchanged since its last parse: not parsed again
    fetched: f.Fetched | None = None
    notes: list[str] = field(default_factory=list)


def package_zip(folder: Path) -> bytes:
    """A HSDS package folder as ZIP bytes, the same bytes for the same files (sorted, fixed times)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buf.getvalue()


def fingerprint(digest: str, source: SourceFile) -> str:
    """What a parse depends on: the bytes (``digest``: their sha256), the options and the code (ageing is worked out
    at export, not at parse)."""
    key = f"{digest}|{source.options!r}|{source.format}|{CODE_VERSION}"
    return hashlib.sha256(key.encode()).hexdigest()


def _size_problem(source: SourceFile, size: int, max_bytes: int) -> SourceResult:
    result = SourceResult(source.source_id, source.name, "")
    result.problems.append(
        problem(source.source_id, source.name, "file_too_large", value=f"{size / 1e6:.1f} MB", detail=f"{max_bytes / 1e6:.0f} MB")
    )
    return result


def read_local(source: SourceFile, max_bytes: int) -> tuple[bytes | None, SourceResult | None]:
    """The bytes of a file or HSDS folder, or the file-level result that refuses it."""
    assert source.path is not None
    paths = [p for p in source.path.rglob("*") if p.is_file()] if source.path.is_dir() else [source.path]
    size = sum(p.stat().st_size for p in paths)
    if size > max_bytes:
        return None, _size_problem(source, size, max_bytes)
    return (package_zip(source.path) if source.path.is_dir() else source.path.read_bytes()), None


def fetch_package(session: requests.Session, url: str, limits: f.FetchLimits) -> f.Fetched:
    """A HSDS package published as ``.../datapackage.json``: the descriptor and every resource it names, as ZIP bytes.

    Resource paths must be relative and stay below the descriptor's folder; the whole package is fetched
    every time (a 304 on the descriptor says nothing about its tables).
    """
    got = f.fetch(session, url, None, None, limits)
    if got.outcome != "new" or got.data is None:
        return got
    try:
        descriptor = json.loads(got.data.decode("utf-8-sig"))
        paths = [r["path"] for r in descriptor["resources"]]
    except (ValueError, KeyError, TypeError) as exc:
        return f.Fetched(
            "failed", http_status=got.http_status, final_url=got.final_url, error=f"the data package descriptor is not usable ({exc})"
        )
    files = {"datapackage.json": got.data}
    base = (got.final_url or url).rsplit("/", 1)[0] + "/"
    for path in paths:
        if not isinstance(path, str) or path.startswith("/") or ".." in path.split("/") or "://" in path:
            return f.Fetched(
                "failed", http_status=got.http_status, final_url=got.final_url, error=f"the resource path {path!r} is not a relative path"
            )
        part = f.fetch(session, base + path, "csv", None, limits)
        if part.outcome != "new" or part.data is None:
            return f.Fetched("failed", http_status=part.http_status, final_url=part.final_url, error=f"{path}: {part.error}")
        files[path] = part.data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), files[name])
    return f.Fetched("new", buf.getvalue(), got.http_status, content_type="application/zip", final_url=got.final_url,
                     elapsed_ms=got.elapsed_ms)  # fmt: skip


def download(source: SourceFile, previous: Previous, session: requests.Session, limits: f.FetchLimits) -> tuple[bytes | None, Ingested]:
    """Fetch a URL source: the bytes to parse (new, or the last good snapshot on a 304), or None when the download failed."""
    url = str(source.options.url)
    validators = f.Validators(previous.etag, previous.last_modified) if previous.good_bytes is not None else None
    if source.format == "hsds" and url.split("?", 1)[0].endswith(".json"):
        got = fetch_package(session, url, limits)
    else:
        got = f.fetch(session, url, source.format, validators, limits)
    ingested = Ingested(SourceResult(source.source_id, source.name, ""), origin=url, fetched=got)
    if got.outcome == "new" and got.data is not None:
        return got.data, ingested
    if got.outcome == "not_modified" and previous.good_bytes is not None:
        ingested.notes.append(f"{url}: not modified since the last download (304); its last good snapshot is used.")
        return previous.good_bytes, ingested
    rule = "download_failed_kept" if previous.good_sha256 else "download_failed"
    ingested.result.problems.append(problem(source.source_id, source.name, rule, value=url, detail=got.error or "no usable answer"))
    return None, ingested


def _reused(ingested: Ingested, source: SourceFile, previous: Previous, digest: str) -> Ingested:
    """``ingested`` (its bytes, their sha256 ``digest``, and its fingerprint read) as the source's last parse left it:
    not parsed again."""
    result = SourceResult(source.source_id, source.name, digest, priority=source.options.priority)
    result.rows_read = previous.rows_read
    ingested.result, ingested.reused = result, True
    return ingested


def unchanged_local(source: SourceFile, max_bytes: int, previous: Previous, reports_exist: bool = True) -> Ingested | None:
    """What ``ingest`` gives a local source unchanged since its last parse (its bytes, options and code), without
    parsing it; None for any other source (a URL, a file changed, too big or unreadable: ``ingest`` it)."""
    if source.path is None or previous.fingerprint is None or not reports_exist:
        return None
    try:
        data, _ = read_local(source, max_bytes)
        if data is None:
            return None
        digest = hashlib.sha256(data).hexdigest()
        if fingerprint(digest, source) != previous.fingerprint:
            return None
    except Exception:  # whatever went wrong is met again, and said, where the source is read in a task of its own
        return None
    ingested = Ingested(SourceResult(source.source_id, source.name, ""), data, str(source.path), previous.fingerprint)
    return _reused(ingested, source, previous, digest)


def ingest(
    source: SourceFile,
    today: dt.date,
    max_bytes: int,
    previous: Previous,
    session: requests.Session | None,
    limits: f.FetchLimits,
    reports_exist: bool = True,
) -> Ingested:
    """Read (or download) one source and check it, unless it is unchanged since its last parse."""
    if source.path is None:
        assert session is not None
        data, ingested = download(source, previous, session, limits)
        if data is None:
            return ingested
    else:
        data, refused = read_local(source, max_bytes)
        if data is None:
            assert refused is not None
            return Ingested(refused, origin=str(source.path))
        ingested = Ingested(SourceResult(source.source_id, source.name, ""), origin=str(source.path))
    ingested.data = data
    digest = hashlib.sha256(data).hexdigest()
    ingested.fingerprint = fingerprint(digest, source)
    if ingested.fingerprint == previous.fingerprint and reports_exist:
        return _reused(ingested, source, previous, digest)
    try:
        ingested.result = check_source(data, source.name, source.source_id, source.options, today, source.format)
    except Exception as exc:  # a bug met on one file must not stop the others: that source keeps its last good rows
        log.exception("reading %s failed", source.name)
        result = SourceResult(source.source_id, source.name, digest)
        detail = f"an unexpected error while reading it ({type(exc).__name__}); the maintainers have been told in the run's log"
        result.problems.append(problem(source.source_id, source.name, "unreadable_file", detail=detail))
        ingested.result, ingested.fingerprint = result, None
    return ingested
