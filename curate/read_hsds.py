"""Reading an Open Referral HSDS 3.0 tabular data package: one contract row per service.

The package is a set of CSV tables (``services.csv``, ``organizations.csv``,
``phones.csv`` ...) that refer to each other by id. They are joined here into the
contract's columns, values kept as text; normalisation happens later, as for any
curator file. ``_row`` is the service's row in ``services.csv`` (header = 1).

Mapping (HSDS table.field -> contract column):

- ``record_id``: services.id; ``name``: services.name; ``description``: services.description
- ``url``: services.url, else organizations.website of the service's organisation
- ``email``: services.email, else organizations.email
- ``phone``: the first number in phones.csv of the service (by ``service_id``, or by the
  ``service_at_location_id`` of one of its locations) that is not a text, fax or pager
  line; else the same among the organisation's own phones (``organization_id`` without
  ``service_id``)
- ``sms``: the first of those numbers whose type is ``sms`` or ``text``
- ``phone_numbers_all``: every one of those numbers, ``;``-separated, so none is lost
- ``country``: addresses.country of a location the service is offered at
  (service_at_location -> locations -> addresses; physical addresses first)
- ``region``: addresses.state_province of those addresses (in that country), ``;``-separated
- ``languages``: languages.code (else languages.name) of the service, ``;``-separated
- ``hours``: ``24/7`` when its schedules cover every day of the week from 00:00 to
  23:59/24:00, or a schedule's description says 24/7; else empty
- ``kind``: empty (the source's options give the default)
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath

import pandas as pd

from curate.read import ROW, Table
from curate.read_xlsx import megabytes

SEPARATOR = ";"
COLUMNS = (
    "record_id",
    "name",
    "kind",
    "description",
    "url",
    "phone",
    "sms",
    "email",
    "country",
    "region",
    "languages",
    "hours",
    "phone_numbers_all",
)
#: HSDS 3.0 resource name -> its file in a package laid out as the specification's
DEFAULT_PATHS = {
    "service": "services.csv",
    "organization": "organizations.csv",
    "phone": "phones.csv",
    "language": "languages.csv",
    "address": "addresses.csv",
    "location": "locations.csv",
    "service_at_location": "service_at_location.csv",
    "schedule": "schedules.csv",
}
TEXT_TYPES = {"sms", "text"}
NOT_VOICE_TYPES = TEXT_TYPES | {"fax", "pager"}
WEEK = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"}
MIDNIGHT = {"00:00", "00:00:00"}
END_OF_DAY = {"23:59", "23:59:00", "23:59:59", "24:00", "24:00:00", "00:00", "00:00:00"}
ALWAYS_OPEN_TEXT = re.compile(r"\b24\s*/\s*7\b|\b24\s*x\s*7\b|\b24\s*hours\s*a\s*day,?\s*(?:and\s*)?7\s*days\s*a\s*week\b", re.IGNORECASE)
ISO_3166_2 = re.compile(r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$")
SUBDIVISION_NAME = re.compile(r"^[^\W\d_][\w .,'’()-]{0,79}$")

Rows = list[dict[str, str]]


class PackageError(Exception):
    """A table of the package cannot be read."""


# --- the zipped form --------------------------------------------------------------------------------


def hsds_files_from_zip(data: bytes, max_unzipped_bytes: int = 200_000_000) -> dict[str, bytes] | str:
    """A zipped package as ``{relative path: bytes}``, or why it is refused.

    One folder that holds everything (``hsds/services.csv``) is stripped; a member with an
    absolute path or ``..`` refuses the whole archive; macOS litter (``__MACOSX/``,
    ``.DS_Store``) is skipped. Sizes are those the ZIP directory declares, which Python's
    ``zipfile`` never inflates past.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        return f"it is not a ZIP archive ({exc})"
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > max_unzipped_bytes:
            return f"it would unpack to more than {megabytes(max_unzipped_bytes)} MB, which is more than we accept"
        named: list[tuple[list[str], zipfile.ZipInfo]] = []
        for member in members:
            raw = member.filename.replace("\\", "/")
            parts = [p for p in raw.split("/") if p not in ("", ".")]
            if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in parts:
                return f"it holds a file with an unsafe path ({member.filename!r}), so it is refused"
            if not parts or parts[0] == "__MACOSX" or parts[-1] in (".DS_Store", "Thumbs.db"):
                continue
            named.append((parts, member))
        tops = {parts[0] for parts, _ in named}
        strip = len(tops) == 1 and all(len(parts) > 1 for parts, _ in named)
        files: dict[str, bytes] = {}
        try:
            for parts, member in named:
                files["/".join(parts[1:] if strip else parts)] = archive.read(member)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            return f"it is not a readable ZIP archive ({exc})"
    return files


