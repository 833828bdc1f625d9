"""Link-health benchmark: our checker and lychee side by side on one loopback farm (``make bench``).

    .venv/bin/python -m benchmarks.links_bench [--hosts 50] [--urls 2000] [--latency 0.05] [--per-host 2] [--rounds 1]

A farm of ``--hosts`` HTTP hosts (127.0.0.2 ...) runs in its own process and answers every request after
``--latency`` seconds.  The URLs mix the cases a directory meets (mostly 200, some HEAD-refusing servers,
301/302/308 redirects, 404, 410, 403, 401).  Both checkers get the same per-host limit and a global limit
of hosts x per-host, no minimum interval between requests to one host, and no cache.  Reported per checker:
URLs/s, % of the physical limit (hosts x per-host / latency), the most requests the farm ever saw in flight
at once on one host, and % of URLs given the right class (for lychee, the right final status code: it has
no notion of a permanent redirect).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

from curate.links import check_links
from curate.settings import LinkSettings
from tests.link_farm import Farm, Reply, loopback_hosts, status

#: (path prefix, share of the URLs, our expected result, the final status lychee should report)
MIX = (
    ("ok", 0.90, "ok", 200),
    ("nohead", 0.025, "ok", 200),
    ("moved", 0.025, "redirect", 200),
    ("temp", 0.0125, "ok", 200),
    ("perm", 0.0125, "redirect", 200),
    ("missing", 0.01, "broken", 404),
    ("gone", 0.005, "broken", 410),
    ("forbidden", 0.005, "blocked", 403),
    ("auth", 0.005, "blocked", 401),
)


def _to_ok(code: int):
    return lambda req: Reply(code, {"Location": "/ok/" + req.path.rsplit("/", 1)[-1]}, b"")


ROUTES = {
    "/ok/*": status(200),
    "/nohead/*": lambda req: Reply(405 if req.method == "HEAD" else 200),
    "/moved/*": _to_ok(301),
    "/temp/*": _to_ok(302),
    "/perm/*": _to_ok(308),
    "/missing/*": status(404),
    "/gone/*": status(410),
    "/forbidden/*": status(403),
    "/auth/*": status(401),
}


def _serve(hosts: list[str], latency: float, conn: Connection) -> None:
    farm = Farm(hosts, ROUTES, latency=latency)
    with farm.running():
        conn.send(farm.ports)
        while True:
            command = conn.recv()
            if command == "stop":
                return
            if command == "latency0":
                farm.latency = 0.0
                conn.send("ok")
                continue
            conn.send({"max_inflight": max(farm.max_inflight.values(), default=0), "requests": farm.total_requests})
            farm.max_inflight.clear()
            farm.counts.clear()


def plan(hosts: list[str], ports: dict[str, int], n: int, seed: int = 7) -> list[tuple[str, str, int]]:
    """``n`` URLs, each host given the same mix of cases, in a shuffled order: (url, our expected result, lychee's status).

    The cases other than a plain 200 are dealt to the hosts in turn, so that no host holds more of the slow
    ones (a redirect costs two requests) than another: the slowest host sets the pace of any checker.
    """
    kinds: list[tuple[str, str, int]] = []
    for prefix, share, expected, code in sorted(MIX, key=lambda m: m[0] == "ok"):
        kinds += [(prefix, expected, code)] * round(share * n)
    kinds = (kinds + [("ok", "ok", 200)] * n)[:n]
    urls = [(f"http://{hosts[i % len(hosts)]}:{ports[hosts[i % len(hosts)]]}/{p}/{i}", e, c) for i, (p, e, c) in enumerate(kinds)]
    random.Random(seed).shuffle(urls)
    return urls


def run_ours(urls: list[tuple[str, str, int]], limits: LinkSettings) -> tuple[float, float]:
    started = time.monotonic()
    checks = check_links([u for u, _, _ in urls], limits)
    seconds = time.monotonic() - started
    expected = {u: e for u, e, _ in urls}
    correct = sum(1 for c in checks if c.result == expected[c.url])
    wrong = Counter((expected[c.url], c.result) for c in checks if c.result != expected[c.url])
    if wrong:
        print(f"  ours: wrong classes (expected, got): {dict(wrong)}", file=sys.stderr)
    return seconds, correct / len(urls)


def run_lychee(urls: list[tuple[str, str, int]], per_host: int, concurrency: int, lychee: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "urls.txt"
        listing.write_text("\n".join(u for u, _, _ in urls) + "\n", encoding="utf-8")
        report = Path(tmp) / "out.json"
        command = [
            lychee, "--no-progress", "--format", "json", "--output", str(report), "--verbose",
            "--host-concurrency", str(per_host), "--max-concurrency", str(concurrency), "--host-request-interval", "0ms",
            "--max-retries", "2", "--timeout", "20", "--cache=false", str(listing),
        ]  # fmt: skip
        started = time.monotonic()
        subprocess.run(command, capture_output=True, check=False, cwd=tmp)
        seconds = time.monotonic() - started
        doc = json.loads(report.read_text(encoding="utf-8"))
    got: dict[str, int | None] = {}
    for entries in doc.get("success_map", {}).values():
        for e in entries:
            got[e["url"]] = (e.get("status") or {}).get("code", 200)
    for key in ("error_map", "timeout_map"):
        for entries in doc.get(key, {}).values():
            for e in entries:
                got.setdefault(e["url"], (e.get("status") or {}).get("code"))
    correct = sum(1 for u, _, code in urls if got.get(u) == code)
    return seconds, correct / len(urls)


def transports(hosts: list[str], ports: dict[str, int], n: int = 2000) -> dict[str, float]:
    """CPU microseconds per keep-alive HEAD request of each HTTP layer a Python checker could use (one thread).

    Why ``curate/links.py`` talks ``http.client`` directly: the farm answers at once, so what is measured
    is the client's own cost per request, which caps a checker's throughput on a busy machine.
    """
    import http.client
    import resource

    import requests
    import urllib3

    host, port = hosts[0], ports[hosts[0]]

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def timed(one) -> float:
        one(-1)
        started = cpu()
        for i in range(n):
            one(i)
        return (cpu() - started) / n * 1e6

    conn = http.client.HTTPConnection(host, port, timeout=5)

    def raw(i: int) -> None:
        conn.request("HEAD", f"/ok/{i}")
        conn.getresponse().read()

    pool = urllib3.HTTPConnectionPool(host, port, maxsize=1, retries=False)

    def pooled(i: int) -> None:
        pool.urlopen("HEAD", f"/ok/{i}", redirect=False, preload_content=False).release_conn()

    session = requests.Session()

    def session_request(i: int) -> None:
        session.request("HEAD", f"http://{host}:{port}/ok/{i}", allow_redirects=False, timeout=5).close()

    return {"http.client": timed(raw), "urllib3 pool": timed(pooled), "requests.Session": timed(session_request)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="run each checker this many times, alternating; the best is kept")
    parser.add_argument("--transports", action="store_true", help="also measure the CPU cost per request of http.client, urllib3, requests")
    args = parser.parse_args(argv)
    hosts = loopback_hosts(args.hosts)
    concurrency = args.hosts * args.per_host
    limit = concurrency / args.latency
    limits = replace(
        LinkSettings(),
        per_host=args.per_host,
        workers=concurrency,
        min_host_interval=0.0,
        allow_private_hosts=True,
        read_timeout=20.0,
        connect_timeout=20.0,
    )
    lychee = shutil.which("lychee") or str(Path(sys.executable).parent / "lychee")
    here, there = mp.Pipe()
    farm = mp.get_context("spawn").Process(target=_serve, args=(hosts, args.latency, there), daemon=True)
    farm.start()
    try:
        ports = here.recv()
        urls = plan(hosts, ports, args.urls)
        print(
            f"links bench: {args.hosts} hosts, {args.urls} URLs, {args.latency * 1000:g} ms per response, per-host limit "
            f"{args.per_host}, global {concurrency}; physical limit {limit:.0f} URLs/s"
        )
        best: dict[str, tuple[float, float, int, int]] = {}
        runners = {"ours": lambda: run_ours(urls, limits)}
        if Path(lychee).exists():
            runners["lychee"] = lambda: run_lychee(urls, args.per_host, concurrency, lychee)
        else:
            print("  lychee not found: pip install -c constraints.txt -e '.[bench]'")
        for _ in range(args.rounds):
            for name, runner in runners.items():
                seconds, correct = runner()
                here.send("stats")
                stats = here.recv()
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, correct, stats["max_inflight"], stats["requests"])
        print(f"  {'checker':8} {'seconds':>8} {'URLs/s':>8} {'% limit':>8} {'max/host':>9} {'requests':>9} {'correct':>8}")
        for name, (seconds, correct, peak, requests) in best.items():
            rate = args.urls / seconds
            print(f"  {name:8} {seconds:8.2f} {rate:8.0f} {100 * rate / limit:7.1f}% {peak:9d} {requests:9d} {100 * correct:7.1f}%")
        if args.transports:
            here.send("latency0")
            here.recv()
            costs = transports(hosts, ports)
            print("  CPU per keep-alive HEAD request, one thread: " + ", ".join(f"{k} {v:.0f} µs" for k, v in costs.items()))
    finally:
        here.send("stop")
        farm.join(10)


if __name__ == "__main__":
    main()
