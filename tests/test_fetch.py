"""curate.fetch against a loopback HTTP server (127.0.0.1 only, never the internet), and check_format on its own."""

from __future__ import annotations

import gzip
import io
import json
import socket
import time
import zipfile
from collections.abc import Iterator

import pytest
import requests

from curate.fetch import FetchLimits, Validators, check_format, fetch, make_session
from tests.loopback import _Handler, _Server, reply, reply_chunked, serving

CSV = b"name,kind,country,url\nFjordhjelp,helpline,NO,https://fjordhjelp.example\n"
HTML = b"<!DOCTYPE html>\n<html><head><title>Log in</title></head><body>Please log in</body></html>\n"
FAST = FetchLimits(connect_timeout=2.0, read_timeout=2.0, retries=2, backoff=0.01)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serving() as srv:
        yield srv


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = make_session(FAST)
    try:
        yield s
    finally:
        s.close()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------------
# conditional GET


def test_etag_second_fetch_is_one_304(server: _Server, session: requests.Session) -> None:
    @server.route("/list.csv")
    def _(h: _Handler, n: int) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            reply(h, 304, headers={"ETag": '"v1"', "Content-Length": "0"})
        else:
            reply(h, 200, CSV, {"ETag": '"v1"'})

    first = fetch(session, server.url("/list.csv"), "csv", None, FAST)
    assert (first.outcome, first.data, first.http_status, first.etag) == ("new", CSV, 200, '"v1"')
    assert first.content_type == "text/csv; charset=utf-8"
    assert first.final_url == server.url("/list.csv")
    assert "If-None-Match" not in server.seen["/list.csv"][0]
    assert server.seen["/list.csv"][0]["User-Agent"].startswith("support-directory/")

    second = fetch(session, server.url("/list.csv"), "csv", Validators(etag=first.etag), FAST)
    assert (second.outcome, second.data, second.http_status, second.error) == ("not_modified", None, 304, "")
    assert server.counts["/list.csv"] == 2  # exactly one request for the second fetch
    assert server.seen["/list.csv"][1]["If-None-Match"] == '"v1"'


def test_last_modified_second_fetch_is_one_304(server: _Server, session: requests.Session) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    @server.route("/list.csv")
    def _(h: _Handler, n: int) -> None:
        if h.headers.get("If-Modified-Since") == stamp:
            reply(h, 304, headers={"Content-Length": "0"})
        else:
            reply(h, 200, CSV, {"Last-Modified": stamp})

    first = fetch(session, server.url("/list.csv"), "csv", Validators(), FAST)
    assert (first.outcome, first.data, first.last_modified, first.etag) == ("new", CSV, stamp, None)
    assert "If-Modified-Since" not in server.seen["/list.csv"][0]

    second = fetch(session, server.url("/list.csv"), "csv", Validators(last_modified=first.last_modified), FAST)
    assert (second.outcome, second.data, second.http_status) == ("not_modified", None, 304)
    assert server.counts["/list.csv"] == 2
    assert server.seen["/list.csv"][1]["If-Modified-Since"] == stamp


