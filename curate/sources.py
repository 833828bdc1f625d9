"""Which sources there are: files and HSDS folders in ``sources/``, URL sources and options from ``sources/sources.toml``."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_ID = re.compile(r"^[a-z0-9_-]+$")
#: file ending -> format read
FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".xlsx": "xlsx", ".json": "json", ".zip": "hsds"}
#: spreadsheet files we recognise but cannot read: reported, never silently ignored
UNSUPPORTED = (".xls", ".ods", ".numbers", ".xlsm", ".xlsb")
IGNORED_NAMES = {"readme.md", "sources.toml", "overrides.toml", "template.csv"}
IGNORED_DIRS = {"reports"}


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
    """A source a run considers: a file or HSDS folder in the sources folder, or a URL."""

    path: Path | None
    source_id: str
    options: SourceOptions

    @property
    def name(self) -> str:
        """How curators know it: the file name, or the URL."""
        return self.path.name if self.path is not None else str(self.options.url)

    @property
    def format(self) -> str | None:
        """csv, tsv, xlsx, json or hsds; None for a file type we do not read."""
        if self.options.format:
            return self.options.format.lower()
        if self.path is None:
            return guess_format(str(self.options.url))
        if self.path.is_dir():
            return "hsds"
        return FORMATS.get(self.path.suffix.lower())


def guess_format(name: str) -> str | None:
    """The format a file or URL name suggests (None: sniff what comes back)."""
    path = name.split("?", 1)[0].split("#", 1)[0].lower()
    if path.endswith("datapackage.json"):
        return "hsds"
    return next((fmt for suffix, fmt in FORMATS.items() if path.endswith(suffix)), None)


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


def report_path(reports_dir: Path, source_id: str) -> Path:
    """A source's curator report (``<reports_dir>/<report_name>.html``): a source whose report is gone is parsed again."""
    return reports_dir / f"{report_name(source_id)}.html"


def source_id_for(path: Path) -> str:
    """The source id of a file: its stem, lowercased.  May be invalid; see ``SOURCE_ID``."""
    return path.stem.lower() if path.is_file() else path.name.lower()


def discover(sources_dir: Path) -> tuple[list[SourceFile], str | None]:
    """Sources to consider (files and folders sorted by name, then URL sources), and the ``sources.toml`` error if any."""
    options: dict[str, SourceOptions] = {}
    error = None
    toml = sources_dir / "sources.toml"
    if toml.is_file():
        try:
            options = load_options(toml.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, TypeError, UnicodeDecodeError) as exc:
            error = f"sources.toml could not be read: {exc}"
    found = []
    entries = sorted(sources_dir.iterdir()) if sources_dir.is_dir() else []
    for path in entries:
        name = path.name.lower()
        if name.startswith((".", "~$")) or name in IGNORED_NAMES:
            continue
        if path.is_dir():
            if name in IGNORED_DIRS or (not (path / "datapackage.json").is_file() and not (path / "services.csv").is_file()):
                continue
        elif path.suffix.lower() not in (*FORMATS, *UNSUPPORTED):
            continue
        sid = source_id_for(path)
        opts = options.get(sid, SourceOptions())
        if opts.url:
            opts = SourceOptions(**{**opts.__dict__, "url": None})  # a file of that name wins over the URL
        if opts.enabled:
            found.append(SourceFile(path, sid, opts))
    file_ids = {s.source_id for s in found}
    for sid, opts in sorted(options.items()):
        if opts.url and opts.enabled and sid not in file_ids:
            found.append(SourceFile(None, sid, opts))
    return found, error
