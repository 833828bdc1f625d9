"""Link health inside the whole flow (against a loopback farm) and ``curate links check``."""

from __future__ import annotations

import datetime as dt
import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate import links
from curate import warehouse as wh
from curate.cli import app
from curate.settings import LinkSettings, Settings
from tests.link_farm import Farm, Reply, loopback_hosts, redirect, status

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LIMITS = LinkSettings(
    connect_timeout=1.0, read_timeout=1.0, dns_timeout=1.0, retries=1, backoff=0.01, min_host_interval=0.0,
    allow_networks=("127.0.0.0/25",),
)  # fmt: skip
NAMES = ("alive.test", "gone.test", "moved.test")
PHONES = {f"Phone Line {i}" for i in range(4)}
ROUTES = {
    "/ok": lambda r: Reply(200, delay=0.02),
    "/page": status(404),
    "/old": redirect(301, lambda r: "/new"),  # relative, as most servers write it
    "/new": status(200),
}


@pytest.fixture
def farm():
    f = Farm(loopback_hosts(3, first=90), ROUTES)
    with f.running():
        yield f


@pytest.fixture
def online(farm, monkeypatch):
    """The three names resolve to the farm's hosts; anything else does not exist."""
    table = dict(zip(NAMES, ([h] for h in farm.hosts), strict=True))

    def resolve(host: str) -> list[str]:
        if host in table:
            return table[host]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(links, "system_resolve", resolve)
    return farm


