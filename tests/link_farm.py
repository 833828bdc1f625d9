"""A loopback farm of many HTTP hosts for link-health tests and the benchmark (never the internet).

Each host is its own address in 127.0.0.0/8 (Linux routes the whole range to the loopback device), served
by one asyncio event loop in a background thread.  Routes script what a path answers, request by request;
the farm counts requests per host and path and the most requests ever in flight at once per host, so a
test can assert that the checker's per-host cap held.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class Request:
    host: str  # the address the request came in on
    method: str
    path: str
    n: int  # requests this host and path have seen, this one included
    farm: Farm


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering (on top of the farm's latency)
    reset: bool = False  # answer nothing: reset the connection (RST)


Route = Callable[[Request], Reply]


def status(code: int, **headers: str) -> Route:
    """Always answer ``code``."""
    return lambda req: Reply(code, dict(headers))


def redirect(code: int, to: Callable[[Request], str]) -> Route:
    return lambda req: Reply(code, {"Location": to(req)}, b"")


def sequence(*replies: Reply) -> Route:
    """The n-th request gets the n-th reply; the last one repeats."""
    return lambda req: replies[min(req.n, len(replies)) - 1]


class _Protocol(asyncio.Protocol):
    def __init__(self, farm: Farm, host: str) -> None:
        self.farm = farm
        self.host = host
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost.set()

    def _next(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        lines = head.decode("latin-1").split("\r\n")
        line = lines[0].split()
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        if len(line) < 2:
            if self.transport is not None:
                self.transport.close()
            return
        self.busy = True
        asyncio.get_running_loop().create_task(self._answer(line[0], line[1], headers.get("user-agent", "")))

    async def _answer(self, method: str, target: str, user_agent: str) -> None:
        farm = self.farm
        path = target.split("?", 1)[0]
        farm._enter(self.host, method, path, user_agent)
        try:
            n = farm.counts[(self.host, path)]
            route = farm.routes.get(path) or farm.routes.get("/" + path.split("/")[1] + "/*")
            reply = route(Request(self.host, method, path, n, farm)) if route else Reply(404, body=b"not here")
            if reply.delay > 0:  # a slow answer stops counting as in flight once the client hangs up
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.lost.wait(), timeout=farm.latency + reply.delay)
            elif farm.latency > 0:
                await asyncio.sleep(farm.latency)
        finally:
            farm._leave(self.host)
        transport = self.transport
        if transport is None:
            return
        if reply.reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return
        headers = {"Content-Length": str(len(reply.body)), "Content-Type": "text/html; charset=utf-8", **reply.headers}
        reason = "Scripted"
        data = f"HTTP/1.1 {reply.status} {reason}\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        data += b"\r\n" + (b"" if method == "HEAD" else reply.body)
        transport.write(data)
        self.busy = False
        if self.buffer:
            self._next()


class Farm:
    """``hosts`` loopback addresses, each listening on its own port; every host serves the same ``routes``.

    A route is found by the exact path, else by ``/<first segment>/*`` (``/ok/*`` serves ``/ok/17``).
    """

    def __init__(self, hosts: list[str], routes: dict[str, Route], latency: float = 0.0, tls: ssl.SSLContext | None = None) -> None:
        self.hosts = hosts
        self.tls = tls
        self.routes = routes
        self.latency = latency
        self.ports: dict[str, int] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.methods: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self.inflight: Counter[str] = Counter()
        self.max_inflight: Counter[str] = Counter()
        self.total_inflight = 0
        self.max_total_inflight = 0
        self.user_agents: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []

    def _enter(self, host: str, method: str, path: str, user_agent: str) -> None:
        self.counts[(host, path)] += 1
        self.methods[(host, path)].append(method)
        self.times[(host, path)].append(time.monotonic())
        self.inflight[host] += 1
        self.max_inflight[host] = max(self.max_inflight[host], self.inflight[host])
        self.total_inflight += 1
        self.max_total_inflight = max(self.max_total_inflight, self.total_inflight)
        self.user_agents.add(user_agent)

    def _leave(self, host: str) -> None:
        self.inflight[host] -= 1
        self.total_inflight -= 1

    def url(self, host: str | int, path: str) -> str:
        address = self.hosts[host] if isinstance(host, int) else host
        return f"{'https' if self.tls else 'http'}://{address}:{self.ports[address]}{path}"

    @property
    def total_requests(self) -> int:
        return sum(self.counts.values())

    async def _start(self) -> None:
        for host in self.hosts:
            server = await asyncio.get_running_loop().create_server(
                lambda h=host: _Protocol(self, h), host, 0, reuse_address=True, backlog=512, ssl=self.tls
            )
            self.ports[host] = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    @contextmanager
    def running(self) -> Iterator[Farm]:
        """Serve from a background thread until the block ends."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name="link-farm", daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the link farm did not start")
        self._loop = loop
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()


def loopback_hosts(n: int, first: int = 2) -> list[str]:
    """``n`` loopback addresses 127.0.0.<first>..."""
    return [f"127.0.{(first + i) // 256}.{(first + i) % 256}" for i in range(n)]
