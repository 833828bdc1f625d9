"""Link health (CONTRACT section 6): check each URL politely and give it exactly one result.

Results: ``ok``, ``redirect`` (a permanent redirect: its target is suggested to curators), ``broken``
(404, 410, a name that does not exist), ``blocked`` (401, 403, 429 after retries, bot walls), ``error``
(timeouts, 5xx after retries, TLS, resets) and ``skipped`` (not checked: the checker is offline, or the
address is private).

``check_links`` is the edge: DNS, HTTP and threads.  Everything else here is pure: ``host_of``,
``host_batches``, ``refused_address``, ``classify_status``, ``suggested_url`` and ``conclude_offline``.

How a check goes: the host is resolved once per run (with a timeout), every address is vetted (no private,
loopback, link-local, multicast, reserved or unspecified address unless allowed) and the connection is made
to exactly the vetted addresses, so a name that re-resolves elsewhere between the check and the connect
(DNS rebinding) cannot slip through.  ``HEAD`` first; ``GET`` when ``HEAD`` gets anything but a 2xx or 429
(servers that refuse or mishandle HEAD: 405, 501, some 403/404).  Redirects are followed by hand, each
hop vetted again.  5xx, 408, 429, timeouts, resets and refused connections are retried with exponential
backoff and jitter; 429 honours ``Retry-After`` (capped) for the whole host.  At most ``per_host`` requests
are in flight to one host and ``workers`` in all, with ``min_host_interval`` between the starts of two
requests to one host.  A host that times out ``host_max_timeouts`` times in a row is given up on for the
run (circuit breaker).  A batch where the first hosts all fail to resolve or connect and none answers
stops early: the checker is offline.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import random
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from curate.settings import LinkSettings

RESULTS = ("ok", "redirect", "broken", "blocked", "error", "skipped")
#: the keys of one result in ``curate links check --format jsonl`` (CONTRACT section 2)
PUBLIC_KEYS = ("url", "result", "http_status", "final_url", "error", "elapsed_ms")
PERMANENT = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
BROKEN = frozenset({404, 410})
#: 999 is what some large sites answer to robots
BLOCKED = frozenset({401, 403, 407, 451, 999})
#: worth asking again after a pause
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: words in the first bytes of a page that mark a bot wall (a challenge page, not the site)
BOT_WALL_MARKERS = (
    b"cf-chl",
    b"challenge-platform",
    b"just a moment...",
    b"attention required",
    b"captcha",
    b"are you a robot",
    b"verify you are human",
    b"ddos-guard",
)
#: getaddrinfo errors that mean "this name does not exist" (NXDOMAIN, no address)
_NO_SUCH_NAME = frozenset(code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code is not None)

Resolve = Callable[[str], list[str]]
OnResult = Callable[["LinkCheck"], None]


@dataclass
class LinkCheck:
    """The result of checking one URL once."""

    url: str
    result: str
    http_status: int | None = None
    final_url: str | None = None
    error: str | None = None
    elapsed_ms: int = 0
    #: every redirect followed: (status, the URL that answered with it)
    redirects: list[tuple[int, str]] = field(default_factory=list)
    #: where the leading permanent redirects lead: the address to propose to curators
    suggested_url: str | None = None
    method: str | None = None
    host: str = ""
    #: the host answered over HTTP (at least once)
    reached: bool = False
    #: the host could not be reached at all (its name did not resolve or the connection failed): evidence for "offline"
    unreachable: bool = False

    def public(self) -> dict[str, object]:
        """The object ``curate links check --format jsonl`` prints."""
        return {k: getattr(self, k) for k in PUBLIC_KEYS}


# --- pure helpers ------------------------------------------------------------------------------


#: A URL's scheme and authority, as urllib3's ``parse_url`` splits them: the host depends on nothing after them.
_SCHEME_AUTHORITY = re.compile(r"[a-zA-Z][a-zA-Z0-9+-]*://[^\\/?#]*")


def host_of(url: str) -> str:
    """The host a URL's requests go to (lowercase, IDNA-encoded, no brackets or trailing dot), or "" when there is none."""
    url = url.strip()
    head = _SCHEME_AUTHORITY.match(url)
    return _parsed_host(head.group() if head else url)