# --- reading the tables -----------------------------------------------------------------------------


def _normal_path(path: str) -> str:
    return "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


def _resource_paths(files: dict[str, bytes]) -> dict[str, str]:
    """HSDS resource name -> file, from ``datapackage.json`` where it names them, else the specification's names."""
    paths = dict(DEFAULT_PATHS)
    descriptor = files.get("datapackage.json")
    if descriptor is None:
        return paths
    try:
        package = json.loads(descriptor.decode("utf-8-sig"))
        resources = package.get("resources", []) if isinstance(package, dict) else []
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return paths  # a broken descriptor: the tables may still be where the specification puts them
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict):
            continue
        name, path = resource.get("name"), resource.get("path")
        if isinstance(name, str) and name in paths and isinstance(path, str) and _normal_path(path) in files:
            paths[name] = _normal_path(path)
    return paths


def _candidates(files: dict[str, bytes], path: str) -> list[str]:
    """The files that may be the table at ``path``: that path, else any file of that name, in any folder."""
    if path in files:
        return [path]
    wanted = PurePosixPath(path).name.casefold()
    return sorted(name for name in files if PurePosixPath(name).name.casefold() == wanted)


def _find(files: dict[str, bytes], path: str) -> bytes | None:
    found = _candidates(files, path)
    return files[found[0]] if len(found) == 1 else None


