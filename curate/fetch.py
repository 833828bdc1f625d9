"""Fetching a URL source: one HTTP(S) download with retries, a conditional GET, a size cap and a format check.

An edge module (it does network I/O).  ``fetch`` never raises for network or HTTP
problems: every outcome is a :class:`Fetched` whose ``error`` says in plain words
what went wrong, so the caller can keep the source's last good snapshot.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, DecodeError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

USER_AGENT = "support-directory/0.1 (+https://github.com/support-directory; directory curation)"

FORMATS = ("csv", "tsv", "xlsx", "json", "hsds")
_LABELS = {"csv": "CSV", "tsv": "TSV", "xlsx": "XLSX", "json": "JSON", "hsds": "an HSDS data package", None: "a data file"}
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 10
_MAX_RETRY_AFTER = 60  # seconds; a server's Retry-After beyond this is not honoured in full
_TEXT_SNIFF = 64 * 1024  # how much of a CSV/TSV is looked at for a delimiter
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls (and other MS Office binary files)


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_bytes: int = 50_000_000  # size cap of one download
    retries: int = 3  # urllib3 Retry total, on connect errors, read errors, resets and 500/502/503/504
    backoff: float = 0.5  # urllib3 Retry backoff_factor


@dataclass(frozen=True)
class Validators:
    """From the last good download, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Fetched:
    outcome: str  # "new" (body in data), "not_modified" (304: reuse the last good snapshot), "failed"
    data: bytes | None = None
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    final_url: str | None = None  # after redirects
    error: str = ""  # plain words for a curator/operator when failed
    elapsed_ms: int = 0


def make_session(limits: FetchLimits, pool_size: int = 4) -> requests.Session:
    """A session that retries connect errors, read errors, resets and 500/502/503/504 with backoff."""
    retry = Retry(
        total=limits.retries,
        connect=limits.retries,
        read=limits.retries,
        status=limits.retries,
        other=0,  # TLS failures and the like do not get better by asking again
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=limits.backoff,
        raise_on_status=False,
        respect_retry_after_header=True,
        retry_after_max=_MAX_RETRY_AFTER,
    )
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retry)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = _MAX_REDIRECTS
    return session


def fetch(session: requests.Session, url: str, fmt: str | None, validators: Validators | None, limits: FetchLimits) -> Fetched:
    """Download ``url`` once (with the session's retries); never raises for network or HTTP problems."""
    started = time.monotonic()
    result = _fetch(session, url, fmt, validators, limits)
    result.elapsed_ms = int((time.monotonic() - started) * 1000)
    return result


def _fetch(session: requests.Session, url: str, fmt: str | None, validators: Validators | None, limits: FetchLimits) -> Fetched:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return Fetched("failed", error=f"the address is not a valid URL ({exc})")
    if parts.scheme.lower() not in ("http", "https") or not host:
        shown = f"{parts.scheme}:" if parts.scheme else url[:60]
        return Fetched("failed", error=f"only http:// and https:// addresses can be downloaded, not {shown!r}")
    headers = {}
    if validators is not None and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators is not None and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    try:
        response = session.get(url.strip(), headers=headers, stream=True, timeout=(limits.connect_timeout, limits.read_timeout))
    except (requests.RequestException, Urllib3Error, OSError, ValueError) as exc:
        return Fetched("failed", error=_request_error(exc, limits))
    with response:
        result = Fetched(
            "failed",
            http_status=response.status_code,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            content_type=response.headers.get("Content-Type"),
            final_url=response.url,
        )
        if response.status_code == 304:
            if not headers:
                result.error = "the server answered 304 Not Modified to a request that was not conditional"
                return result
            result.outcome = "not_modified"
            return result
        if not 200 <= response.status_code < 300:
            result.error = _status_error(response)
            return result
        data, error = _read_body(response, limits)
    if data is None:
        result.error = error
        return result
    reason = check_format(data, fmt, result.content_type)
    if reason is not None:
        result.error = reason
        return result
    result.outcome = "new"
    result.data = data
    return result