@functools.lru_cache(maxsize=8192)
def _parsed_host(url: str) -> str:
    """``host_of`` of a URL's scheme and authority: parsed once per distinct host in a run, not once per URL."""
    try:
        host = parse_url(url).host or ""
    except (LocationParseError, ValueError):
        return ""
    return _host_key(host)


def _host_key(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def host_batches(urls: Iterable[str], n: int) -> list[list[str]]:
    """The distinct URLs split into at most ``n`` batches, each holding whole hosts, about equal in URLs.

    Deterministic: the largest hosts first, each into the batch with the fewest URLs so far.
    """
    by_host: dict[str, list[str]] = {}
    for url in dict.fromkeys(urls):
        by_host.setdefault(host_of(url), []).append(url)
    batches: list[list[str]] = [[] for _ in range(max(1, min(n, len(by_host))))]
    for _, group in sorted(by_host.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        min(batches, key=len).extend(group)
    return [b for b in batches if b]


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip


def forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, link-local, multicast, reserved, unspecified or otherwise not on the public internet."""
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global


def refused_address(addresses: Iterable[str], allow_private: bool = False, allow_networks: Iterable[str] = ()) -> str | None:
    """The first address that may not be requested, or None when all may.  A host with one such address is refused."""
    if allow_private:
        return None
    networks = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
    for address in addresses:
        try:
            ip = _ip(address)
        except ValueError:
            return address
        if forbidden_ip(ip) and not any(ip.version == net.version and ip in net for net in networks):
            return address
    return None


def suggested_url(redirects: list[tuple[int, str]], final_url: str) -> str | None:
    """Where the leading permanent redirects (301, 308) lead, or None when the first hop is not permanent."""
    target = None
    for i, (status, _) in enumerate(redirects):
        if status not in PERMANENT:
            break
        target = redirects[i + 1][1] if i + 1 < len(redirects) else final_url
    return target


def classify_status(status: int, bot_wall: bool = False) -> str:
    """The result of a final HTTP status (after retries): ok, broken, blocked or error."""
    if 200 <= status < 300:
        return "ok"
    if status in BROKEN:
        return "broken"
    if status in BLOCKED or status == 429 or bot_wall:
        return "blocked"
    return "error"


def is_bot_wall(status: int, headers: Any, body: bytes) -> bool:
    """A challenge page (Cloudflare and the like) rather than the site's own answer."""
    if status < 400:
        return False
    if headers.get("cf-mitigated"):
        return True
    if status in (403, 503) and "cloudflare" in str(headers.get("Server", "")).lower() and b"ray id" in body.lower():
        return True
    low = body[:65536].lower()
    return any(marker in low for marker in BOT_WALL_MARKERS)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def conclude_offline(checks: list[LinkCheck], limits: LinkSettings) -> tuple[list[LinkCheck], str | None]:
    """When most hosts tried could not be reached at all, the checker is offline: those checks become ``skipped``.

    Returns the checks (unchanged when online) and, when offline, a message saying so.  Checks of hosts
    that did answer keep their result.
    """
    tried = {c.host for c in checks if c.reached or c.unreachable}
    reached = {c.host for c in checks if c.reached}
    unreachable = {c.host for c in checks if c.unreachable} - reached
    if len(tried) < max(1, limits.offline_min_hosts) or len(unreachable) <= limits.offline_fraction * len(tried):
        return checks, None
    message = (
        f"the link checker seems to be offline: {len(unreachable)} of {len(tried)} hosts could not be reached "
        "(name lookup or connection failed), so those links were not judged and keep their last status"
    )
    # every check of a host that could not be reached, also those the circuit breaker or the early stop left untried
    out = [
        replace(c, result="skipped", error=f"not checked: {message} ({c.error})") if c.host in unreachable and c.result != "skipped" else c
        for c in checks
    ]
    return out, message


# --- the edge: DNS, connections pinned to vetted addresses, threads ----------------------------------


def system_resolve(host: str) -> list[str]:
    """The host's addresses from the system resolver, in its order (raises ``socket.gaierror``)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Failure(Exception):
    """A request that got no HTTP answer: ``kind`` (connect_timeout, read_timeout, refused, unreachable, reset, tls, other)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 keep-alive connection to exactly the vetted addresses of its host: it never resolves a name.

    ``connect_timeout`` bounds the TCP connect and the TLS handshake, ``timeout`` every read after it.
    """

    def __init__(self, host: str, port: int, addresses: list[str], connect_timeout: float, read_timeout: float,
                 context: ssl.SSLContext | None) -> None:  # fmt: skip
        super().__init__(host, port, timeout=read_timeout)
        self.addresses = addresses
        self.connect_timeout = connect_timeout
        self.context = context

    def connect(self) -> None:
        last: OSError | None = None
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, self.port), self.connect_timeout)
                break
            except OSError as exc:
                last = exc
        else:
            assert last is not None
            raise last
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificates verified against certifi's bundle (as ``requests`` does), else the system's.

    Made once per process, on the first https request: loading the bundle takes about 20 ms, which every batch
    would otherwise spend before its first request (thread-safe: a context is shared by all connections).
    """
    try:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass
class _Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class _Host:
    name: str
    lock: threading.Lock
    pending: deque[str] = field(default_factory=deque)
    assigned: int = 0  # workers holding a URL of this host
    inflight: int = 0  # requests in flight to this host
    next_ok: float = 0.0  # no request starts before this (monotonic time)
    in_ready: bool = False
    timeouts: int = 0  # timeouts in a row
    tripped: bool = False
    resolving: threading.Event | None = None
    failure: tuple[str, str] | None = None  # (kind, message) when the host cannot be requested
    idle: dict[tuple[str, int], list[_Connection]] = field(default_factory=dict)  # kept-alive connections by (scheme, port)
    slot: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.slot = threading.Condition(self.lock)


@dataclass
class _Answer:
    """What one request chain (with its redirects) came to."""

    #: http, nxdomain, dns, private, tripped, scheme, too_many_redirects, or a ``_Failure`` kind
    kind: str
    message: str = ""
    status: int | None = None
    final_url: str | None = None
    redirects: list[tuple[int, str]] = field(default_factory=list)
    headers: Any = None
    body: bytes = b""
    host: str = ""  # the host of the last request
    reached: bool = False  # some request of the chain got an HTTP answer
    origin: str = ""  # the host of the URL checked


_UNREACHABLE = frozenset({"nxdomain", "dns", "connect_timeout", "refused", "unreachable"})
_RETRY_KINDS = frozenset({"connect_timeout", "read_timeout", "refused", "unreachable", "reset"})


class _Checker:
    """One run of checks over a list of distinct URLs (one batch)."""

    def __init__(self, urls: list[str], limits: LinkSettings, resolve: Resolve, on_result: OnResult | None) -> None:
        self.urls = urls
        self.limits = limits
        self.resolve = resolve
        self.on_result = on_result
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        self.hosts: dict[str, _Host] = {}
        self.ready: deque[_Host] = deque()
        self.pending_total = 0
        self.pins: dict[str, list[str]] = {}
        self.results: dict[str, LinkCheck] = {}
        self.reached_hosts: set[str] = set()
        self.unreachable_hosts: set[str] = set()
        self.offline = False
        for url in urls:
            host = self._host(host_of(url))
            host.pending.append(url)
            self.pending_total += 1
        for host in self.hosts.values():
            if host.pending:
                host.in_ready = True
                self.ready.append(host)
        self.cap = max(1, limits.per_host)
        self.headers = {"User-Agent": limits.user_agent, "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
        self.dns_pool = ThreadPoolExecutor(max_workers=max(1, min(limits.workers, 16)), thread_name_prefix="link-dns")

    def _host(self, name: str) -> _Host:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _Host(name, self.lock)
        return host

    # -- scheduling: a worker takes a URL only from a host below its cap --------------------------------

    def _take(self) -> tuple[_Host, str] | None:
        with self.lock:
            while True:
                if self.ready:
                    now = time.monotonic()
                    index = next((i for i in range(min(8, len(self.ready))) if self.ready[i].next_ok <= now), 0)
                    host = self.ready[index]
                    del self.ready[index]
                    url = host.pending.popleft()
                    host.assigned += 1
                    self.pending_total -= 1
                    if host.pending and host.assigned < self.cap:
                        self.ready.append(host)
                    else:
                        host.in_ready = False
                    if self.pending_total == 0:
                        self.work.notify_all()  # idle workers may leave
                    return host, url
                if self.pending_total == 0:
                    return None
                self.work.wait()

    def _done(self, host: _Host) -> None:
        with self.lock:
            host.assigned -= 1
            if host.pending and not host.in_ready and host.assigned < self.cap:
                host.in_ready = True
                self.ready.append(host)
                self.work.notify()

    def _acquire(self, host: _Host) -> None:
        """Wait for a request slot of ``host``: below the per-host cap and past its minimum interval."""
        with self.lock:
            while True:
                now = time.monotonic()
                if host.inflight < self.cap and host.next_ok <= now:
                    break
                host.slot.wait(None if host.inflight >= self.cap else host.next_ok - now)
            host.inflight += 1
            host.next_ok = max(host.next_ok, now + self.limits.min_host_interval)

    def _release(self, host: _Host, answered: bool) -> None:
        with self.lock:
            host.inflight -= 1
            if answered:
                host.timeouts = 0
            host.slot.notify()

    def _hold_off(self, host: _Host, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (a 429's Retry-After)."""
        with self.lock:
            host.next_ok = max(host.next_ok, time.monotonic() + seconds)

    # -- DNS and the address guard ------------------------------------------------------------------------

    def _vet(self, host: _Host) -> None:
        """Resolve ``host`` once per run and vet its addresses; sets ``host.failure`` or its pins."""
        with self.lock:
            event, owner = (host.resolving, False) if host.resolving is not None else (threading.Event(), True)
            if owner:
                host.resolving = event
        if not owner:
            event.wait()
            return
        try:
            host.failure = self._vet_addresses(host.name)
        finally:
            event.set()

    def _vet_addresses(self, name: str) -> tuple[str, str] | None:
        if not name:
            return "other", "the address has no host"
        try:
            addresses = [str(_ip(name))]
        except ValueError:
            future = self.dns_pool.submit(self.resolve, name)
            deadline = time.monotonic() + self.limits.dns_timeout
            try:
                while True:  # a lookup stuck on a resolver that does not answer is dropped once the batch is known offline
                    try:
                        addresses = future.result(timeout=max(0.0, min(0.05, deadline - time.monotonic())))
                        break
                    except FutureTimeout:
                        if time.monotonic() >= deadline:
                            return "dns", f"looking up {name} timed out after {self.limits.dns_timeout:g} s"
                        if self.offline:
                            return "dns", f"looking up {name} was abandoned: the link checker seems to be offline"
            except socket.gaierror as exc:
                if exc.errno in _NO_SUCH_NAME:
                    return "nxdomain", f"the name {name} does not exist (DNS: {exc.strerror or exc})"
                return "dns", f"looking up {name} failed (DNS: {exc.strerror or exc})"
            except (OSError, UnicodeError, ValueError) as exc:
                return "dns", f"looking up {name} failed ({exc})"
        if not addresses:
            return "nxdomain", f"the name {name} has no address"
        refused = refused_address(addresses, self.limits.allow_private_hosts, self.limits.allow_networks)
        if refused is not None:
            at = name if name == refused else f"{name} ({refused})"
            return "private", f"{at} is a private, loopback, link-local or reserved address: not requested (see --allow-private-hosts)"
        self.pins[name] = addresses
        return None

    # -- one request chain ----------------------------------------------------------------------------------

    def _follow(self, url: str, method: str) -> _Answer:
        """One request and its redirects, each hop vetted and counted against its own host's cap."""
        redirects: list[tuple[int, str]] = []
        current = url
        reached = False
        for _ in range(self.limits.max_redirects + 1):
            try:
                parts = parse_url(current)
            except (LocationParseError, ValueError) as exc:
                return _Answer("other", f"{current[:200]!r} is not a valid address ({exc})", redirects=redirects, reached=reached)
            scheme = (parts.scheme or "").lower()
            if scheme not in ("http", "https"):
                what = "redirected to" if redirects else "only http:// and https:// addresses are checked, not"
                return _Answer("scheme", f"{what} {current[:200]!r}", final_url=current, redirects=redirects, reached=reached)
            with self.lock:
                host = self._host(_host_key(parts.host or ""))
            self._vet(host)
            if host.failure is not None:
                kind, message = host.failure
                if redirects and kind == "private":
                    message = f"redirected to {current[:200]}: {message}"
                return _Answer(kind, message, final_url=current, redirects=redirects, host=host.name, reached=reached)
            if host.tripped:
                message = f"{host.name} timed out {host.timeouts} times in a row this run: not tried again until the next run"
                return _Answer("tripped", message, final_url=current, redirects=redirects, host=host.name, reached=reached)
            self._acquire(host)
            answered = False
            try:
                port = parts.port or (443 if scheme == "https" else 80)
                reply = self._exchange(host, scheme, port, method, parts.request_uri)
                answered = True
            except _Failure as failure:
                if failure.kind in ("connect_timeout", "read_timeout"):
                    self._timed_out(host)
                return _Answer(failure.kind, failure.message, final_url=current, redirects=redirects, host=host.name, reached=reached)
            finally:
                self._release(host, answered)
            reached = True
            body = reply.body
            status = reply.status
            location = reply.headers.get("Location")
            if status in REDIRECTS and location:
                redirects.append((status, current))
                try:
                    current = urljoin(current, location.strip())
                except ValueError:
                    return _Answer("other", f"redirected to an invalid address {location[:200]!r}", final_url=current,
                                   redirects=redirects, host=host.name, reached=True)  # fmt: skip
                continue
            return _Answer("http", status=status, final_url=current, redirects=redirects, headers=reply.headers, body=body,
                           host=host.name, reached=True)  # fmt: skip
        return _Answer(
            "too_many_redirects",
            f"more than {self.limits.max_redirects} redirects (probably a redirect loop)",
            final_url=current,
            redirects=redirects,
            reached=reached,
        )

    def _exchange(self, host: _Host, scheme: str, port: int, method: str, target: str, fresh: bool = False) -> _Reply:
        """One request on a kept-alive connection of the host (or a new one); raises ``_Failure`` without an answer.

        A kept-alive connection the server closed meanwhile is retried once on a new connection, as browsers do.
        The standard library's ``http.client`` is used directly: the per-request cost of ``requests`` (740 µs
        here) or of urllib3's pool (160 µs) is most of what caps a Python link checker's throughput, and a link
        check needs none of what they add (cookies, proxies, automatic redirects and retries).
        """
        key = (scheme, port)
        conn = None if fresh else self._checkout(host, key)
        reused = conn is not None
        if conn is None:
            conn = _Connection(host.name, port, self.pins[host.name], self.limits.connect_timeout, self.limits.read_timeout,
                               _tls_context() if scheme == "https" else None)  # fmt: skip
            try:
                conn.connect()
            except TimeoutError:
                raise _Failure("connect_timeout", f"connecting timed out (no answer within {self.limits.connect_timeout:g} s)") from None
            except ssl.SSLError as exc:
                raise _Failure("tls", f"the secure connection (TLS) failed: {exc.reason or exc}") from None
            except ConnectionRefusedError:
                raise _Failure("refused", "the connection was refused") from None
            except OSError as exc:
                raise _Failure("unreachable", f"could not connect ({exc.strerror or exc})") from None
        keep = False
        try:
            try:
                conn.request(method, target, headers=self.headers)
                response = conn.getresponse()
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
                if reused:  # the server closed this idle connection: once more on a new one
                    return self._exchange(host, scheme, port, method, target, fresh=True)
                raise _Failure("reset", "the server closed or reset the connection without answering") from exc
            except TimeoutError:
                raise _Failure("read_timeout", f"the server did not answer within {self.limits.read_timeout:g} s") from None
            except ssl.SSLError as exc:
                raise _Failure("tls", f"the secure connection (TLS) failed: {exc.reason or exc}") from None
            except http.client.HTTPException as exc:
                raise _Failure("other", f"the server's answer is not valid HTTP ({type(exc).__name__})") from None
            except OSError as exc:
                raise _Failure("reset", f"the connection failed ({exc.strerror or exc})") from None
            body, keep = self._body(response, method)
            keep = keep and not response.will_close
            return _Reply(response.status, response.msg, body)
        finally:
            if keep:
                self._checkin(host, key, conn)
            else:
                conn.close()

    def _checkout(self, host: _Host, key: tuple[str, int]) -> _Connection | None:
        with self.lock:
            idle = host.idle.get(key)
            return idle.pop() if idle else None

    def _checkin(self, host: _Host, key: tuple[str, int], conn: _Connection) -> None:
        with self.lock:
            idle = host.idle.setdefault(key, [])
            if len(idle) < self.cap:
                idle.append(conn)
                return
        conn.close()

    def _body(self, response: http.client.HTTPResponse, method: str) -> tuple[bytes, bool]:
        """At most ``body_cap`` bytes of the body, and whether it was read to its end (the connection can be kept)."""
        try:
            if method == "HEAD":
                response.read()  # nothing, but it ends the answer
                return b"", True
            length = response.getheader("Content-Length", "")
            if length.isdigit() and int(length) <= self.limits.body_cap:
                return response.read(), True
            if 200 <= response.status < 300:
                return b"", False  # a page that answers: its body is not needed and never downloaded
            return response.read(self.limits.body_cap), response.isclosed()
        except (http.client.HTTPException, OSError, ValueError):
            return b"", False

    def _timed_out(self, host: _Host) -> None:
        with self.lock:
            host.timeouts += 1
            if host.timeouts >= self.limits.host_max_timeouts:
                host.tripped = True

    # -- one URL ----------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return self.limits.backoff * (2**attempt) * random.uniform(0.5, 1.0)

    def check(self, host: _Host, url: str) -> LinkCheck:
        started = time.monotonic()
        if self.offline:
            return LinkCheck(url, "skipped", error="not checked: the link checker seems to be offline (no host could be reached)",
                             host=host.name)  # fmt: skip
        method = "HEAD"
        attempt = 0  # retries so far (switching from HEAD to GET is not one)
        while True:
            answer = self._follow(url, method)
            answer.origin = host.name
            tries = attempt + 1
            retry = attempt < self.limits.retries
            if answer.kind == "http":
                status = int(answer.status or 0)
                if 200 <= status < 300:
                    return self._made(url, "ok", answer, method, started)
                if method == "HEAD" and status != 429:
                    method = "GET"  # HEAD refused or unreliable on this server: ask the way a browser does
                    continue
                wall = is_bot_wall(status, answer.headers, answer.body)
                if status in RETRY_STATUSES and not wall and retry:
                    wait = self._backoff(attempt)
                    if status == 429:
                        asked = retry_after_seconds(answer.headers.get("Retry-After"))
                        wait = min(self.limits.retry_after_cap, asked if asked is not None else wait)
                        self._hold_off(self.hosts[answer.host], wait)
                    time.sleep(wait)
                    attempt += 1
                    continue
                return self._made(url, classify_status(status, wall), answer, method, started, tries=tries, wall=wall)
            if answer.kind in _RETRY_KINDS and retry and not self.hosts[answer.host].tripped:
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return self._made(url, self._failure_result(answer.kind), answer, method, started, tries=tries)

    @staticmethod
    def _failure_result(kind: str) -> str:
        if kind == "nxdomain":
            return "broken"
        if kind == "private":
            return "skipped"
        return "error"

    def _made(
        self, url: str, result: str, answer: _Answer, method: str, started: float, *, tries: int = 1, wall: bool = False
    ) -> LinkCheck:
        check = LinkCheck(
            url,
            result,
            http_status=answer.status,
            final_url=answer.final_url if answer.reached or answer.redirects else None,
            elapsed_ms=int((time.monotonic() - started) * 1000),
            redirects=answer.redirects,
            method=method,
            host=answer.origin or host_of(url),
            reached=answer.reached,
            unreachable=answer.kind in _UNREACHABLE and not answer.reached,
        )
        times = f" ({tries} tries)" if tries > 1 else ""
        if answer.kind == "http":
            status = int(answer.status or 0)
            if result == "ok":
                check.suggested_url = suggested_url(answer.redirects, str(answer.final_url))
                if check.suggested_url and check.suggested_url != url:
                    check.result = "redirect"
            elif wall:
                check.error = f"answered {status} with a bot wall (a challenge page){times}"
            else:
                try:
                    reason = " " + HTTPStatus(status).phrase
                except ValueError:
                    reason = ""
                check.error = f"answered {status}{reason}{times}"
        else:
            check.error = answer.message + (times if answer.kind in _RETRY_KINDS else "")
        return check

    # -- the run --------------------------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            host, url = taken
            try:
                check = self.check(host, url)
            except Exception as exc:  # a bug must not lose the other URLs: this one is an error, the run goes on
                check = LinkCheck(url, "error", error=f"the checker failed on this address ({type(exc).__name__}: {exc})", host=host.name)
            finally:
                self._done(host)
            with self.lock:
                self.results[url] = check
                if check.reached:
                    self.reached_hosts.add(check.host)
                elif check.unreachable:
                    self.unreachable_hosts.add(check.host)
                early = max(1, self.limits.offline_early_hosts)
                if not self.reached_hosts and len(self.unreachable_hosts) >= early:
                    self.offline = True
            if self.on_result is not None:
                self.on_result(check)

    def run(self) -> list[LinkCheck]:
        workers = max(1, min(self.limits.workers, len(self.urls)))
        try:
            threads = [threading.Thread(target=self._worker, name=f"link-{i}", daemon=True) for i in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for host in self.hosts.values():
                for idle in host.idle.values():
                    for conn in idle:
                        conn.close()
            self.dns_pool.shutdown(wait=False, cancel_futures=True)
        return [self.results[u] for u in self.urls]


def check_links(
    urls: Iterable[str], limits: LinkSettings, *, resolve: Resolve | None = None, on_result: OnResult | None = None
) -> list[LinkCheck]:
    """Check each distinct URL once (in the order first given); never raises for network or HTTP problems.

    ``resolve`` turns a host name into addresses (default: the system resolver).  ``on_result`` is called
    from the worker threads as each URL is done (for a progress bar).  The offline conclusion over the
    whole list is ``conclude_offline``'s, applied by the caller (the flow applies it over all batches).
    """
    distinct = [u.strip() for u in dict.fromkeys(u.strip() for u in urls) if u.strip()]
    if not distinct:
        return []
    return _Checker(distinct, limits, resolve or system_resolve, on_result).run()
