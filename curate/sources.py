"""Which sources there are: files in ``sources/`` and their options from ``sources/sources.toml``."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_ID = re.compile(r"^[a-z0-9_-]+$")
READABLE = (".csv", ".tsv")
#: recognised as sources but read by a later version; reported, not silently ignored
NOT_YET = (".xlsx", ".xls", ".json", ".ods")
IGNORED_NAMES = {"readme.md", "sources.toml", "overrides.toml"}


@dataclass(frozen=True)
class SourceOptions:
    """Options of one source from ``sources.toml`` (CONTRACT section 3)."""

    country: str | None = None
    kind: str | None = None
    priority: int = 0
    licence: str | None = None
    attribution: str | None = None
    enabled: bool = True
    url: str | None = None
    format: str | None = None
    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceFile:
    """A file in the sources folder that a run considers."""

    path: Path
    source_id: str
    options: SourceOptions

    @property
    def readable(self) -> bool:
        return self.path.suffix.lower() in READABLE


def load_options(text: str) -> dict[str, SourceOptions]:
    """Parse ``sources.toml`` text into options per source id."""
    table = tomllib.loads(text).get("sources", {})
    out = {}
    for source_id, raw in table.items():
        known = {k: raw[k] for k in SourceOptions.__dataclass_fields__ if k in raw}
        out[source_id] = SourceOptions(**known)
    return out


def report_name(source_id: str) -> str:
    """A safe file name for a source's reports, also for a refused source id (never a path)."""
    if SOURCE_ID.match(source_id):
        return source_id
    safe = re.sub(r"[^a-z0-9_-]+", "_", source_id.encode("ascii", "replace").decode().lower()).strip("_")
    return f"refused_{safe or 'file'}"


def source_id_for(path: Path) -> str:
    """The source id of a file: its stem, lowercased.  May be invalid; see ``SOURCE_ID``."""
    return path.stem.lower()


def discover(sources_dir: Path) -> tuple[list[SourceFile], str | None]:
    """Files to consider, sorted by name, and the ``sources.toml`` error if it could not be read."""
    options: dict[str, SourceOptions] = {}
    error = None
    toml = sources_dir / "sources.toml"
    if toml.is_file():
        try:
            options = load_options(toml.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, TypeError, UnicodeDecodeError) as exc:
            error = f"sources.toml could not be read: {exc}"
    found = []
    for path in sorted(p for p in sources_dir.iterdir() if p.is_file()) if sources_dir.is_dir() else []:
        name = path.name.lower()
        if name.startswith((".", "~$")) or name in IGNORED_NAMES or path.suffix.lower() not in READABLE + NOT_YET:
            continue
        sid = source_id_for(path)
        opts = options.get(sid, SourceOptions())
        if opts.enabled:
            found.append(SourceFile(path, sid, opts))
    return found, error