def unplug(monkeypatch) -> None:
    def resolve(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(links, "system_resolve", resolve)


@pytest.fixture
def settings(tmp_path, farm) -> Settings:
    sources = tmp_path / "sources"
    sources.mkdir()
    port = {name: farm.ports[h] for name, h in zip(NAMES, farm.hosts, strict=True)}
    rows = [
        f"a,Alive Line,helpline,http://alive.test:{port['alive.test']}/ok,,,GB",
        f"b,Gone Forum,forum,http://gone.test:{port['gone.test']}/page,,,GB",
        f"c,Moved Chat,chat,http://moved.test:{port['moved.test']}/old,http://alive.test:{port['alive.test']}/ok,,GB",
        # phone-only lines: one listing going dead must stay under the mass-removal guard's 20%
        *(f"p{i},Phone Line {i},helpline,,,020 7946 001{i},GB" for i in range(4)),
    ]
    head = "record_id,name,kind,url,chat_url,phone,country\n"
    (sources / "lines.csv").write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    return Settings(sources_dir=sources, exports_dir=tmp_path / "exports", warehouse_file=tmp_path / "wh.duckdb", links=LIMITS)


def run(settings: Settings, now: dt.datetime, skip_links: bool = False):
    from flows.curate_run import curate_run

    return curate_run(settings, now=now, skip_links=skip_links)


def published(settings: Settings) -> dict[str, dict]:
    data = json.loads((settings.exports_dir / "current" / "listings.json").read_text(encoding="utf-8"))
    return {x["name"]: x for x in data}


def by_name(settings: Settings, column: str) -> dict[str, str]:
    """Each core listing's ``column`` by its name."""
    con = wh.connect(settings.warehouse_file)
    try:
        return {str(n): str(v) for n, v in wh.run(con, f"SELECT name, {column} FROM core_listings")}
    finally:
        con.close()


def statuses(settings: Settings) -> dict[str, str]:
    return by_name(settings, "link_status")


def test_three_nights_of_404_take_a_listing_out_with_the_evidence(prefect_harness, online, settings):
    first = run(settings, NOW)
    assert first.links is not None and first.links.offline is None
    assert (first.links.checked, first.links.cached, first.links.results) == (3, 0, {"ok": 1, "broken": 1, "redirect": 1})
    listings = published(settings)
    assert {n: x["link_status"] for n, x in listings.items()} == {
        "Alive Line": "alive", "Gone Forum": "degraded", "Moved Chat": "alive", **{f"Phone Line {i}": "unknown" for i in range(4)}
    }  # fmt: skip
    assert listings["Alive Line"]["link_checked_at"] == "2026-11-25T03:00:00Z"
    assert run(settings, NOW + DAY).links.dead_listings == 0
    third = run(settings, NOW + 2 * DAY)
    assert third.links.dead_listings == 1
    assert set(published(settings)) == {"Alive Line", "Moved Chat", *PHONES}
    assert statuses(settings)["Gone Forum"] == "dead"
    report = (settings.reports_dir / "links.html").read_text(encoding="utf-8")
    dead_part = report.split("Left out of the directory")[1].split("Proposed address updates")[0]
    assert "Gone Forum" in dead_part and "404" in dead_part and "2026-11-25 03:00 UTC" in dead_part and "2026-11-27 03:00 UTC" in dead_part
    assert "lines record b" in dead_part
    proposals = report.split("Proposed address updates")[1].split("Failing links")[0]
    moved = f"http://moved.test:{online.ports[online.hosts[2]]}"
    assert f"{moved}/old" in proposals and f"{moved}/new" in proposals and ">lines<" in proposals
    assert max(online.max_inflight.values()) <= LIMITS.per_host
    assert online.counts[(online.hosts[0], "/ok")] == 3  # shared by two listings: once a night
    assert link_artifact() == [{"id": by_name(settings, "id")["Gone Forum"], "name": "Gone Forum", "before": "degraded", "after": "dead"}]


def link_artifact() -> list[dict]:
    """The table of the latest ``link-health-changes`` artifact."""
    from prefect.artifacts import Artifact

    artifact = Artifact.get("link-health-changes")
    assert artifact is not None
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_a_url_checked_recently_is_not_asked_again(prefect_harness, online, settings):
    run(settings, NOW)
    before = online.total_requests
    again = run(settings, NOW + dt.timedelta(hours=10))
    assert online.total_requests == before
    assert (again.links.checked, again.links.cached) == (0, 3)
    assert published(settings)["Alive Line"]["link_status"] == "alive"
    later = run(settings, NOW + dt.timedelta(hours=21))
    assert later.links.checked == 3 and online.total_requests > before


def test_unplugged_nights_mark_nothing_dead_and_keep_every_status(prefect_harness, online, settings, monkeypatch):
    run(settings, NOW)
    known = statuses(settings)
    unplug(monkeypatch)
    for i in range(1, 4):  # three nights: enough for three broken in a row, were skipped counted as broken
        summary = run(settings, NOW + i * DAY)
        assert summary.links.offline and "offline" in summary.links.offline
        assert summary.links.results == {"skipped": 3}
        assert any("offline" in m for m in summary.messages)
    assert statuses(settings) == known and "dead" not in known.values()
    assert set(published(settings)) == {"Alive Line", "Gone Forum", "Moved Chat", *PHONES}
    assert published(settings)["Alive Line"]["link_checked_at"] == "2026-11-25T03:00:00Z"


def test_skip_links_checks_nothing_and_keeps_statuses(prefect_harness, online, settings):
    run(settings, NOW)
    before = online.total_requests
    summary = run(settings, NOW + DAY, skip_links=True)
    assert summary.links is None and online.total_requests == before
    assert published(settings)["Gone Forum"]["link_status"] == "degraded"
    assert "--skip-links" in (settings.reports_dir / "links.html").read_text(encoding="utf-8")


def test_cli_run_with_skip_links(prefect_harness, online, settings, monkeypatch):
    monkeypatch.chdir(settings.sources_dir.parent)
    result = CliRunner().invoke(app, ["run", "--skip-links", "--sources", "sources", "--exports", "exports", "--warehouse", "wh.duckdb"])
    assert result.exit_code == 0, result.output
    assert "Links: not checked (--skip-links)" in result.output
    assert online.total_requests == 0


# --- curate links check ------------------------------------------------------------------------------------


def invoke(args: list[str], stdin: str) -> tuple[int, str]:
    env = {"CURATE_LINK_READ_TIMEOUT": "1", "CURATE_LINK_RETRIES": "0", "CURATE_LINK_MIN_HOST_INTERVAL": "0"}
    result = CliRunner().invoke(app, ["links", "check", *args], input=stdin, env=env)
    return result.exit_code, result.stdout


def test_links_check_jsonl(farm, tmp_path):
    urls = [farm.url(0, "/ok"), farm.url(1, "/page"), farm.url(2, "/old"), "https://nothing.invalid/"]
    listing = tmp_path / "urls.txt"
    listing.write_text("# links to check\n" + "\n".join([*urls, "", urls[0]]) + "\n", encoding="utf-8")
    code, out = invoke([str(listing), "--format", "jsonl", "--allow-private-hosts"], "")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert all(list(x) == ["url", "result", "http_status", "final_url", "error", "elapsed_ms"] for x in lines)
    assert [(x["url"], x["result"], x["http_status"]) for x in lines] == [
        (urls[0], "ok", 200), (urls[1], "broken", 404), (urls[2], "redirect", 200), (urls[3], "broken", None)
    ]  # fmt: skip
    assert lines[2]["final_url"] == farm.url(2, "/new") and lines[0]["error"] is None and "404" in lines[1]["error"]
    assert all(isinstance(x["elapsed_ms"], int) for x in lines)


def test_links_check_text_from_stdin_refuses_private_hosts_by_default(farm):
    code, out = invoke([], farm.url(0, "/ok") + "\n")
    assert code == 0
    assert out.startswith("skipped") and "private" in out
    assert farm.total_requests == 0
    code, out = invoke(["-", "--allow-private-hosts"], farm.url(2, "/old") + "\n")
    assert code == 0 and out.startswith("redirect 200") and "-> " + farm.url(2, "/new") in out  # a relative Location


def test_links_check_of_a_missing_file_is_a_bad_argument(tmp_path: Path):
    code, _ = invoke([str(tmp_path / "none.txt")], "")
    assert code == 2


def test_settings_default_links_are_polite():
    d = LinkSettings()
    assert (d.per_host, d.max_age_hours, d.dead_after, d.allow_private_hosts) == (2, 20.0, 3, False)
    assert replace(d, per_host=1).per_host == 1


def test_links_check_shows_a_progress_bar_only_on_a_terminal(farm):
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    urls = "".join(farm.url(i % 3, "/ok") + f"?n={i}\n" for i in range(6))
    command = [sys.executable, "-m", "curate.cli", "links", "check", "-", "--allow-private-hosts"]
    env = {**os.environ, "CURATE_LINK_MIN_HOST_INTERVAL": "0", "COLUMNS": "100"}
    master, slave = pty.openpty()
    try:
        done = subprocess.run(command, input=urls.encode(), stdout=subprocess.PIPE, stderr=slave, cwd=REPO, env=env, timeout=60)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal has nothing more
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert done.returncode == 0 and done.stdout.decode().count("ok ") == 6
    assert b"Checking links" in shown and b"6/6" in shown
    piped = subprocess.run(command, input=urls.encode(), capture_output=True, cwd=REPO, env=env, timeout=60, check=False)
    assert piped.returncode == 0 and piped.stderr == b""
