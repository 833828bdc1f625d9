"""The flow `curate serve` deploys (``curate-nightly`` on a cron, ``curate-inbox`` when curators drop files).

Deployment parameters are plain strings (they travel as JSON through the Prefect API); this is the edge that
turns them, with the ``CURATE_*`` environment, into the one settings object, then runs ``curate-run``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from curate.settings import Settings
from flows.curate_run import configured


@flow(name="curate-scheduled")
def curate_scheduled(sources: str, exports: str, warehouse: str, trigger: str = "nightly") -> dict[str, object]:
    """One pipeline run started by the schedule or by a curator's drop (``trigger`` says which); fails when the
    release is held, so that the run shows red in Prefect's UI."""
    settings = Settings.from_env(sources_dir=Path(sources), exports_dir=Path(exports), warehouse_file=Path(warehouse))
    summary = configured(settings)(settings)
    if summary.held:
        raise RuntimeError(f"release held, nothing published ({trigger}): {summary.held}")
    return {"trigger": trigger, "run_id": summary.run_id, "release_id": summary.release_id, "listings": summary.public_listings}
