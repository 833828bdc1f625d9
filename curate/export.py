"""Releases (CONTRACT section 5): pure builders of every file's bytes, and the atomic publish.

``release_files`` turns public listings into ``{relative path: bytes}`` and touches
nothing; ``publish`` writes them into ``exports/releases/<id>``, checks them, and
only then switches ``exports/current``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pycountry

from curate.warehouse import run
from schemas.fields import BY_NAME, LISTING_FIELDS
from schemas.generate import to_json_schema, to_table_schema

SCHEMA_VERSION = "1.0"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PARTIAL_PREFIX = ".partial-"

Listing = dict[str, object]


# --- reading the warehouse --------------------------------------------------------------------


def _iso(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def public_listings(con: duckdb.DuckDBPyConnection) -> list[Listing]:
    """``out_listings`` as listing records, ordered by kind, then name, then id."""
    cols = ", ".join(LISTING_FIELDS)
    rows = run(con, f"SELECT {cols} FROM out_listings")
    listings = [{k: _iso(v) for k, v in zip(LISTING_FIELDS, r, strict=True)} for r in rows]
    return sorted(listings, key=lambda x: (str(x["kind"]), str(x["name"]), str(x["id"])))


# --- locations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    type: str  # country, region or worldwide
    parent: str | None

    def serves(self, listing: Listing) -> bool:
        """Does the listing belong in this location's file? (national, regional and worldwide rules)"""
        areas: set[str] = set(listing["areas"])  # type: ignore[call-overload]
        if self.type == "worldwide":
            return "WW" in areas
        if self.type == "region":
            return bool(areas & {self.code, str(self.parent), "WW"})
        return bool(areas & {self.code, "WW"}) or any(a.startswith(self.code + "-") for a in areas)


def location_name(code: str) -> str:
    if code == "WW":
        return "Worldwide"
    if "-" in code:
        sub = pycountry.subdivisions.get(code=code)
        return sub.name if sub else code
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or (country.name if country else code)


def locations_of(listings: Iterable[Listing]) -> list[Location]:
    """Worldwide, every country any listing serves, and every region named; sorted by code, WW first."""
    codes: set[str] = {"WW"}
    for listing in listings:
        for area in listing["areas"]:  # type: ignore[attr-defined]
            codes.add(area)
            if "-" in area:
                codes.add(area.split("-", 1)[0])
    out = []
    for code in sorted(codes, key=lambda c: (c != "WW", c)):
        if code == "WW":
            out.append(Location(code, location_name(code), "worldwide", None))
        elif "-" in code:
            out.append(Location(code, location_name(code), "region", code.split("-", 1)[0]))
        else:
            out.append(Location(code, location_name(code), "country", None))
    return out


# --- file builders (pure) ---------------------------------------------------------------------


