"""The link checker (curate/links.py) against a loopback farm of many hosts, and its pure parts."""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from curate import links
from curate.links import LinkCheck, check_links, conclude_offline
from curate.settings import LinkSettings, Settings
from tests.link_farm import Farm, Reply, loopback_hosts, redirect, sequence, status

#: fast knobs for tests; the farm lives in 127.0.0.0/25, which these settings allow (127.0.0.200 stays private)
FAST = LinkSettings(
    connect_timeout=1.0,
    read_timeout=0.3,
    dns_timeout=1.0,
    retries=2,
    backoff=0.02,
    retry_after_cap=0.3,
    per_host=2,
    workers=16,
    min_host_interval=0.0,
    allow_networks=("127.0.0.0/25",),
)
PRIVATE = "127.0.0.200"  # loopback, but outside the allowed farm network: must never be requested


def resolver(names: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A resolver for tests: the given names, and NXDOMAIN for everything else (no query leaves the machine)."""

    def resolve(host: str) -> list[str]:
        if host in names:
            return names[host]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return resolve


def by_url(checks: list[LinkCheck]) -> dict[str, LinkCheck]:
    return {c.url: c for c in checks}


# --- the farm: every case of issue 5, point 6 -------------------------------------------------------------

HOSTS = loopback_hosts(17)
ROUTES = {
    "/ok": status(200),
    "/ok/*": status(200),
    "/m301": redirect(301, lambda r: r.farm.url(r.host, "/ok")),
    "/m302": redirect(302, lambda r: r.farm.url(r.host, "/ok")),
    "/m308": redirect(308, lambda r: r.farm.url(HOSTS[0], "/ok")),  # to another host: that host's cap counts it
    "/chain": redirect(301, lambda r: r.farm.url(r.host, "/hop")),
    "/hop": redirect(302, lambda r: r.farm.url(r.host, "/missing")),
    "/missing": status(404),
    "/gone": status(410),
    "/auth": status(401),
    "/forbidden": status(403),
    "/retry-after": sequence(Reply(429, {"Retry-After": "1"}), Reply(200)),
    "/always429": status(429, **{"Retry-After": "1"}),
    "/flaky": sequence(Reply(500), Reply(200)),
    "/flaky2": sequence(Reply(500), Reply(500), Reply(200)),
    "/always503": status(503),
    "/slow": lambda r: Reply(200, delay=2.0),
    "/nohead": lambda r: Reply(405 if r.method == "HEAD" else 200),
    "/reset": lambda r: Reply(reset=True),
    "/to-private": redirect(302, lambda r: f"http://{PRIVATE}:{r.farm.ports[r.host]}/ok"),
    "/wall": status(503, **{"cf-mitigated": "challenge"}),
    "/busy/*": lambda r: Reply(200, delay=0.05),
}
#: (host index, path) -> (result, final status)
CASES = {
    (0, "/ok"): ("ok", 200),
    (1, "/m301"): ("redirect", 200),
    (2, "/m302"): ("ok", 200),
    (3, "/m308"): ("redirect", 200),
    (4, "/chain"): ("broken", 404),
    (5, "/missing"): ("broken", 404),
    (5, "/gone"): ("broken", 410),
    (6, "/auth"): ("blocked", 401),
    (6, "/forbidden"): ("blocked", 403),
    (7, "/retry-after"): ("ok", 200),
    (8, "/always429"): ("blocked", 429),
    (9, "/flaky"): ("ok", 200),
    (9, "/flaky2"): ("ok", 200),
    (10, "/always503"): ("error", 503),
    (11, "/slow"): ("error", None),
    (12, "/nohead"): ("ok", 200),
    (13, "/reset"): ("error", None),
    (14, "/to-private"): ("skipped", None),
    (16, "/wall"): ("blocked", 503),
}
BUSY = 15  # a host with many URLs: the per-host cap must be reached and never exceeded
NXDOMAIN = "http://gone-for-good.invalid/help"


@pytest.fixture(scope="module")
def farm_run():
    farm = Farm(HOSTS, ROUTES)
    with farm.running():
        urls = [farm.url(h, p) for h, p in CASES] + [farm.url(BUSY, f"/busy/{i}") for i in range(12)] + [NXDOMAIN]
        started = time.monotonic()
        checks = check_links(urls + urls[:3], FAST, resolve=resolver({}))  # repeated URLs are checked once
        yield farm, by_url(checks), time.monotonic() - started, len(checks)


def test_every_scripted_case_gets_its_class(farm_run):
    farm, checks, _, _ = farm_run
    for (host, path), (result, code) in CASES.items():
        check = checks[farm.url(host, path)]
        assert (check.result, check.http_status) == (result, code), (path, check)
        assert check.error is None if result in ("ok", "redirect") else check.error, (path, check)
    assert checks[NXDOMAIN].result == "broken" and "does not exist" in str(checks[NXDOMAIN].error)
    assert all(checks[farm.url(BUSY, f"/busy/{i}")].result == "ok" for i in range(12))


def test_the_farm_never_saw_more_than_the_per_host_cap(farm_run):
    farm, _, _, _ = farm_run
    assert max(farm.max_inflight.values()) <= FAST.per_host
    assert farm.max_inflight[HOSTS[BUSY]] == FAST.per_host  # and the cap was used: URLs of one host in parallel
    assert farm.max_total_inflight <= FAST.workers
    assert farm.counts[(PRIVATE, "/ok")] == 0 and PRIVATE not in farm.max_inflight


def test_each_distinct_url_is_checked_once_with_a_clear_user_agent(farm_run):
    farm, _, _, n = farm_run
    assert n == len(CASES) + 12 + 1
    assert farm.counts[(HOSTS[0], "/ok")] == 2  # its own check and the 308 from another host: not the repeats
    assert farm.user_agents == {FAST.user_agent} and "support-directory" in FAST.user_agent


def test_redirects_are_recorded_and_permanent_ones_proposed(farm_run):
    farm, checks, _, _ = farm_run
    moved = checks[farm.url(1, "/m301")]
    assert moved.suggested_url == farm.url(1, "/ok") and moved.final_url == farm.url(1, "/ok")
    assert moved.redirects == [(301, farm.url(1, "/m301"))]
    assert checks[farm.url(3, "/m308")].suggested_url == farm.url(0, "/ok")
    temporary = checks[farm.url(2, "/m302")]
    assert temporary.suggested_url is None and temporary.final_url == farm.url(2, "/ok")
    chain = checks[farm.url(4, "/chain")]
    assert chain.redirects == [(301, farm.url(4, "/chain")), (302, farm.url(4, "/hop"))]
    assert chain.final_url == farm.url(4, "/missing")
    private = checks[farm.url(14, "/to-private")]
    assert private.final_url.startswith(f"http://{PRIVATE}:") and "private" in str(private.error)


def test_head_first_then_get_when_head_is_refused(farm_run):
    farm, checks, _, _ = farm_run
    assert farm.methods[(HOSTS[0], "/ok")][0] == "HEAD"
    assert farm.methods[(HOSTS[12], "/nohead")] == ["HEAD", "GET"] and checks[farm.url(12, "/nohead")].method == "GET"
    assert farm.methods[(HOSTS[5], "/missing")] == ["HEAD", "GET"]  # a 404 on HEAD is confirmed with GET


def test_retries_backoff_and_retry_after(farm_run):
    farm, _, _, _ = farm_run
    assert farm.methods[(HOSTS[9], "/flaky2")] == ["HEAD", "GET", "GET"]  # 5xx retried
    assert farm.counts[(HOSTS[10], "/always503")] == 1 + 1 + FAST.retries  # HEAD, GET, then the retries
    assert farm.counts[(HOSTS[8], "/always429")] == 1 + FAST.retries
    first, second = farm.times[(HOSTS[7], "/retry-after")][:2]
    assert second - first >= FAST.retry_after_cap * 0.9  # Retry-After: 1, capped at 0.3 s
    assert farm.counts[(HOSTS[13], "/reset")] == 1 + FAST.retries


def test_a_slow_host_costs_the_timeouts_not_the_run(farm_run):
    _, checks, seconds, _ = farm_run
    slow = next(c for c in checks.values() if c.url.endswith("/slow"))
    assert "did not answer within 0.3 s" in str(slow.error)
    assert seconds < 5


# --- circuit breaker, intervals, caps ----------------------------------------------------------------------


def test_circuit_breaker_gives_up_on_a_host_that_keeps_timing_out():
    farm = Farm(loopback_hosts(1, first=30), {"/slow/*": lambda r: Reply(200, delay=2.0)})
    with farm.running():
        urls = [farm.url(0, f"/slow/{i}") for i in range(6)]
        started = time.monotonic()
        checks = check_links(urls, replace(FAST, per_host=1, host_max_timeouts=3))
        seconds = time.monotonic() - started
    assert [c.result for c in checks] == ["error"] * 6
    assert farm.total_requests == 3  # three timeouts in a row, then the host is given up on for this run
    assert sum("times in a row this run" in str(c.error) for c in checks) == 5
    assert seconds < 3  # not 6 URLs x 3 tries x 0.3 s


def test_minimum_interval_between_requests_to_one_host():
    farm = Farm(loopback_hosts(1, first=31), {"/ok/*": status(200)})
    with farm.running():
        check_links([farm.url(0, f"/ok/{i}") for i in range(6)], replace(FAST, min_host_interval=0.1))
    starts = sorted(t for (_, _), times in farm.times.items() for t in times)
    assert len(starts) == 6
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.09


def test_the_global_cap_bounds_requests_in_flight():
    farm = Farm(loopback_hosts(10, first=40), {"/ok/*": status(200)}, latency=0.05)
    with farm.running():
        # a read timeout no answer comes near, even on a busy machine: a request retried after a timeout would still
        # be in flight at the farm beside its retry (once seen as 4 in flight in CI)
        checks = check_links([farm.url(h, f"/ok/{i}") for h in range(10) for i in range(3)], replace(FAST, workers=3, read_timeout=5.0))
    assert {c.result for c in checks} == {"ok"}
    assert farm.max_total_inflight == 3


def test_a_bot_wall_is_recognised_only_within_the_body_cap():
    marker = b"<title>Just a moment...</title>"
    routes = {
        "/early": lambda r: Reply(503, body=marker + b"x" * 200_000),
        "/late": lambda r: Reply(503, body=b"x" * 200_000 + marker),
    }
    farm = Farm(loopback_hosts(1, first=50), routes)
    with farm.running():
        checks = by_url(check_links([farm.url(0, "/early"), farm.url(0, "/late")], replace(FAST, retries=0, body_cap=65_536)))
    assert checks[farm.url(0, "/early")].result == "blocked"
    assert checks[farm.url(0, "/late")].result == "error"  # the marker lies beyond what is read


# --- SSRF guard --------------------------------------------------------------------------------------------


def test_private_hosts_are_skipped_and_never_requested_unless_allowed():
    farm = Farm(loopback_hosts(2, first=60), {"/ok": status(200)})
    with farm.running():
        urls = [farm.url(0, "/ok"), farm.url(1, "/ok"), "http://localhost:9/", "http://[::1]:9/", "http://169.254.169.254/latest"]
        default = check_links(urls, LinkSettings(connect_timeout=1, read_timeout=1), resolve=resolver({"localhost": ["127.0.0.1"]}))
        assert [c.result for c in default] == ["skipped"] * 5
        assert all("private" in str(c.error) for c in default)
        assert farm.total_requests == 0
        allowed = check_links(urls[:2], replace(FAST, allow_networks=(), allow_private_hosts=True))
    assert [c.result for c in allowed] == ["ok", "ok"]


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_vetted_address():
    farm = Farm(loopback_hosts(1, first=70), {"/ok/*": status(200)})
    calls: list[str] = []
    answers = iter([[farm.hosts[0]], [PRIVATE]])  # a rebinding resolver: public first, private afterwards

    def rebinding(host: str) -> list[str]:
        calls.append(host)
        return next(answers)

    with farm.running():
        port = farm.ports[farm.hosts[0]]
        urls = [f"http://rebind.test:{port}/ok/{i}" for i in range(4)]
        checks = check_links(urls, FAST, resolve=rebinding)
    assert [c.result for c in checks] == ["ok"] * 4
    assert calls == ["rebind.test"] and farm.total_requests == 4


def test_a_name_with_any_private_address_is_refused():
    checks = check_links(["http://mixed.test/"], FAST, resolve=resolver({"mixed.test": ["127.0.0.2", "10.1.2.3"]}))
    assert checks[0].result == "skipped" and "10.1.2.3" in str(checks[0].error)


def test_only_http_and_https_are_checked():
    checks = check_links(["ftp://files.example/list", "javascript:alert(1)"], FAST)
    assert [c.result for c in checks] == ["error", "error"]
    assert all("only http:// and https://" in str(c.error) for c in checks)


# --- offline -----------------------------------------------------------------------------------------------


def test_when_most_hosts_fail_the_checker_is_offline_and_skips():
    urls = [f"https://service-{i}.test/help" for i in range(10)]
    checks = check_links(urls, FAST, resolve=resolver({}))
    assert {c.result for c in checks} <= {"broken", "skipped"} and all(c.unreachable or c.result == "skipped" for c in checks)
    concluded, message = conclude_offline(checks, FAST)
    assert [c.result for c in concluded] == ["skipped"] * 10
    assert message is not None and "offline" in message
    assert all("offline" in str(c.error) for c in concluded)


def test_an_offline_batch_stops_early():
    calls: list[str] = []

    def unplugged(host: str) -> list[str]:
        calls.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    checks = check_links([f"https://s{i}.test/" for i in range(60)], replace(FAST, workers=2, offline_early_hosts=5), resolve=unplugged)
    assert len(calls) <= 5 + 2
    assert sum(c.result == "skipped" for c in checks) >= 60 - 7


def test_a_few_dead_names_among_answering_hosts_are_broken_not_offline():
    farm = Farm(loopback_hosts(4, first=80), {"/ok": status(200)})
    with farm.running():
        checks = check_links([farm.url(h, "/ok") for h in range(4)] + [NXDOMAIN], FAST, resolve=resolver({}))
    concluded, message = conclude_offline(checks, FAST)
    assert message is None
    assert [c.result for c in concluded] == ["ok"] * 4 + ["broken"]


def test_conclude_offline_rules():
    def c(host: str, result: str, reached: bool, unreachable: bool) -> LinkCheck:
        return LinkCheck(f"https://{host}/", result, host=host, reached=reached, unreachable=unreachable, error="x")

    two_down = [c("a.test", "broken", False, True), c("b.test", "error", False, True)]
    assert conclude_offline(two_down, FAST)[1] is not None  # nothing answered: no evidence against any site
    assert conclude_offline(two_down, replace(FAST, offline_min_hosts=3))[1] is None  # fewer hosts than asked for: judged
    half = [c("a.test", "broken", False, True), c("b.test", "broken", False, True), c("c.test", "ok", True, False),
            c("d.test", "ok", True, False)]  # fmt: skip
    assert conclude_offline(half, FAST)[1] is None  # half is not most
    most = [*half[:2], c("e.test", "error", False, True), half[2]]
    out, message = conclude_offline(most, FAST)
    assert message and [x.result for x in out] == ["skipped", "skipped", "skipped", "ok"]
    tripped = [*most, c("e.test", "error", False, False)]  # e.test's other URL, given up on by the circuit breaker
    assert [x.result for x in conclude_offline(tripped, FAST)[0]] == ["skipped", "skipped", "skipped", "ok", "skipped"]
    private = [c(f"{h}.test", "skipped", False, False) for h in "abc"]
    assert conclude_offline(private, FAST)[1] is None  # private hosts were never tried


# --- pure helpers --------------------------------------------------------------------------------------------


def _host_by_full_parse(url: str) -> str:
    """``host_of`` as it was before it cached per scheme and authority: urllib3 parses the whole URL."""
    try:
        return links._host_key(parse_url(url.strip()).host or "")
    except (LocationParseError, ValueError):
        return ""


_URL_PIECES = st.sampled_from(["http", "HTTPS", "ftp", "a.b", "x+y", "", ":", "//", "/", "\\", "?", "#", "@", "[", "]", "::1",
                               "user:pw", "Example.COM", "xn--bcher-kva.example", "bücher.example", ".", "%41", ":8080", ":99999",
                               " ", "\t", "é", "127.0.0.1", "path", "..", "a b"])  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_URL_PIECES, max_size=10).map("".join))
def test_host_of_matches_parsing_the_whole_url(url):
    assert links.host_of(url) == _host_by_full_parse(url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("HTTP://Example.COM.:80/x", "example.com"),
        ("https://user:pw@[::1]:8443/p?q#f", "::1"),
        ("https://a.example\\evil.example/", "a.example"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("No-Scheme.example/x", "no-scheme.example"),
        ("http://a b.example/", ""),
        ("http://a.example:99999/", ""),
    ],
)
def test_host_of(url, host):
    assert links.host_of(url) == host == _host_by_full_parse(url)


def test_host_batches_keep_hosts_whole_and_balanced():
    urls = [f"https://h{h}.test/{i}" for h in range(7) for i in range(h + 1)] + ["https://h0.test/0"]
    batches = links.host_batches(urls, 3)
    assert len(batches) == 3
    assert sorted(u for b in batches for u in b) == sorted(set(urls))
    hosts = [{links.host_of(u) for u in b} for b in batches]
    assert all(not (a & b) for i, a in enumerate(hosts) for b in hosts[i + 1 :])
    assert max(map(len, batches)) - min(map(len, batches)) <= 7
    assert links.host_batches(urls, 3) == batches
    assert links.host_batches(["https://one.test/"], 4) == [["https://one.test/"]]
    assert links.host_batches([], 4) == []


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.215.14", False),
        ("2606:4700::1111", False),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("0.0.0.0", True),
        ("100.64.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),
        ("ff02::1", True),
        ("::", True),
    ],
)
def test_refused_addresses(address, refused):
    assert (links.refused_address([address]) is not None) is refused
    assert links.refused_address([address], allow_private=True) is None


def test_allowed_networks_open_only_themselves():
    assert links.refused_address(["127.0.0.5"], allow_networks=["127.0.0.0/25"]) is None
    assert links.refused_address(["127.0.0.200"], allow_networks=["127.0.0.0/25"]) == "127.0.0.200"
    assert links.refused_address(["93.184.215.14", "10.0.0.1"]) == "10.0.0.1"


def test_suggested_url_follows_leading_permanent_redirects():
    assert links.suggested_url([(301, "http://a.test/")], "https://a.test/") == "https://a.test/"
    assert links.suggested_url([(302, "http://a.test/")], "https://a.test/") is None
    assert links.suggested_url([(301, "http://a.test/"), (308, "https://a.test/")], "https://b.test/") == "https://b.test/"
    assert links.suggested_url([(301, "http://a.test/"), (302, "https://a.test/")], "https://a.test/login") == "https://a.test/"
    assert links.suggested_url([], "https://a.test/") is None


@pytest.mark.parametrize(
    ("code", "result"),
    [(200, "ok"), (204, "ok"), (404, "broken"), (410, "broken"), (401, "blocked"), (403, "blocked"), (429, "blocked"),
     (451, "blocked"), (999, "blocked"), (500, "error"), (503, "error"), (400, "error"), (418, "error")],
)  # fmt: skip
def test_classify_status(code, result):
    assert links.classify_status(code) == result


def test_retry_after_in_seconds_or_as_a_date():
    assert links.retry_after_seconds("7") == 7.0
    now = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC).timestamp()
    assert links.retry_after_seconds("Wed, 25 Nov 2026 03:00:30 GMT", now=now) == pytest.approx(30)
    assert links.retry_after_seconds("soon") is None and links.retry_after_seconds(None) is None


def test_link_settings_come_from_the_environment():
    settings = Settings.from_env({"CURATE_LINK_PER_HOST": "1", "CURATE_LINK_ALLOW_PRIVATE_HOSTS": "yes",
                                  "CURATE_LINK_ALLOW_NETWORKS": "10.9.0.0/16, 127.0.0.0/8", "CURATE_LINK_READ_TIMEOUT": "2.5"})  # fmt: skip
    assert settings.links.per_host == 1 and settings.links.allow_private_hosts is True
    assert settings.links.allow_networks == ("10.9.0.0/16", "127.0.0.0/8") and settings.links.read_timeout == 2.5
    assert Settings.from_env({}).links == LinkSettings()
    with pytest.raises(ValueError, match="CURATE_LINK_WORKERS"):
        Settings.from_env({"CURATE_LINK_WORKERS": "many"})


def test_a_certificate_that_does_not_verify_is_an_error(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    farm = Farm(loopback_hosts(1, first=100), {"/ok": status(200)}, tls=context)
    with farm.running():
        check = check_links([farm.url(0, "/ok")], FAST)[0]
    assert farm.url(0, "/ok").startswith("https://")
    assert check.result == "error" and "TLS" in str(check.error) and "certificate" in str(check.error).lower()
    assert not check.unreachable  # a bad certificate is the site's problem, not evidence that we are offline
