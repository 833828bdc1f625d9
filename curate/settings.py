"""The one settings object: paths and knobs, with environment overrides.

Stages receive values from here; only ``Settings.from_env`` reads the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from schemas.fields import VERIFIED_EXPIRED_MONTHS

ENV_PREFIX = "CURATE_"
LINK_ENV_PREFIX = "CURATE_LINK_"
LINK_USER_AGENT = "support-directory-linkcheck/0.1 (+https://github.com/support-directory; checks that directory listings still work)"


@dataclass(frozen=True)
class LinkSettings:
    """Knobs of the link-health checker (CONTRACT section 6); each can be set as ``CURATE_LINK_<NAME>``."""

    #: seconds to connect, to wait for each read, and to wait for a name lookup (DNS has no timeout of its own)
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    dns_timeout: float = 3.0
    #: retries after the first try, on 5xx, 429, timeouts, resets and refused connections
    retries: int = 2
    #: exponential backoff: about ``backoff * 2**n`` seconds before retry n (with jitter: 50-100% of it)
    backoff: float = 0.5
    #: a 429's ``Retry-After`` is honoured up to this many seconds
    retry_after_cap: float = 30.0
    #: requests in flight at once to one host, and over all hosts (the worker threads)
    per_host: int = 2
    workers: int = 32
    #: seconds between the starts of two requests to one host
    min_host_interval: float = 0.1
    #: a URL checked (not skipped) less than this many hours ago is not requested again
    max_age_hours: float = 20.0
    #: bytes of a response body read at most (to recognise a bot wall); the rest is never downloaded
    body_cap: int = 65_536
    max_redirects: int = 10
    user_agent: str = LINK_USER_AGENT
    #: request private, loopback, link-local and reserved addresses too (never for the public directory's runs)
    allow_private_hosts: bool = False
    #: networks (CIDR) that may be requested although private, e.g. an intranet; "" for none, comma separated in the environment
    allow_networks: tuple[str, ...] = ()
    #: the run is offline when more than this share of the hosts tried could not be reached (DNS or connection) ...
    offline_fraction: float = 0.5
    #: ... and at least this many hosts were tried.  1: a run whose only host cannot be reached cannot tell a gone
    #: site from a dead network, and never takes a listing out on such evidence
    offline_min_hosts: int = 1
    #: a batch stops early as offline when this many hosts failed to connect before any answered
    offline_early_hosts: int = 8
    #: circuit breaker: after this many timeouts in a row, a host's other URLs are not tried this run
    host_max_timeouts: int = 3
    #: a link is dead after this many ``broken`` results in a row
    dead_after: int = 3
    #: the flow checks the URLs in at most this many batches (tasks), each holding whole hosts
    batches: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LinkSettings:
        """Defaults overridden by ``CURATE_LINK_<NAME>`` (e.g. ``CURATE_LINK_PER_HOST=1``); a bad value is an error."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(LINK_ENV_PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            default = getattr(cls(), f.name)
            try:
                if isinstance(default, bool):
                    low = raw.strip().lower()
                    if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                        raise ValueError(raw)
                    values[f.name] = low in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, tuple):
                    values[f.name] = tuple(x.strip() for x in raw.split(",") if x.strip())
                else:
                    values[f.name] = raw
            except ValueError:
                raise ValueError(f"{LINK_ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {type(default).__name__}") from None
        return cls(**values)  # type: ignore[arg-type]