def _rows(data: bytes | None, label: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of one CSV table as ``(row number, {field: value})``; the header is row 1."""
    if data is None:
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PackageError(f"the HSDS package's {label} is not UTF-8 text (byte {exc.start} cannot be read)") from exc
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise PackageError(f"the HSDS package's {label} is not valid CSV ({exc})") from exc
    numbered = [(i + 1, r) for i, r in enumerate(records) if any(c.strip() for c in r)]
    if not numbered:
        return []
    header = [h.strip().lower() for h in numbered[0][1]]
    return [(n, {h: (r[j] if j < len(r) else "") for j, h in enumerate(header) if h}) for n, r in numbered[1:]]


def _by(rows: Rows, key: str) -> dict[str, Rows]:
    index: dict[str, Rows] = {}
    for row in rows:
        value = row.get(key, "").strip()
        if value:
            index.setdefault(value, []).append(row)
    return index


def _first(*values: str | None) -> str:
    return next((v for v in values if v and v.strip()), "")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


# --- the service's fields ---------------------------------------------------------------------------


def _phone_fields(phones: Rows) -> dict[str, str]:
    listed = [(p.get("number", "").strip(), p.get("type", "").strip().lower()) for p in phones]
    listed = [(number, kind) for number, kind in listed if number]
    return {
        "phone": next((number for number, kind in listed if kind not in NOT_VOICE_TYPES), ""),
        "sms": next((number for number, kind in listed if kind in TEXT_TYPES), ""),
        "phone_numbers_all": SEPARATOR.join(_unique(number for number, _ in listed)),
    }


def _looks_like_subdivision(value: str) -> bool:
    return bool(ISO_3166_2.match(value) or SUBDIVISION_NAME.match(value))


def _place_fields(addresses: Rows) -> dict[str, str]:
    ordered = sorted(addresses, key=lambda a: a.get("address_type", "").strip().lower() != "physical")
    country = _first(*(a.get("country") for a in ordered)).strip()
    same = [a for a in ordered if a.get("country", "").strip() in ("", country)]
    regions = [r for r in _unique(a.get("state_province", "") for a in same) if _looks_like_subdivision(r)]
    return {"country": country, "region": SEPARATOR.join(regions)}


def _days(byday: str) -> set[str]:
    """Weekdays of an RFC 5545 BYDAY list; ordinal ones (``1MO``, monthly) count for none."""
    return {d for d in (part.strip().upper() for part in byday.split(",")) if d in WEEK}


def _always_open(schedules: Rows) -> bool:
    days: set[str] = set()
    for s in schedules:
        if any(ALWAYS_OPEN_TEXT.search(s.get(f, "")) for f in ("description", "notes")):
            return True
        opens, closes = s.get("opens_at", "").strip(), s.get("closes_at", "").strip()
        if opens not in MIDNIGHT or closes not in END_OF_DAY:
            continue
        freq, byday = s.get("freq", "").strip().upper(), s.get("byday", "").strip()
        if freq == "DAILY" and not byday:
            return True
        if freq in ("", "DAILY", "WEEKLY"):
            days |= _days(byday)
    return days == WEEK


def read_hsds(files: dict[str, bytes]) -> Table:
    """Join the tables of an HSDS 3.0 package into one row per service, in the contract's columns."""
    files = {_normal_path(path): data for path, data in files.items()}
    paths = _resource_paths(files)
    found = _candidates(files, paths["service"])
    if not found:
        return Table(None, error="the HSDS package has no services.csv")
    if len(found) > 1:
        return Table(None, error=f"the HSDS package has several services.csv ({', '.join(found)}) and no datapackage.json naming one")
    services_data = files[found[0]]
    try:
        services = _rows(services_data, "services.csv")
        tables = {name: [r for _, r in _rows(_find(files, path), path)] for name, path in paths.items() if name != "service"}
    except PackageError as exc:
        return Table(None, error=str(exc))
    if not services:
        return Table(None, encoding="utf-8", empty=True)
    if "name" not in services[0][1]:
        return Table(None, error="the HSDS package's services.csv has no name column")

    organizations = {o.get("id", "").strip(): o for o in tables["organization"]}
    phones_by_service = _by(tables["phone"], "service_id")
    phones_by_sal = _by(tables["phone"], "service_at_location_id")
    phones_by_org = _by([p for p in tables["phone"] if not p.get("service_id", "").strip()], "organization_id")
    languages_by_service = _by(tables["language"], "service_id")
    sal_by_service = _by(tables["service_at_location"], "service_id")
    addresses_by_location = _by(tables["address"], "location_id")
    schedules_by_service = _by(tables["schedule"], "service_id")
    schedules_by_sal = _by(tables["schedule"], "service_at_location_id")

    records = []
    for number, service in services:
        sid = service.get("id", "").strip()
        org = organizations.get(service.get("organization_id", "").strip(), {})
        sal_ids = _unique(s.get("id", "") for s in sal_by_service.get(sid, []))
        location_ids = _unique(s.get("location_id", "") for s in sal_by_service.get(sid, []))

        phones = list(phones_by_service.get(sid, [])) if sid else []
        for sal in sal_ids:
            phones += [p for p in phones_by_sal.get(sal, []) if p not in phones]
        if not phones:
            phones = phones_by_org.get(org.get("id", "").strip(), [])
        addresses = [a for location in location_ids for a in addresses_by_location.get(location, [])]
        schedules = list(schedules_by_service.get(sid, [])) if sid else []
        schedules += [s for sal in sal_ids for s in schedules_by_sal.get(sal, []) if s not in schedules]
        languages = [_first(lang.get("code"), lang.get("name")) for lang in languages_by_service.get(sid, [])] if sid else []

        records.append(
            {
                "record_id": service.get("id", ""),
                "name": service.get("name", ""),
                "kind": "",
                "description": service.get("description", ""),
                "url": _first(service.get("url"), org.get("website")),
                "email": _first(service.get("email"), org.get("email")),
                **_phone_fields(phones),
                **_place_fields(addresses),
                "languages": SEPARATOR.join(_unique(languages)),
                "hours": "24/7" if _always_open(schedules) else "",
                ROW: number,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, ROW])
    frame[list(COLUMNS)] = frame[list(COLUMNS)].astype(object)
    return Table(frame, encoding="utf-8", delimiter=",", empty=False, header=list(COLUMNS))
