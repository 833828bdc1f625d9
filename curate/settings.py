"""The one settings object: paths and knobs, with environment overrides.

Stages receive values from here; only ``Settings.from_env`` reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from schemas.fields import VERIFIED_EXPIRED_MONTHS

ENV_PREFIX = "CURATE_"


@dataclass(frozen=True)
class Settings:
    sources_dir: Path = Path("sources")
    exports_dir: Path = Path("exports")
    warehouse_file: Path = Path("warehouse/directory.duckdb")
    #: releases kept in ``exports/releases`` (CONTRACT section 5)
    keep_releases: int = 14
    #: a listing verified longer ago than this is left out of public exports
    max_verified_age_months: int = VERIFIED_EXPIRED_MONTHS
    #: a source file larger than this is refused (it stays in sources/, untouched)
    max_source_bytes: int = 50_000_000
    #: URL sources: seconds to connect, and to wait for each read
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: URL sources: retries on 5xx, timeouts and resets, and the exponential backoff factor between them
    fetch_retries: int = 3
    fetch_backoff: float = 0.5
    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    #: the mass-removal guard (CONTRACT section 5): a release removing more than this share of all listings, or of a
    #: location's listings where at least ``mass_removal_min`` would go, is held ...
    mass_removal_share: float = 0.2
    mass_removal_min: int = 5
    #: ... unless this is set (``--allow-mass-removal``)
    allow_mass_removal: bool = False
    #: test hook (``CURATE_PAUSE_AT``): stop and wait at this step of publishing (``curate.export.STEPS``), so that a
    #: test can kill the process there; empty in normal use
    pause_at: str = ""

    @property
    def reports_dir(self) -> Path:
        return self.sources_dir / "reports"

    @property
    def overrides_file(self) -> Path:
        """Curators' ``same`` and ``different`` pairs for entity resolution."""
        return self.sources_dir / "overrides.toml"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        sources_dir: Path | None = None,
        exports_dir: Path | None = None,
        warehouse_file: Path | None = None,
        allow_mass_removal: bool = False,
    ) -> Settings:
        """Defaults, then the ``CURATE_*`` environment (SOURCES, EXPORTS, WAREHOUSE, CRON, TZ, PAUSE_AT), then explicit values."""
        env = os.environ if environ is None else environ
        d = cls()

        def pick(explicit: Path | None, key: str, default: Path) -> Path:
            return explicit or (Path(env[ENV_PREFIX + key]) if env.get(ENV_PREFIX + key) else default)

        return replace(
            d,
            sources_dir=pick(sources_dir, "SOURCES", d.sources_dir),
            exports_dir=pick(exports_dir, "EXPORTS", d.exports_dir),
            warehouse_file=pick(warehouse_file, "WAREHOUSE", d.warehouse_file),
            cron=env.get(ENV_PREFIX + "CRON") or d.cron,
            timezone=env.get(ENV_PREFIX + "TZ") or d.timezone,
            allow_mass_removal=allow_mass_removal,
            pause_at=env.get(ENV_PREFIX + "PAUSE_AT") or d.pause_at,
        )
