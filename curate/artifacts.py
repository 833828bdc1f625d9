"""What a run leaves in Prefect for operators (CONTRACT section 7): a summary table, the rejected rows per
source, link health changes, and the reason when a release is held.

The ``*_table`` / ``*_markdown`` functions are pure (values in, rows or text out); :func:`record` is the edge
that hands them to Prefect.  Keys are stable so that the Prefect UI shows each artifact's history across runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: at most this many rejected rows per source go into an artifact; the full list is in sources/reports/
MAX_REJECTED_ROWS = 200

SUMMARY_KEY = "curate-summary"
LINKS_KEY = "curate-link-health"
HELD_KEY = "curate-release-held"


def rejected_key(source_id: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return "curate-rejected-" + (re.sub(r"[^a-z0-9-]+", "-", source_id.lower()).strip("-") or "source")


def summary_table(
    sources: Sequence[Mapping[str, object]],
    listings: int,
    public_listings: int,
    changes: Mapping[str, int],
    link_health: Mapping[str, int],
    release: str | None,
    held: str | None,
) -> list[dict[str, Any]]:
    """One row per source, then a ``TOTAL`` row carrying the release's listings, changes and link health counts."""
    rows: list[dict[str, Any]] = [
        {"source": str(s["source"]), "rows": s["rows"], "accepted": s["accepted"], "rejected": s["rejected"],
         "status": "not used" if not s.get("usable", True) else ("unchanged" if s.get("unchanged") else "read")}
        for s in sources
    ]  # fmt: skip
    total: dict[str, Any] = {
        "source": "TOTAL",
        "rows": sum(int(str(s["rows"])) for s in sources),
        "accepted": sum(int(str(s["accepted"])) for s in sources),
        "rejected": sum(int(str(s["rejected"])) for s in sources),
        "status": f"held: {held}" if held else (f"published {release}" if release else "not published"),
        "listings": listings,
        "public_listings": public_listings,
        **{k: changes.get(k, 0) for k in ("added", "removed", "changed")},
        **{f"links_{k}": v for k, v in sorted(link_health.items())},
    }
    return [*rows, total]


def rejected_table(problems: Sequence[Mapping[str, object]], limit: int = MAX_REJECTED_ROWS) -> list[dict[str, Any]]:
    """The row-level errors of one source (row, column, value, message, fix), at most ``limit`` of them."""
    return [
        {k: p.get(k) for k in ("row", "column", "value", "rule", "message", "fix")}
        for p in problems
        if p.get("severity") == "error" and p.get("row") is not None
    ][:limit]


def links_markdown(results: Mapping[str, int] | None, dead_listings: int = 0, offline: str | None = None, cached: int = 0) -> str:
    """Link checks of the run per result, dead listings, and whether the checker concluded it was offline.

    ``results`` is ``None`` when links were not checked (``--skip-links``).  The listings whose link status changed
    are the ``link-health-changes`` table the link step leaves (only when some changed)."""
    if results is None:
        return "# Link health\n\nLinks were not checked in this run (--skip-links)."
    lines = ["# Link health", "",
             f"{sum(results.values())} URLs checked this run, {cached} answered by a recent check; "
             f"{dead_listings} listings dead (withheld from the release)."]  # fmt: skip
    if offline:
        lines += ["", f"**The checker concluded it was offline**: {offline}. Those links were recorded as skipped, not failed."]
    lines += ["", "| result | URLs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(results.items())]
    lines += ["", "Listings whose link status changed: the `link-health-changes` artifact of this run (none when it is missing)."]
    return "\n".join(lines)


def held_markdown(reason: str) -> str:
    return (
        "# Release held: nothing was published\n\n"
        f"{reason}\n\n"
        "`exports/current` still points at the previous release. If the removals are intended, run "
        "`curate export --allow-mass-removal`."
    )


def record(
    run_id: str,
    summary: list[dict[str, Any]],
    rejected: Mapping[str, Sequence[Mapping[str, object]]],
    links: str,
    held: str | None,
) -> list[str]:
    """Create the run's artifacts in Prefect (inside a flow run); returns the keys written."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_table_artifact(summary, key=SUMMARY_KEY, description=f"curate run {run_id}: sources, rows, listings, changes")
    keys = [SUMMARY_KEY]
    for source_id, problems in sorted(rejected.items()):
        table = rejected_table(problems)
        if not table:
            continue
        shown = f" (first {len(table)})" if len(table) == MAX_REJECTED_ROWS else ""
        create_table_artifact(
            table,
            key=rejected_key(source_id),
            description=f"rejected rows of {source_id}{shown} in run {run_id}; all of them: sources/reports/{source_id}.html",
        )
        keys.append(rejected_key(source_id))
    create_markdown_artifact(links, key=LINKS_KEY, description=f"link health in run {run_id}")
    keys.append(LINKS_KEY)
    if held:
        create_markdown_artifact(held_markdown(held), key=HELD_KEY, description=f"why run {run_id} published nothing")
        keys.append(HELD_KEY)
    return keys
