"""Listings as an Open Referral HSDS 3.0 tabular data package (pure: listings in, file bytes out).

The mapping is declared in ``schemas.hsds``; every table of the specification is written
(header-only when a listing has nothing for it), so the folder validates against the
specification's own ``datapackage.json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

import langcodes
import orjson

from curate.collector import collection_paused, give_back_freed_memory
from schemas import hsds as m
from schemas import vocabularies as v

Listing = dict[str, Any]
Row = dict[str, str]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _language(tag: str) -> tuple[str, str]:
    """English name and ISO 639 code of a BCP 47 tag (the tag itself when langcodes does not know it)."""
    try:
        lang = langcodes.Language.get(tag)
        return lang.display_name("en"), lang.language or tag
    except (ValueError, LookupError):
        return tag, tag


def _how_to_reach(x: Listing) -> str:
    parts = []
    if x.get("phone"):
        parts.append(f"Call {x['phone']}.")
    if x.get("sms"):
        parts.append(f"Text {x['sms']}.")
    if x.get("chat_url"):
        parts.append(f"Chat at {x['chat_url']}.")
    if x.get("url"):
        parts.append(f"Web: {x['url']}.")
    return " ".join(parts)


def listing_rows(listings: Iterable[Listing], location_names: dict[str, str]) -> tuple[dict[str, list[Row]], dict[str, set[str]]]:
    """The rows the listings give each HSDS table (the taxonomies aside), and the terms they use by taxonomy: a
    part of the listings gives its part of the rows, in order."""
    tables: dict[str, list[Row]] = {path: [] for path in m.table_columns()}
    used_terms: dict[str, set[str]] = {name: set() for name in m.TAXONOMIES}
    for x in listings:
        lid = str(x["id"])
        sid, oid = m.hsds_id("service", lid), m.hsds_id("organization", lid)
        org = {col: _text(x.get(f)) for f, col in m.ORGANIZATION_COLUMNS.items()}
        tables["organizations.csv"].append({"id": oid, **org, "description": _text(x.get("description")) or str(x["name"])})
        service = {col: _text(x.get(f)) for f, col in m.SERVICE_COLUMNS.items()}
        service.update(
            id=sid,
            organization_id=oid,
            status="active",
            url=_text(x.get("url") or x.get("chat_url")),
            application_process=_how_to_reach(x),
        )
        if x.get("cost") and x["cost"] != "unknown":
            service["fees_description"] = v.COSTS[x["cost"]].description
        if x.get("audience"):
            service["eligibility_description"] = "For: " + ", ".join(a.replace("_", " ") for a in x["audience"]) + "."
        tables["services.csv"].append(service)
        for field, kind in (("phone", "voice"), ("sms", "text")):
            if x.get(field):
                tables["phones.csv"].append(
                    {"id": m.hsds_id("phone", lid, field), "service_id": sid, "number": str(x[field]), "type": kind}
                )
        for code in x.get("areas") or []:
            tables["service_areas.csv"].append(
                {
                    "id": m.hsds_id("service_area", lid, code),
                    "service_id": sid,
                    "name": location_names.get(code, code),
                    "extent": code,
                    "extent_type": "text",
                }
            )
        for tag in x.get("languages") or []:
            name, code = _language(tag)
            tables["languages.csv"].append({"id": m.hsds_id("language", lid, tag), "service_id": sid, "name": name, "code": code})
        if x.get("always_open") or x.get("hours"):
            schedule = {"id": m.hsds_id("schedule", lid), "service_id": sid}
            if x.get("always_open"):
                schedule.update(m.ALWAYS_OPEN_SCHEDULE)
            if x.get("hours") and not x.get("always_open"):
                schedule["description"] = str(x["hours"])
            tables["schedules.csv"].append(schedule)
        for field, taxonomy in m.TAXONOMY_OF_FIELD.items():
            values = x.get(field)
            for value in [values] if isinstance(values, str) else values or []:
                used_terms[taxonomy].add(value)
                tables["attributes.csv"].append(
                    {
                        "id": m.hsds_id("attribute", lid, f"{taxonomy}/{value}"),
                        "link_id": sid,
                        "link_type": field,
                        "link_entity": "service",
                        "taxonomy_term_id": m.hsds_id("taxonomy_term", taxonomy, value),
                        "value": value,
                    }
                )
    return tables, used_terms


def taxonomy_rows(tables: dict[str, list[Row]], used_terms: dict[str, set[str]]) -> None:
    """The taxonomies and the terms used, added to ``tables``."""
    field_of = {taxonomy: field for field, taxonomy in m.TAXONOMY_OF_FIELD.items()}
    for taxonomy, (description, vocabulary) in m.TAXONOMIES.items():
        tid = m.hsds_id("taxonomy", taxonomy)
        tables["taxonomies.csv"].append({"id": tid, "name": taxonomy, "description": description, "version": "1"})
        for value in sorted(used_terms[taxonomy]):
            tables["taxonomy_terms.csv"].append(
                {
                    "id": m.hsds_id("taxonomy_term", taxonomy, value),
                    "code": f"{field_of[taxonomy]}:{value}",  # unique across taxonomies (lgbtq is a topic and an audience)
                    "name": value.replace("_", " "),
                    "description": vocabulary[value].description if value in vocabulary else value,
                    "taxonomy": taxonomy,
                    "taxonomy_id": tid,
                    "language": "en",
                }
            )


def table_csv(rows: list[Row], columns: list[str], cell: Callable[[object], str], header: bool = True) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def hsds_descriptor(licences: list[str], sources: list[dict[str, object]]) -> dict[str, object]:
    """The package's ``datapackage.json``: the specification's tables unchanged, our name, licences and sources."""
    spec = m.descriptor()
    return {
        "name": "support-directory-hsds",
        "title": "Support directory as Open Referral HSDS 3.0",
        "description": "Mental-health helplines, chats, text lines and online communities by location, as HSDS 3.0 tables.",
        "profile": "tabular-data-package",
        "version": spec["version"],
        "homepage": spec["homepage"],
        "licenses": [{"name": name} for name in licences],
        "sources": sources,
        "hsds_schema": {"name": "Open Referral HSDS 3.0", "license": spec["license"]},
        "resources": spec["resources"],
    }


def hsds_files(
    listings: list[Listing],
    location_names: dict[str, str],
    cell: Callable[[object], str],
    licences: list[str],
    sources: list[dict[str, object]],
) -> dict[str, bytes]:
    """``hsds/<table>.csv`` for every table and ``hsds/datapackage.json`` (JSON bytes made by the caller's writer)."""
    return joined_files([part_bodies(listings, location_names, cell)], cell, licences, sources)


#: one part of the listings' HSDS rows: each table's CSV records without its header, and the terms used
Part = tuple[dict[str, bytes], dict[str, set[str]]]


@collection_paused()
def part_bodies(listings: list[Listing], location_names: dict[str, str], cell: Callable[[object], str]) -> Part:
    """The CSV records a part of the listings gives each table (no header), and the terms it uses: parts are built
    apart (in worker processes) and joined in the listings' order by ``joined_files``."""
    tables, used_terms = listing_rows(listings, location_names)
    return {path: table_csv(tables[path], cols, cell, header=False) for path, cols in m.table_columns().items()}, used_terms


@collection_paused()
def part_bodies_of_json(listings_json: bytes, location_names: dict[str, str], cell: Callable[[object], str]) -> Part:
    """``part_bodies`` of listings sent as JSON bytes (to a worker process): orjson writes 267k listings in 0.25 s
    where pickling them takes 2.4 s of the sending process (reading them back costs about the same either way)."""
    part = part_bodies(orjson.loads(listings_json), location_names, cell)  # (its listings and rows let go of)
    give_back_freed_memory()  # a worker does not hold its largest part's heap while it waits for the next
    return part


def joined_files(
    parts: list[Part], cell: Callable[[object], str], licences: list[str], sources: list[dict[str, object]]
) -> dict[str, bytes]:
    """``hsds_files`` from the parts of the listings, in order."""
    import json

    used: dict[str, set[str]] = {name: set() for name in m.TAXONOMIES}
    for _, terms in parts:
        for name, values in terms.items():
            used[name] |= values
    taxonomies: dict[str, list[Row]] = {"taxonomies.csv": [], "taxonomy_terms.csv": []}
    taxonomy_rows(taxonomies, used)
    files = {}
    for path, cols in m.table_columns().items():
        head = table_csv(taxonomies.get(path, []), cols, cell)
        files[f"hsds/{path}"] = b"".join([head, *(bodies[path] for bodies, _ in parts)])  # (one copy of the table: 125 MB at 535k listings)
    files["hsds/datapackage.json"] = (json.dumps(hsds_descriptor(licences, sources), ensure_ascii=False, indent=2) + "\n").encode()
    return files