def json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def csv_cell(value: object) -> str:
    """A CSV cell: lists joined with '; ', never starting like a spreadsheet formula (E.164 numbers aside)."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "; ".join(f"{v['source']}:{v['record_id']}" if isinstance(v, dict) else str(v) for v in value)
    else:
        text = str(value)
    is_phone = BY_NAME["phone"].pattern and text.startswith("+") and text[1:].isdigit()
    if text.startswith(FORMULA_START) and not is_phone:
        text = "'" + text
    return text


def csv_bytes(listings: list[Listing]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(LISTING_FIELDS)
    for listing in listings:
        writer.writerow([csv_cell(listing[f]) for f in LISTING_FIELDS])
    return buf.getvalue().encode("utf-8")


@dataclass(frozen=True)
class SourceMeta:
    """What a release says about a source: who made it and under which licence."""

    source_id: str
    licence: str | None = None
    attribution: str | None = None
    url: str | None = None


def datapackage(csv_paths: list[str], sources: list[SourceMeta]) -> dict[str, object]:
    """Frictionless data package of the release's CSV files, with each source's licence and attribution."""
    schema = to_table_schema()
    licences = sorted({s.licence for s in sources if s.licence})
    return {
        "profile": "tabular-data-package",
        "name": "support-directory",
        "title": "Support directory: mental-health helplines, chats, text lines and online communities by location",
        "licenses": [{"name": name} for name in licences],
        "sources": [
            {
                "title": s.attribution or s.source_id,
                "source_id": s.source_id,
                **({"path": s.url} if s.url else {}),
                **({"license": s.licence} if s.licence else {}),
            }
            for s in sorted(sources, key=lambda s: s.source_id)
        ],
        "resources": [
            {
                "name": "location-" + p.removeprefix("locations/").removesuffix(".csv").lower(),
                "path": p,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": schema,
            }
            for p in csv_paths
        ],
    }


def release_files(listings: list[Listing], sources: list[SourceMeta] | None = None) -> dict[str, bytes]:
    """Every file of a release but the manifest, by relative path.  Same listings, same bytes."""
    files: dict[str, bytes] = {"listings.json": json_bytes(listings)}
    index = []
    for loc in locations_of(listings):
        chosen = [x for x in listings if loc.serves(x)]
        head = {"code": loc.code, "name": loc.name, "type": loc.type, "parent": loc.parent}
        files[f"locations/{loc.code}.json"] = json_bytes({"location": head, "count": len(chosen), "listings": chosen})
        files[f"locations/{loc.code}.csv"] = csv_bytes(chosen)
        index.append({**head, "count": len(chosen), "json": f"locations/{loc.code}.json", "csv": f"locations/{loc.code}.csv"})
    files["index.json"] = json_bytes({"schema_version": SCHEMA_VERSION, "locations": index})
    files["schema/listing.schema.json"] = json_bytes(to_json_schema())
    files["datapackage.json"] = json_bytes(datapackage(sorted(p for p in files if p.endswith(".csv")), sources or []))
    return files


def manifest(
    files: dict[str, bytes], release_id: str, generated_at: dt.datetime, previous: str | None, counts: dict[str, int]
) -> dict[str, object]:
    return {
        "schema_version": SCHEMA_VERSION,
        "release_id": release_id,
        "generated_at": _iso(generated_at),
        "previous_release": previous,
        "counts": counts,
        "files": [{"path": p, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for p, b in sorted(files.items())],
    }


# --- publishing (the edge) --------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    release_id: str
    path: Path
    previous: str | None
    counts: dict[str, int]


def current_release(exports_dir: Path) -> str | None:
    link = exports_dir / "current"
    if link.is_symlink() and link.resolve().is_dir():
        return link.resolve().name
    return None


def new_release_id(releases: Path, now: dt.datetime) -> str:
    base = now.strftime("%Y%m%dT%H%M%SZ")
    rid, n = base, 1
    while (releases / rid).exists():
        n += 1
        rid = f"{base}-{n}"
    return rid


def validate_against_schemas(folder: Path) -> list[str]:
    """Problems of a written release against its own schemas: every listing against
    ``schema/listing.schema.json`` (JSON Schema 2020-12), every CSV against ``datapackage.json`` (Frictionless)."""
    import jsonschema
    from frictionless import Package

    problems: list[str] = []
    schema = json.loads((folder / "schema" / "listing.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    documents = [("listings.json", json.loads((folder / "listings.json").read_text(encoding="utf-8")))]
    for path in sorted((folder / "locations").glob("*.json")):
        documents.append((f"locations/{path.name}", json.loads(path.read_text(encoding="utf-8"))["listings"]))
    for name, listings in documents:
        for listing in listings:
            for error in validator.iter_errors(listing):
                problems.append(f"{name}: {listing.get('id')}: {error.message}")
    report = Package(str(folder / "datapackage.json")).validate()
    if not report.valid:
        for task in report.tasks:
            problems += [f"{task.name}: {e.message}" for e in task.errors[:5]]
        problems += [e.message for e in report.errors[:5]]
    return problems


def verify(folder: Path, man: dict[str, object]) -> list[str]:
    """Problems of a written release: files against the manifest (sizes, checksums), contents against its schemas."""
    problems = []
    for entry in man["files"]:  # type: ignore[attr-defined]
        path = folder / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
            continue
        data = path.read_bytes()
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']} does not match the manifest")
    return problems or validate_against_schemas(folder)


def publish(
    listings: list[Listing],
    exports_dir: Path,
    now: dt.datetime,
    keep: int,
    extra_counts: dict[str, int],
    sources: list[SourceMeta] | None = None,
) -> Release:
    """Write a release, check it, switch ``current`` to it atomically, and keep the newest ``keep``."""
    releases = exports_dir / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    for stale in releases.glob(PARTIAL_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed mid-write
    previous = current_release(exports_dir)
    release_id = new_release_id(releases, now)
    files = release_files(listings, sources)
    locs = [p for p in files if p.startswith("locations/") and p.endswith(".json")]
    counts = {"listings": len(listings), "locations": len(locs), **extra_counts}
    man = manifest(files, release_id, now, previous, counts)
    partial = releases / f"{PARTIAL_PREFIX}{release_id}"
    for rel, data in files.items():
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (partial / "manifest.json").write_bytes(json_bytes(man))
    problems = verify(partial, man)
    if problems:
        raise RuntimeError(f"release {release_id} failed its checks: {problems}")
    _fsync_tree(partial)
    final = releases / release_id
    os.rename(partial, final)
    tmp_link = exports_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(Path("releases") / release_id)
    os.replace(tmp_link, exports_dir / "current")
    prune(releases, keep, release_id)
    return Release(release_id, final, previous, counts)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def prune(releases: Path, keep: int, current: str) -> list[str]:
    """Remove all but the newest ``keep`` releases (never the current one); returns what was removed."""
    done = sorted((p.name for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    removed = [name for name in done[keep:] if name != current]
    for name in removed:
        shutil.rmtree(releases / name)
    return removed