def _read_body(response: requests.Response, limits: FetchLimits) -> tuple[bytes | None, str]:
    """The decoded body, or None and why.  Stops as soon as more than ``max_bytes`` arrived."""
    too_large = f"the file is larger than the {_size(limits.max_bytes)} limit"
    announced = _content_length(response)
    if announced is not None and announced > limits.max_bytes:
        return None, f"{too_large} (the server announced {_size(announced)})"
    raw = response.raw
    body = bytearray()
    try:
        # decode_content=True undoes a Content-Encoding (gzip, deflate) so ``data`` is the file itself;
        # the cap counts decoded bytes, so a small compressed bomb is stopped too.
        for chunk in raw.stream(_CHUNK, decode_content=True):
            body += chunk
            if len(body) > limits.max_bytes:
                return None, too_large
    except ReadTimeoutError:
        return None, f"the download timed out (nothing arrived for {limits.read_timeout:g} s in the middle of the file)"
    except DecodeError:
        return None, "the server sent a compressed file that could not be unpacked"
    except SSLError as exc:
        return None, f"the secure connection broke during the download ({exc})"
    except (ProtocolError, Urllib3Error, OSError):
        return None, _cut_short(raw.tell(), announced)
    # urllib3 already enforces Content-Length; this is a second guard.  tell() counts bytes on the wire,
    # so it compares with Content-Length whether or not the body was content-encoded.
    if announced is not None and raw.tell() < announced:
        return None, _cut_short(raw.tell(), announced)
    return bytes(body), ""


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    try:
        length = int(value.split(",")[0].strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _cut_short(got: int, announced: int | None) -> str:
    if announced is not None:
        return f"the download was cut short (got {got} of {announced} bytes)"
    return f"the download was cut short (the connection broke after {got} bytes)"


def _status_error(response: requests.Response) -> str:
    status = response.status_code
    reason = f" {response.reason}" if response.reason else ""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ()) or ()
    times = 1 + sum(1 for entry in history if getattr(entry, "status", None) == status)
    said = f"the server answered {status}{reason}"
    if times > 1:
        said += f" {times} times in a row"
    if status in (404, 410):
        said += " (the file is gone or its address changed)"
    elif status in (401, 403):
        said += " (access was refused)"
    elif status == 429:
        said += " (too many requests; try again later)"
    return said


def _request_error(exc: BaseException, limits: FetchLimits) -> str:
    """Plain words for an exception raised before a response arrived."""
    tries = limits.retries + 1
    after = f" after {tries} tries" if tries > 1 else ""
    if isinstance(exc, requests.TooManyRedirects):
        return f"the server redirected more than {_MAX_REDIRECTS} times (probably a redirect loop)"
    if isinstance(exc, requests.ConnectTimeout):
        return f"connecting to the server timed out (no answer within {limits.connect_timeout:g} s){after}"
    if isinstance(exc, requests.ReadTimeout):
        return f"the download timed out (no answer within {limits.read_timeout:g} s){after}"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "the download was redirected to an address that is not http:// or https://"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the secure connection (TLS) to the server failed: {_innermost(exc)}"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy refused or failed the download: {_innermost(exc)}"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.URLRequired, ValueError)):
        return f"the address is not a valid URL ({_innermost(exc)})"
    chain = list(_chain(exc))
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"could not connect to the server (connection refused){after}"
    if any(type(e).__name__ in ("NameResolutionError", "gaierror") for e in chain):
        return "could not find the server (its name does not resolve)"
    if any(isinstance(e, ReadTimeoutError) for e in chain):
        return f"the download timed out (no answer within {limits.read_timeout:g} s){after}"
    if any(type(e) is ConnectTimeoutError for e in chain):  # NewConnectionError is a subclass: not a timeout
        return f"connecting to the server timed out (no answer within {limits.connect_timeout:g} s){after}"
    if any(isinstance(e, TimeoutError) for e in chain):
        return f"the download timed out{after}"
    if any(isinstance(e, (ProtocolError, ConnectionResetError)) for e in chain):
        return f"the server closed the connection without answering{after}"
    if isinstance(exc, requests.ConnectionError):
        return f"could not connect to the server{after} ({_innermost(exc)})"
    return f"the download failed ({_innermost(exc)})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, a MaxRetryError's reason, exceptions in args)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def _innermost(exc: BaseException) -> str:
    """The message of the deepest wrapped exception: usually the one that says what happened."""
    last = exc
    for e in _chain(exc):
        if str(e):
            last = e
    return str(last) or type(last).__name__


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} kB"
    return f"{n} bytes"


# ---------------------------------------------------------------------------------------------------------------
# format check


