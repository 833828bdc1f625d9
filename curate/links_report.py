"""The curators' link report, ``sources/reports/links.html`` (CONTRACT section 6).

It shows what a curator can act on: listings left out of the release because every link is dead, with the
evidence (each check's date, status code, final address and error); links that fail but are not dead yet;
permanent redirects proposed as URL updates, row by row; and what changed since the last run.
``render_links_html`` is pure; ``write_links_report`` is the edge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from curate.report import STYLE
from curate.settings import LinkSettings

EXTRA_STYLE = (
    ".dead{color:#a40000;font-weight:600} .degraded{color:#8a5a00;font-weight:600} .alive{color:#276738} code{word-break:break-all}"
)


@dataclass(frozen=True)
class Evidence:
    """One check of a link, as shown to curators."""

    checked_at: dt.datetime
    result: str
    http_status: int | None
    final_url: str | None
    error: str | None


@dataclass(frozen=True)
class DeadListing:
    id: str
    name: str
    rows: list[str]  # "source row N (record_id)" of every input row merged into it
    links: dict[str, list[Evidence]]  # link -> its latest judged checks, newest first


@dataclass(frozen=True)
class FailingLink:
    url: str
    status: str  # degraded or dead
    last_result: str
    http_status: int | None
    error: str | None
    broken_streak: int
    last_checked_at: dt.datetime
    rows: list[str]


@dataclass(frozen=True)
class Proposal:
    """A permanent redirect, proposed as an update of one cell of a curator's file."""

    source: str
    row: int
    record_id: str
    name: str
    column: str
    url: str
    suggested: str
    checked_at: dt.datetime


@dataclass
class LinkReportData:
    dead_listings: list[DeadListing] = field(default_factory=list)
    failing: list[FailingLink] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, name, before, after)
    status_counts: dict[str, int] = field(default_factory=dict)  # listings per link status


def front_page_only(url: str, suggested: str) -> bool:
    """A deep link redirected to a site's front page: the page itself is probably gone."""
    try:
        before, after = urlsplit(url), urlsplit(suggested)
    except ValueError:
        return False
    return before.path.strip("/") != "" and after.path.strip("/") == "" and not after.query


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _run_summary(run: Any, limits: LinkSettings) -> list[str]:
    if run is None:
        return ["<p>Links were not checked in this run (<code>--skip-links</code>); the statuses below are from earlier runs.</p>"]
    counts = ", ".join(f"{n} {r}" for r, n in sorted(run.results.items())) or "none"
    out = [
        f"<p>This run checked <b>{run.checked}</b> addresses ({escape(counts)}); <b>{run.cached}</b> more were checked "
        f"less than {limits.max_age_hours:g} hours ago and were not asked again.</p>"
    ]
    if run.offline:
        out.append(f"<p class='warning'>{escape(run.offline[0].upper() + run.offline[1:])}. Nothing was marked dead because of it.</p>")
    return out


def render_links_html(data: LinkReportData, now: dt.datetime, run: Any, limits: LinkSettings) -> str:
    """The whole page.  ``run`` is the flow's ``LinkRun`` (None when links were skipped)."""
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Link health</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>",
        "<h1>Link health</h1>",
        f"<p class='muted'>Written {_when(now)}. Every web address and chat address of every listing is checked once a night. "
        f"A listing is left out of the directory only when every one of its links failed as missing (404, 410 or a name that "
        f"does not exist) {limits.dead_after} checks in a row; a link that is blocked, slow or failing otherwise only shows "
        "here.</p>",
        *_run_summary(run, limits),
    ]
    if data.status_counts:
        counts = ", ".join(f"<span class='{escape(k)}'>{n} {escape(k)}</span>" for k, n in sorted(data.status_counts.items()))
        out.append(f"<p>Listings by link status: {counts}.</p>")

    out.append(f"<h2>Left out of the directory: every link dead ({len(data.dead_listings)})</h2>")
    if not data.dead_listings:
        out.append("<p>None.</p>")
    for listing in data.dead_listings:
        out.append(
            f"<div class='row' id='{escape(listing.id)}'><h3>{escape(listing.name)} <span class='muted'>{escape(listing.id)}</span></h3>"
        )
        out.append(f"<p>From: {escape('; '.join(listing.rows))}</p>")
        for link, checks in listing.links.items():
            out.append(f"<p><code>{escape(link)}</code></p><table><tr><th>checked</th><th>result</th><th>status</th>"
                       "<th>final address</th><th>why</th></tr>")  # fmt: skip
            for e in checks:
                out.append(
                    f"<tr><td>{_when(e.checked_at)}</td><td>{escape(e.result)}</td><td>{e.http_status or ''}</td>"
                    f"<td><code>{escape(e.final_url or '')}</code></td><td>{escape(e.error or '')}</td></tr>"
                )
            out.append("</table>")
        out.append(
            "<p class='fix'>What to do: find the service's current address and write it in the row(s) above, or delete "
            "the row if the service has closed. It comes back as soon as one of its links works.</p></div>"
        )

    out.append(f"<h2>Proposed address updates: permanent redirects ({len(data.proposals)})</h2>")
    if not data.proposals:
        out.append("<p>None.</p>")
    else:
        out.append("<table><tr><th>source</th><th>row</th><th>listing</th><th>column</th><th>now</th><th>proposed</th></tr>")
        for p in data.proposals:
            gone = front_page_only(p.url, p.suggested)
            hint = " <span class='warning'>(leads to the front page: the page may be gone)</span>" if gone else ""
            out.append(
                f"<tr><td>{escape(p.source)}</td><td>{p.row}</td><td>{escape(p.name)}</td><td>{escape(p.column)}</td>"
                f"<td><code>{escape(p.url)}</code></td><td><code>{escape(p.suggested)}</code>{hint}</td></tr>"
            )
        out.append("</table><p class='fix'>What to do: the site moved these pages for good; write the proposed address in "
                   "the row and column shown.</p>")  # fmt: skip

    out.append(f"<h2>Failing links, not (yet) taken out ({len(data.failing)})</h2>")
    if not data.failing:
        out.append("<p>None.</p>")
    else:
        out.append("<table><tr><th>link</th><th>status</th><th>last result</th><th>why</th><th>missing in a row</th>"
                   "<th>last checked</th><th>rows</th></tr>")  # fmt: skip
        for f in data.failing:
            out.append(
                f"<tr><td><code>{escape(f.url)}</code></td><td class='{escape(f.status)}'>{escape(f.status)}</td>"
                f"<td>{escape(f.last_result)}</td><td>{escape(f.error or '')}</td><td>{f.broken_streak}</td>"
                f"<td>{_when(f.last_checked_at)}</td><td>{escape('; '.join(f.rows))}</td></tr>"
            )
        out.append("</table>")

    out.append(f"<h2>Changed since the last run ({len(data.changes)})</h2>")
    if not data.changes:
        out.append("<p>No listing changed its link status.</p>")
    else:
        out.append("<table><tr><th>listing</th><th>before</th><th>now</th></tr>")
        for lid, name, before, after in data.changes:
            out.append(f"<tr><td>{escape(name)} <span class='muted'>{escape(lid)}</span></td><td>{escape(before)}</td>"
                       f"<td class='{escape(after)}'>{escape(after)}</td></tr>")  # fmt: skip
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_links_report(reports_dir: Path, data: LinkReportData, now: dt.datetime, run: Any, limits: LinkSettings) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "links.html"
    path.write_text(render_links_html(data, now, run, limits), encoding="utf-8")
    return path