def test_changed_upstream_answers_200_despite_validators(server: _Server, session: requests.Session) -> None:
    @server.route("/list.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, CSV, {"ETag": '"v2"'})

    got = fetch(session, server.url("/list.csv"), "csv", Validators(etag='"v1"'), FAST)
    assert (got.outcome, got.data, got.etag) == ("new", CSV, '"v2"')


def test_304_to_an_unconditional_request_is_not_trusted(server: _Server, session: requests.Session) -> None:
    @server.route("/odd.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 304, headers={"Content-Length": "0"})

    got = fetch(session, server.url("/odd.csv"), "csv", None, FAST)
    assert got.outcome == "failed"
    assert "304" in got.error


# ---------------------------------------------------------------------------------------------------------------
# retries and status codes


def test_500_then_200_is_retried(server: _Server, session: requests.Session) -> None:
    @server.route("/flaky.csv")
    def _(h: _Handler, n: int) -> None:
        if n == 1:
            reply(h, 500, b"oops", {"Content-Type": "text/plain"})
        else:
            reply(h, 200, CSV)

    got = fetch(session, server.url("/flaky.csv"), "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status, got.error) == ("new", CSV, 200, "")
    assert server.counts["/flaky.csv"] == 2


def test_always_503_fails_after_all_retries(server: _Server, session: requests.Session) -> None:
    @server.route("/down.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 503, b"maintenance", {"Content-Type": "text/plain"})

    got = fetch(session, server.url("/down.csv"), "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, 503)
    assert server.counts["/down.csv"] == FAST.retries + 1
    assert "503" in got.error
    assert f"{FAST.retries + 1} times" in got.error


def test_404_fails_at_once(server: _Server, session: requests.Session) -> None:
    got = fetch(session, server.url("/missing.csv"), "csv", None, FAST)
    assert (got.outcome, got.http_status) == ("failed", 404)
    assert "404" in got.error and "times" not in got.error
    assert server.counts["/missing.csv"] == 1


def test_no_answer_within_read_timeout(server: _Server) -> None:
    limits = FetchLimits(connect_timeout=1.0, read_timeout=0.5, retries=1, backoff=0.01)

    @server.route("/slow.csv")
    def _(h: _Handler, n: int) -> None:
        time.sleep(1.5)
        reply(h, 200, CSV)

    with make_session(limits) as s:
        got = fetch(s, server.url("/slow.csv"), "csv", None, limits)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, None)
    assert got.error == "the download timed out (no answer within 0.5 s) after 2 tries"
    assert server.counts["/slow.csv"] == 2  # the read timeout is retried once
    assert 900 <= got.elapsed_ms < 3000


def test_stall_in_the_middle_of_the_body_times_out(server: _Server) -> None:
    limits = FetchLimits(connect_timeout=1.0, read_timeout=0.5, retries=1, backoff=0.01)

    @server.route("/stall.csv")
    def _(h: _Handler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/csv")
        h.send_header("Content-Length", str(len(CSV) * 2))
        h.end_headers()
        h.wfile.write(CSV)
        h.wfile.flush()
        time.sleep(1.5)

    with make_session(limits) as s:
        got = fetch(s, server.url("/stall.csv"), "csv", None, limits)
    assert (got.outcome, got.http_status) == ("failed", 200)
    assert "timed out" in got.error
    assert server.counts["/stall.csv"] == 1


def test_connection_closed_without_answer(server: _Server, session: requests.Session) -> None:
    @server.route("/hangup.csv")
    def _(h: _Handler, n: int) -> None:
        h.close_connection = True  # no status line at all

    got = fetch(session, server.url("/hangup.csv"), "csv", None, FAST)
    assert (got.outcome, got.http_status) == ("failed", None)
    assert "closed the connection" in got.error
    assert server.counts["/hangup.csv"] == FAST.retries + 1


def test_connection_refused(session: requests.Session) -> None:
    got = fetch(session, f"http://127.0.0.1:{closed_port()}/list.csv", "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, None)
    assert "could not connect" in got.error and "refused" in got.error


# ---------------------------------------------------------------------------------------------------------------
# truncated, oversized and encoded bodies


def test_truncated_body_is_cut_short(server: _Server, session: requests.Session) -> None:
    @server.route("/short.csv")
    def _(h: _Handler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/csv")
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write((CSV * 10)[:120])
        h.close_connection = True

    got = fetch(session, server.url("/short.csv"), "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, 200)
    assert got.error == "the download was cut short (got 120 of 5000 bytes)"


def test_truncated_chunked_body_is_cut_short(server: _Server, session: requests.Session) -> None:
    @server.route("/short-chunked.csv")
    def _(h: _Handler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/csv")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"%x\r\n" % len(CSV) + CSV + b"\r\n" + b"3e8\r\nname,")  # a 1000-byte chunk that never ends
        h.close_connection = True

    got = fetch(session, server.url("/short-chunked.csv"), "csv", None, FAST)
    assert (got.outcome, got.data) == ("failed", None)
    assert "cut short" in got.error


def test_gzip_body_is_decoded_and_not_mistaken_for_truncation(server: _Server, session: requests.Session) -> None:
    body = CSV * 50
    packed = gzip.compress(body)

    @server.route("/gz.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, packed, {"Content-Encoding": "gzip"})

    got = fetch(session, server.url("/gz.csv"), "csv", None, FAST)
    assert (got.outcome, got.data) == ("new", body)
    assert len(packed) < len(body)


def test_size_cap_counts_decoded_bytes(server: _Server, session: requests.Session) -> None:
    limits = FetchLimits(retries=0, backoff=0.01, max_bytes=1000)

    @server.route("/bomb.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, gzip.compress(b"a,b\n" * 5000), {"Content-Encoding": "gzip"})

    got = fetch(session, server.url("/bomb.csv"), "csv", None, limits)
    assert (got.outcome, got.data) == ("failed", None)
    assert got.error == "the file is larger than the 1 kB limit"


def test_size_cap_with_content_length_fails_early(server: _Server, session: requests.Session) -> None:
    limits = FetchLimits(retries=0, backoff=0.01, max_bytes=1000)

    @server.route("/big.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, (b"x,y\n" * 1250))

    got = fetch(session, server.url("/big.csv"), "csv", None, limits)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, 200)
    assert got.error == "the file is larger than the 1 kB limit (the server announced 5 kB)"


def test_size_cap_without_content_length(server: _Server, session: requests.Session) -> None:
    limits = FetchLimits(retries=0, backoff=0.01, max_bytes=1000)

    @server.route("/big-chunked.csv")
    def _(h: _Handler, n: int) -> None:
        reply_chunked(h, b"x,y\n" * 1250)

    got = fetch(session, server.url("/big-chunked.csv"), "csv", None, limits)
    assert (got.outcome, got.data) == ("failed", None)
    assert got.error == "the file is larger than the 1 kB limit"


def test_body_exactly_at_the_cap_is_accepted(server: _Server, session: requests.Session) -> None:
    limits = FetchLimits(retries=0, backoff=0.01, max_bytes=1000)
    body = b"x,y\n" * 250

    @server.route("/edge.csv")
    def _(h: _Handler, n: int) -> None:
        reply_chunked(h, body, size=300)

    got = fetch(session, server.url("/edge.csv"), "csv", None, limits)
    assert (got.outcome, got.data) == ("new", body)


# ---------------------------------------------------------------------------------------------------------------
# wrong content


def test_html_page_with_text_html_is_refused(server: _Server, session: requests.Session) -> None:
    @server.route("/login")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, HTML, {"Content-Type": "text/html; charset=utf-8"})

    got = fetch(session, server.url("/login"), "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, 200)
    assert got.error == "expected CSV but got a web page (text/html)"
    assert got.content_type == "text/html; charset=utf-8"


def test_html_page_served_as_csv_is_refused(server: _Server, session: requests.Session) -> None:
    @server.route("/fake.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, HTML, {"Content-Type": "text/csv"})

    got = fetch(session, server.url("/fake.csv"), "csv", None, FAST)
    assert (got.outcome, got.data) == ("failed", None)
    assert got.error == "expected CSV but got a web page (served as text/csv)"


def test_empty_200_is_refused(server: _Server, session: requests.Session) -> None:
    @server.route("/empty.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, b"")

    got = fetch(session, server.url("/empty.csv"), "csv", None, FAST)
    assert (got.outcome, got.error) == ("failed", "the download was empty")


# ---------------------------------------------------------------------------------------------------------------
# redirects and addresses


def test_redirect_is_followed(server: _Server, session: requests.Session) -> None:
    @server.route("/old.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 301, b"", {"Location": "/new.csv"})

    @server.route("/new.csv")
    def _(h: _Handler, n: int) -> None:
        reply(h, 200, CSV, {"ETag": '"n1"'})

    got = fetch(session, server.url("/old.csv"), "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status, got.etag) == ("new", CSV, 200, '"n1"')
    assert got.final_url == server.url("/new.csv")
    assert (server.counts["/old.csv"], server.counts["/new.csv"]) == (1, 1)


def test_redirect_loop_fails(server: _Server, session: requests.Session) -> None:
    @server.route("/loop")
    def _(h: _Handler, n: int) -> None:
        reply(h, 302, b"", {"Location": "/loop"})

    got = fetch(session, server.url("/loop"), "csv", None, FAST)
    assert (got.outcome, got.data) == ("failed", None)
    assert "redirect" in got.error and "loop" in got.error
    assert server.counts["/loop"] == session.max_redirects + 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/list.csv", "list.csv", "http:///no-host.csv"])
def test_non_http_address_fails_without_a_request(url: str, session: requests.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_request(*args: object, **kwargs: object) -> requests.Response:
        raise AssertionError("a request was made")

    monkeypatch.setattr(session, "request", no_request)
    got = fetch(session, url, "csv", None, FAST)
    assert (got.outcome, got.data, got.http_status) == ("failed", None, None)
    assert "only http:// and https://" in got.error


def test_malformed_address_fails_without_raising(session: requests.Session) -> None:
    got = fetch(session, "http://[bad/list.csv", "csv", None, FAST)
    assert (got.outcome, got.http_status) == ("failed", None)
    assert got.error.startswith("the address is not a valid URL")


# ---------------------------------------------------------------------------------------------------------------
# check_format


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["name", "kind"])
    sheet.append(["Fjordhjelp", "helpline"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HSDS_PACKAGE = zipped({"datapackage.json": b'{"resources": []}', "organizations.csv": b"id,name\n1,A\n"})
HSDS_IN_FOLDER = zipped({"hsds/datapackage.json": b'{"resources": []}', "hsds/organizations.csv": b"id,name\n1,A\n"})
OLD_XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100  # the OLE header of a pre-2007 .xls
HSDS_WITHOUT_PACKAGE = zipped({"organizations.csv": b"id,name\n1,A\n"})


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (CSV, "csv"),
        (b"\xef\xbb\xbfnavn;land\nFjordhjelp;Norge\n", "csv"),
        ("name,country\nNattlinja,NO\n".encode("utf-16"), "csv"),
        (b"name\tcountry\nA\tNO\n", "tsv"),
        (b"name\tcountry\nA\tNO\n", "csv"),
        (xlsx_bytes(), "xlsx"),
        (b'[{"name": "A"}, {"name": "B"}]', "json"),
        (b"[]", "json"),
        (b'{"meta": {"count": 1}, "data": [{"name": "A"}]}', "json"),
        (HSDS_PACKAGE, "hsds"),
        (HSDS_IN_FOLDER, "hsds"),
        (CSV, None),
        (b'[{"name": "A"}]', None),
        (xlsx_bytes(), None),
        (HSDS_PACKAGE, None),
    ],
)
def test_check_format_accepts(data: bytes, fmt: str | None) -> None:
    assert check_format(data, fmt, None) is None


@pytest.mark.parametrize(
    ("data", "fmt", "content_type", "reason"),
    [
        (b"", "csv", None, "the download was empty"),
        (b"  \n\r\n", "json", None, "the download was empty"),
        (b"", None, None, "the download was empty"),
        (CSV, "csv", "text/html", "expected CSV but got a web page (text/html)"),
        (HTML, "csv", "text/csv", "expected CSV but got a web page (served as text/csv)"),
        (b"\xef\xbb\xbf  \n<html><body>x</body></html>", "json", None, "expected JSON but got a web page"),
        (b"just one line without any delimiter\n", "csv", None, "expected CSV but no line holds a delimiter (, ; tab or |)"),
        (CSV, "tsv", None, "expected TSV but no line holds a tab"),
        (b"name,kind\x00\x01\x02binary", "csv", None, "expected CSV but got a binary file"),
        (xlsx_bytes(), "csv", None, "expected CSV but got a ZIP file (an Excel workbook or a zipped package?)"),
        (CSV, "xlsx", None, "expected XLSX but the file is not a ZIP archive"),
        (b"PK\x03\x04 then garbage", "xlsx", None, "expected XLSX but the ZIP archive is damaged or incomplete"),
        (OLD_XLS, "xlsx", None, "expected XLSX but got an old Excel (.xls) or Office file; save it as .xlsx"),
        (HSDS_PACKAGE, "xlsx", None, "expected XLSX but the ZIP archive holds no Excel workbook"),
        (HSDS_WITHOUT_PACKAGE, "hsds", None, "expected an HSDS data package but the ZIP archive holds no datapackage.json"),
        (CSV, "hsds", None, "expected an HSDS data package but the file is not a ZIP archive"),
        (b"42", "json", None, "expected JSON holding a list of records, but it holds a single int value"),
        (b'"text"', "json", None, "expected JSON holding a list of records, but it holds a single str value"),
        (b"[1, 2]", "json", None, "expected JSON holding a list of records (objects), but the list holds other values"),
        (b'{"name": "A"}', "json", None, "expected JSON holding a list of records, but the object holds none"),
        (b'{"a": [{"x": 1}], "b": [{"y": 2}]}', "json", None, "expected JSON holding one list of records, but the object holds 2 lists"),
        (b"nope", "xls", None, "unknown format 'xls' (use one of csv, tsv, xlsx, json, hsds)"),
    ],
)
def test_check_format_refuses(data: bytes, fmt: str | None, content_type: str | None, reason: str) -> None:
    assert check_format(data, fmt, content_type) == reason


def test_check_format_refuses_broken_json_with_the_parser_message() -> None:
    reason = check_format(b'[{"name": "A"', "json", "application/json")
    assert reason is not None and reason.startswith("expected JSON but the file does not parse as JSON (")


def test_check_format_sniff_names_what_it_tried() -> None:
    reason = check_format(b"[1, 2, 3]", None, None)
    assert reason == (
        "the download is not CSV, TSV, XLSX, JSON or an HSDS package: "
        "expected JSON holding a list of records (objects), but the list holds other values"
    )


def test_json_with_bom_and_utf16_parses() -> None:
    records = [{"name": "Nattlinja", "country": "NO"}]
    assert check_format(b"\xef\xbb\xbf" + json.dumps(records).encode(), "json", None) is None
    assert check_format(json.dumps(records).encode("utf-16"), "json", None) is None