def check_format(data: bytes, fmt: str | None, content_type: str | None) -> str | None:
    """None when ``data`` plausibly is ``fmt`` (None: any accepted format), else the plain-words reason."""
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            return f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})"
    expected = _LABELS[fmt]
    if not data.strip():
        return "the download was empty"
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        return f"expected {expected} but got a web page ({media})"
    if _looks_like_html(data):
        return f"expected {expected} but got a web page" + (f" (served as {media})" if media else "")
    if fmt is None:
        sniffed = _sniff(data)
        reason = _CHECKS[sniffed](data, _LABELS[sniffed])
        return None if reason is None else f"the download is not CSV, TSV, XLSX, JSON or an HSDS package: {reason}"
    return _CHECKS[fmt](data, expected)


def _text_start(data: bytes, size: int) -> bytes:
    """The start of ``data`` without a BOM and leading whitespace, UTF-16 recoded as UTF-8."""
    head = data[:size]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()


def _looks_like_html(data: bytes) -> bool:
    start = _text_start(data, 1024)[:14].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _sniff(data: bytes) -> str:
    if data.startswith(_ZIP_MAGIC):
        names = _zip_names(data)
        return "hsds" if names is not None and _datapackage(names) else "xlsx"
    if _text_start(data, 1024).startswith((b"[", b"{")):
        return "json"
    return "csv"


def _zip_names(data: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None


def _datapackage(names: list[str]) -> bool:
    """A datapackage.json at the top of the ZIP or inside its one top folder."""
    for name in names:
        path = PurePosixPath(name)
        if path.name == "datapackage.json" and len(path.parts) <= 2 and path.parts[0] != "__MACOSX":
            return True
    return False


def _check_text(data: bytes, expected: str, delimiters: bytes) -> str | None:
    if data.startswith(_ZIP_MAGIC):
        return f"expected {expected} but got a ZIP file (an Excel workbook or a zipped package?)"
    if data.startswith(_OLE_MAGIC):
        return f"expected {expected} but got an old Excel or Office file"
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in data[:4096]:
        return f"expected {expected} but got a binary file"
    head = _text_start(data, _TEXT_SNIFF)
    if not any(byte in line for line in head.splitlines() for byte in delimiters):
        shown = "a tab" if delimiters == b"\t" else "a delimiter (, ; tab or |)"
        return f"expected {expected} but no line holds {shown}"
    return None


def _check_csv(data: bytes, expected: str) -> str | None:
    # A CSV may use any delimiter the reader sniffs (European files use ";").
    return _check_text(data, expected, b",;\t|")


def _check_tsv(data: bytes, expected: str) -> str | None:
    return _check_text(data, expected, b"\t")


def _check_zip(data: bytes, expected: str) -> tuple[list[str] | None, str | None]:
    if data.startswith(_OLE_MAGIC):
        return None, f"expected {expected} but got an old Excel (.xls) or Office file; save it as .xlsx"
    if not data.startswith(_ZIP_MAGIC):
        return None, f"expected {expected} but the file is not a ZIP archive"
    names = _zip_names(data)
    if names is None:
        return None, f"expected {expected} but the ZIP archive is damaged or incomplete"
    return names, None


def _check_xlsx(data: bytes, expected: str) -> str | None:
    names, reason = _check_zip(data, expected)
    if names is not None and not any(name.startswith("xl/") for name in names):
        return f"expected {expected} but the ZIP archive holds no Excel workbook"
    return reason


def _check_hsds(data: bytes, expected: str) -> str | None:
    names, reason = _check_zip(data, expected)
    if names is not None and not _datapackage(names):
        return f"expected {expected} but the ZIP archive holds no datapackage.json"
    return reason


def _check_json(data: bytes, expected: str) -> str | None:
    try:
        value = json.loads(data)  # detects UTF-8 (with or without BOM), UTF-16 and UTF-32
    except (ValueError, UnicodeError) as exc:
        return f"expected {expected} but the file does not parse as JSON ({exc})"
    if isinstance(value, list):
        if all(isinstance(item, dict) for item in value):
            return None
        return f"expected {expected} holding a list of records (objects), but the list holds other values"
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(item, dict) for item in v)]
        if len(lists) == 1:
            return None
        if len(lists) > 1:
            return f"expected {expected} holding one list of records, but the object holds {len(lists)} lists"
        return f"expected {expected} holding a list of records, but the object holds none"
    return f"expected {expected} holding a list of records, but it holds a single {type(value).__name__} value"


_CHECKS = {"csv": _check_csv, "tsv": _check_tsv, "xlsx": _check_xlsx, "json": _check_json, "hsds": _check_hsds}
