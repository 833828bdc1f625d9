"""Artifacts per run, read back from the Prefect server: summary table, rejected rows per source, link health,
and the reason a release was held."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from curate import artifacts
from tests.test_flow import LATER, NOW, settings_for
from tests.test_release_flow import HEADER, lines


def run_artifacts(settings, now) -> tuple[object, dict[str, object]]:
    """Run the flow, then read its artifacts back through the Prefect client, by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.curate_run import curate_run

    state = curate_run(settings, now=now, return_state=True)
    flow_run_id: UUID = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return state.result(), {a.key: a for a in found}


def table(artifact) -> list[dict[str, object]]:
    assert artifact.type == "table"
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return data


def test_a_run_leaves_summary_rejected_rows_and_link_health(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    summary, found = run_artifacts(settings, NOW)
    assert {"curate-summary", "curate-rejected-alpha-lines", "curate-link-health"} <= set(found)
    assert "curate-rejected-beta-lines" not in found and "curate-release-held" not in found  # beta has no rejected row
    rows = table(found["curate-summary"])
    by_source = {r["source"]: r for r in rows}
    assert by_source["alpha_lines"]["rejected"] == 1 and by_source["beta_lines"]["rejected"] == 0
    total = by_source["TOTAL"]
    assert (total["rows"], total["accepted"], total["rejected"]) == (10, 9, 1)
    assert total["listings"] == 7 and total["public_listings"] == 6
    assert total["status"] == f"published {summary.release_id}"
    rejected = table(found["curate-rejected-alpha-lines"])
    assert len(rejected) >= 1 and all(r["row"] and r["message"] and r["fix"] is not None for r in rejected)
    assert {r["row"] for r in rejected} == {p["row"] for p in summary.rejected["alpha_lines"] if p["row"] is not None}
    links = found["curate-link-health"]
    assert links.type == "markdown" and summary.links is not None
    assert f"{summary.links.dead_listings} listings dead" in links.data
    assert all(f"| {k} | {v} |" in links.data for k, v in summary.links.results.items())
    assert {k: v for k, v in total.items() if k.startswith("links_")} == {
        **{f"links_{k}": v for k, v in summary.links.results.items()},
        "links_dead_listings": summary.links.dead_listings,
    }


def test_a_held_release_leaves_its_reason(prefect_harness, tmp_path: Path) -> None:
    src = tmp_path / "sources"
    src.mkdir()
    (src / "norway.csv").write_text(HEADER + lines("no", "NO", 10), encoding="utf-8")
    settings = settings_for(tmp_path, src)
    run_artifacts(settings, NOW)
    (src / "norway.csv").write_text(HEADER + lines("no", "NO", 5), encoding="utf-8")
    summary, found = run_artifacts(settings, LATER)
    assert summary.held
    held = found["curate-release-held"]
    assert held.type == "markdown" and summary.held in held.data and "--allow-mass-removal" in held.data
    assert table(found["curate-summary"])[-1]["status"] == f"held: {summary.held}"


def test_link_health_counts_are_shown_when_given() -> None:
    text = artifacts.links_markdown({"ok": 5, "broken": 1}, dead_listings=1, offline=None, cached=2)
    assert "| ok | 5 |" in text and "| broken | 1 |" in text and "6 URLs checked this run, 2 answered" in text
    assert "1 listings dead" in text and "offline" not in text
    assert "concluded it was offline**: most hosts failed" in artifacts.links_markdown({"skipped": 9}, offline="most hosts failed")
    assert "not checked" in artifacts.links_markdown(None)
    rows = artifacts.summary_table([], 3, 3, {"added": 1}, {"ok": 2, "dead_listings": 1}, "r1", None)
    assert rows[-1]["links_ok"] == 2 and rows[-1]["links_dead_listings"] == 1 and rows[-1]["added"] == 1
    assert rows[-1]["removed"] == 0


def test_rejected_rows_are_capped_and_keys_are_valid() -> None:
    many = [{"row": i, "column": "url", "value": "x", "severity": "error", "rule": "r", "message": "m", "fix": "f"} for i in range(2, 500)]
    many.append({"row": None, "severity": "error", "message": "file-level"})
    many.append({"row": 3, "severity": "warning", "message": "only a warning"})
    shown = artifacts.rejected_table(many)
    assert len(shown) == artifacts.MAX_REJECTED_ROWS and shown[0]["row"] == 2
    assert artifacts.rejected_key("Alpha_Lines.v2") == "curate-rejected-alpha-lines-v2"


def test_a_run_keeps_only_the_rejected_rows_its_artifacts_show(prefect_harness, tmp_path: Path, monkeypatch) -> None:
    """The summary carries each source's first ``MAX_REJECTED_ROWS`` row errors (at 1M rows, all of them as dicts
    were hundreds of MB); the curator report still lists every one."""
    monkeypatch.setattr(artifacts, "MAX_REJECTED_ROWS", 2)
    sources = tmp_path / "sources"
    sources.mkdir()
    bad = "".join(f"b{i},Bad Line {i},not-a-kind,https://b{i}.example/,NO,general\n" for i in range(5))
    (sources / "mixed.csv").write_text(HEADER + lines("m", "NO", 3) + bad, encoding="utf-8")
    settings = settings_for(tmp_path, sources)
    summary, found = run_artifacts(settings, NOW)
    assert [p["row"] for p in summary.rejected["mixed"]] == [5, 6]  # the first two bad rows (the header is row 1)
    assert [r["row"] for r in table(found["curate-rejected-mixed"])] == [5, 6]
    reported = (settings.reports_dir / "mixed.rejected.csv").read_text(encoding="utf-8")
    assert all(f"Bad Line {i}" in reported for i in range(5))
