"""A scripted HTTP server on 127.0.0.1 for tests (never the internet): routes per path, request counts, headers seen."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

Handler = Callable[["_Handler", int], None]  # (request handler, how many requests this path has seen, this one included)
S = TypeVar("S", bound=ThreadingHTTPServer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like a real server
    timeout = 5  # an idle keep-alive connection does not outlive the test for long
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.counts[path] += 1
            number = self.server.counts[path]
            self.server.seen[path].append(dict(self.headers.items()))
        route = self.server.routes.get(path)
        if route is None:
            reply(self, 404, b"not here")
        else:
            route(self, number)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping after its client gave up must not hold up the test

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Handler] = {}
        self.counts: Counter[str] = Counter()
        self.seen: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:  # a client that hung up is expected here
        pass

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[path] = handler
            return handler

        return register


def reply(h: _Handler, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    all_headers = {"Content-Type": "text/csv; charset=utf-8", "Content-Length": str(len(body)), **(headers or {})}
    for name, value in all_headers.items():
        h.send_header(name, value)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def reply_chunked(h: _Handler, body: bytes, size: int = 500, content_type: str = "text/csv") -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    h.wfile.write(b"0\r\n\r\n")


@contextmanager
def running(srv: S) -> Iterator[S]:
    """``srv`` serving from a background thread, shut down and closed afterwards (any loopback test server)."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=2)


def serving() -> AbstractContextManager[_Server]:
    """A running loopback server, shut down afterwards."""
    return running(_Server())