#: where per-source ingest runs (``Settings.task_runner``)
TASK_RUNNERS = ("threads", "dask")
#: an amount of memory as DuckDB's ``memory_limit`` takes it
MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


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
    #: link health (CONTRACT section 6)
    links: LinkSettings = field(default_factory=LinkSettings)
    #: one writer (``CURATE_LOCK_WAIT``): seconds a run or export waits for another one holding the warehouse
    #: before it exits 1 naming the holder
    lock_wait_seconds: float = 300.0
    #: a whole run that takes longer than this (``CURATE_FLOW_TIMEOUT``, seconds) is stopped and reported failed
    flow_timeout_seconds: float = 3600.0
    #: failure notifications (``CURATE_NOTIFY_WEBHOOK``): a URL that receives a JSON POST when a run fails or a
    #: release is held; failures are always logged
    notify_webhook: str = ""
    #: ``curate serve``: seconds between looks at sources/ (``CURATE_INBOX_POLL``), and how long the folder must be
    #: still, every file's size and time unchanged, before a burst of drops starts one run (``CURATE_INBOX_SETTLE``)
    inbox_poll_seconds: float = 2.0
    #: scale-out (``CURATE_TASK_RUNNER``): ``threads`` runs per-source ingest in threads of this process; ``dask``
    #: on the Dask cluster at ``CURATE_DASK_ADDRESS`` (``tcp://scheduler:8786``), or on a temporary local cluster
    #: when no address is given.  Workers must see the same sources, warehouse and exports paths.
    task_runner: str = "threads"
    dask_address: str = ""
    #: threads for per-source ingest with the ``threads`` runner (``CURATE_WORKERS``)
    workers: int = 4
    inbox_settle_seconds: float = 10.0
    #: memory DuckDB may use for the warehouse (``CURATE_DUCKDB_MEMORY``, as DuckDB writes it: ``2GB``, ``512MiB``);
    #: beyond it, joins and sorts spill to a folder beside the warehouse file.  Empty: DuckDB's own default, 80% of
    #: the machine's memory, which entity resolution at 1M rows takes 3 GB of.  Raise it on a bigger machine.
    duckdb_memory: str = "2GB"

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
        """Defaults, then the ``CURATE_*`` environment (SOURCES, EXPORTS, WAREHOUSE, CRON, TZ, PAUSE_AT, LINK_*, LOCK_WAIT,
        FLOW_TIMEOUT, NOTIFY_WEBHOOK, INBOX_POLL, INBOX_SETTLE, TASK_RUNNER, DASK_ADDRESS, WORKERS, DUCKDB_MEMORY), then explicit
        values."""
        env = os.environ if environ is None else environ
        d = cls()

        def pick(explicit: Path | None, key: str, default: Path) -> Path:
            return explicit or (Path(env[ENV_PREFIX + key]) if env.get(ENV_PREFIX + key) else default)

        def memory(value: str) -> str:
            if value and not MEMORY.match(value):
                raise ValueError(f"{ENV_PREFIX}DUCKDB_MEMORY={value!r} must be an amount of memory such as 2GB or 512MiB")
            return value

        def runner(value: str) -> str:
            if value not in TASK_RUNNERS:
                raise ValueError(f"{ENV_PREFIX}TASK_RUNNER={value!r} must be one of {', '.join(TASK_RUNNERS)}")
            return value

        def seconds(key: str, default: float) -> float:
            raw = env.get(ENV_PREFIX + key, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{key}={raw!r} is not a number of seconds") from None
            if value < 0:
                raise ValueError(f"{ENV_PREFIX}{key}={raw!r} must not be negative")
            return value

        return replace(
            d,
            sources_dir=pick(sources_dir, "SOURCES", d.sources_dir),
            exports_dir=pick(exports_dir, "EXPORTS", d.exports_dir),
            warehouse_file=pick(warehouse_file, "WAREHOUSE", d.warehouse_file),
            cron=env.get(ENV_PREFIX + "CRON") or d.cron,
            timezone=env.get(ENV_PREFIX + "TZ") or d.timezone,
            allow_mass_removal=allow_mass_removal,
            pause_at=env.get(ENV_PREFIX + "PAUSE_AT") or d.pause_at,
            links=LinkSettings.from_env(env),
            lock_wait_seconds=seconds("LOCK_WAIT", d.lock_wait_seconds),
            flow_timeout_seconds=seconds("FLOW_TIMEOUT", d.flow_timeout_seconds),
            inbox_poll_seconds=seconds("INBOX_POLL", d.inbox_poll_seconds) or d.inbox_poll_seconds,
            inbox_settle_seconds=seconds("INBOX_SETTLE", d.inbox_settle_seconds),
            notify_webhook=env.get(ENV_PREFIX + "NOTIFY_WEBHOOK", d.notify_webhook).strip(),
            task_runner=runner(env.get(ENV_PREFIX + "TASK_RUNNER", "").strip().lower() or d.task_runner),
            dask_address=env.get(ENV_PREFIX + "DASK_ADDRESS", d.dask_address).strip(),
            workers=max(1, int(seconds("WORKERS", d.workers))),
            duckdb_memory=memory(env.get(ENV_PREFIX + "DUCKDB_MEMORY", d.duckdb_memory).strip()),
        )
