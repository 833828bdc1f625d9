"""The one settings object: paths and knobs, with environment overrides.

Stages receive values from here; only ``Settings.from_env`` reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

ENV_PREFIX = "CURATE_"


@dataclass(frozen=True)
class Settings:
    sources_dir: Path = Path("sources")
    exports_dir: Path = Path("exports")
    warehouse_file: Path = Path("warehouse/directory.duckdb")
    #: releases kept in ``exports/releases`` (CONTRACT section 5)
    keep_releases: int = 14
    #: a listing verified longer ago than this is left out of public exports
    max_verified_age_months: int = 24
    cron: str = "0 3 * * *"
    timezone: str = "UTC"

    @property
    def reports_dir(self) -> Path:
        return self.sources_dir / "reports"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``CURATE_SOURCES``/``CURATE_EXPORTS``/``CURATE_WAREHOUSE``/``CURATE_CRON``/``CURATE_TZ``, then non-None overrides."""
        env = os.environ if environ is None else environ
        s = cls()
        mapping = {"SOURCES": "sources_dir", "EXPORTS": "exports_dir", "WAREHOUSE": "warehouse_file", "CRON": "cron", "TZ": "timezone"}
        for key, attr in mapping.items():
            if env.get(ENV_PREFIX + key):
                value = env[ENV_PREFIX + key]
                s = replace(s, **{attr: Path(value) if attr.endswith(("_dir", "_file")) else value})
        given = {k: (Path(v) if k.endswith(("_dir", "_file")) else v) for k, v in overrides.items() if v is not None}
        return replace(s, **given)  # type: ignore[arg-type]
