"""``curate export``: rebuild core and publish a release from the warehouse, without re-ingesting."""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from curate import export
from curate.lock import warehouse_lock
from curate.settings import Settings
from curate.sources import discover
from flows.curate_run import build_core, export_release


@flow(name="curate-export", validate_parameters=False)
def curate_export(settings: Settings, now: dt.datetime | None = None) -> export.Release | export.Held:
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with warehouse_lock(settings.warehouse_file, settings.lock_wait_seconds, "curate export", get_run_logger().warning):
        build_core(settings, now)
        return export_release(settings, now, "export-" + now.strftime("%Y%m%dT%H%M%SZ"), discover(settings.sources_dir)[0])
