"""Listings as an Open Referral HSDS 3.0 tabular data package (pure: listings in, file bytes out).

The mapping is declared in ``schemas.hsds``; every table of the specification is written
(header-only when a listing has nothing for it), so the folder validates against the
specification's own ``datapackage.json``.
"""

from __future__ import annotations

import csv
import functools
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


@functools.cache  # (a release names a few tags, over and over)
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


def listing_records(
    listings: Iterable[Listing], location_names: dict[str, str], cell: Callable[[object], str]
) -> tuple[dict[str, list[list[str]]], dict[str, set[str]]]:
    """The CSV records the listings give each HSDS table (the taxonomies aside), each a list of cells in the
    specification's column order (``cell`` made each one that is not empty), and the terms they use by taxonomy: a
    part of the listings gives its part of the records, in order.

    Records are made as lists, not as rows by column name then looked up column by column: at 534k listings,
    building the HSDS rows took 18 s of the worker processes' time that way."""
    columns = m.table_columns()
    tables: dict[str, list[list[str]]] = {path: [] for path in columns}
    used_terms: dict[str, set[str]] = {name: set() for name in m.TAXONOMIES}
    at = {path: {name: i for i, name in enumerate(names)} for path, names in columns.items()}
    built = ("organizations.csv", "services.csv", "phones.csv", "service_areas.csv", "languages.csv", "schedules.csv", "attributes.csv")
    o_width, s_width, ph_width, ar_width, la_width, sc_width, at_width = (len(columns[t]) for t in built)
    hsds_id, text = m.hsds_id, _text
    organizations, o = tables["organizations.csv"], at["organizations.csv"]
    o_fields = [(f, o[col]) for f, col in m.ORGANIZATION_COLUMNS.items()]
    services, s = tables["services.csv"], at["services.csv"]
    s_fields = [(f, s[col]) for f, col in m.SERVICE_COLUMNS.items()]
    phones, ph = tables["phones.csv"], at["phones.csv"]
    areas, ar = tables["service_areas.csv"], at["service_areas.csv"]
    languages, la = tables["languages.csv"], at["languages.csv"]
    schedules, sc = tables["schedules.csv"], at["schedules.csv"]
    always_open = [(sc[col], cell(value)) for col, value in m.ALWAYS_OPEN_SCHEDULE.items()]
    attributes, at_ = tables["attributes.csv"], at["attributes.csv"]
    term_ids: dict[tuple[str, str], str] = {}  # a term's id, made once (few terms, millions of attribute rows)
    active, service_word, text_word = cell("active"), cell("service"), cell("text")
    for x in listings:
        get = x.get
        lid = str(x["id"])
        sid, oid = cell(hsds_id("service", lid)), cell(hsds_id("organization", lid))
        record = [""] * o_width
        record[o["id"]] = oid
        for f, i in o_fields:
            record[i] = cell(text(get(f)))
        record[o["description"]] = cell(text(get("description")) or str(x["name"]))
        organizations.append(record)
        record = [""] * s_width
        for f, i in s_fields:
            record[i] = cell(text(get(f)))
        record[s["id"]], record[s["organization_id"]], record[s["status"]] = sid, oid, active
        record[s["url"]] = cell(text(get("url") or get("chat_url")))
        record[s["application_process"]] = cell(_how_to_reach(x))
        cost = v.COSTS.get(str(get("cost"))) if get("cost") != "unknown" else None
        if cost is not None:  # (a cost that is no term gives none: the listing's schema check words it)
            record[s["fees_description"]] = cell(cost.description)
        if get("audience"):
            record[s["eligibility_description"]] = cell("For: " + ", ".join(a.replace("_", " ") for a in x["audience"]) + ".")
        services.append(record)
        for field, kind in (("phone", "voice"), ("sms", "text")):
            if get(field):
                record = [""] * ph_width
                record[ph["id"]], record[ph["service_id"]] = cell(hsds_id("phone", lid, field)), sid
                record[ph["number"]], record[ph["type"]] = cell(str(x[field])), cell(kind)
                phones.append(record)
        for code in get("areas") or []:
            record = [""] * ar_width
            record[ar["id"]], record[ar["service_id"]] = cell(hsds_id("service_area", lid, code)), sid
            record[ar["name"]], record[ar["extent"]] = cell(location_names.get(code, code)), cell(code)
            record[ar["extent_type"]] = text_word
            areas.append(record)
        for tag in get("languages") or []:
            name, code = _language(tag)
            record = [""] * la_width
            record[la["id"]], record[la["service_id"]] = cell(hsds_id("language", lid, tag)), sid
            record[la["name"]], record[la["code"]] = cell(name), cell(code)
            languages.append(record)
        if get("always_open") or get("hours"):
            record = [""] * sc_width
            record[sc["id"]], record[sc["service_id"]] = cell(hsds_id("schedule", lid)), sid
            if get("always_open"):
                for i, value in always_open:
                    record[i] = value
            elif get("hours"):
                record[sc["description"]] = cell(str(x["hours"]))
            schedules.append(record)
        for field, taxonomy in m.TAXONOMY_OF_FIELD.items():
            values = get(field)
            for value in [values] if isinstance(values, str) else values or []:
                used_terms[taxonomy].add(value)
                term = term_ids.get((taxonomy, value))
                if term is None:
                    term = term_ids[taxonomy, value] = cell(hsds_id("taxonomy_term", taxonomy, value))
                record = [""] * at_width
                record[at_["id"]] = cell(hsds_id("attribute", lid, f"{taxonomy}/{value}"))
                record[at_["link_id"]], record[at_["taxonomy_term_id"]] = sid, term
                record[at_["link_type"]], record[at_["link_entity"]], record[at_["value"]] = cell(field), service_word, cell(value)
                attributes.append(record)
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


def table_csv(rows: list[Row], columns: list[str], cell: Callable[[object], str]) -> bytes:
    """A table's CSV file: its header, then each row's cells in the columns' order."""
    return records_csv([columns, *([cell(row.get(c)) for c in columns] for row in rows)])


def records_csv(records: list[list[str]]) -> bytes:
    """CSV records (cells made already) without a header."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(records)
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


#: one part of the listings' HSDS rows: each table's CSV records without its header (views of the release before's tables when
#: taken from it), and the terms used
Part = tuple[dict[str, bytes] | dict[str, memoryview], dict[str, set[str]]]


@collection_paused()
def part_bodies(listings: list[Listing], location_names: dict[str, str], cell: Callable[[object], str]) -> Part:
    """The CSV records a part of the listings gives each table (no header), and the terms it uses: parts are built
    apart (in worker processes) and joined in the listings' order by ``joined_files``."""
    tables, used_terms = listing_records(listings, location_names, cell)
    return {path: records_csv(tables.pop(path)) for path in m.table_columns()}, used_terms


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
    files = {}
    for path, head in table_heads([terms for _, terms in parts], cell).items():
        files[f"hsds/{path}"] = b"".join([head, *(bodies[path] for bodies, _ in parts)])  # (one copy of the table: 125 MB at 535k listings)
    files["hsds/datapackage.json"] = descriptor_bytes(licences, sources)
    return files


def table_heads(terms: list[dict[str, set[str]]], cell: Callable[[object], str]) -> dict[str, bytes]:
    """What each table of the package holds before the parts' rows, by file name: its header, and the rows of the
    taxonomies and of their terms the parts use (``terms``: each part's)."""
    used: dict[str, set[str]] = {name: set() for name in m.TAXONOMIES}
    for part_terms in terms:
        for name, values in part_terms.items():
            used[name] |= values
    taxonomies: dict[str, list[Row]] = {"taxonomies.csv": [], "taxonomy_terms.csv": []}
    taxonomy_rows(taxonomies, used)
    return {path: table_csv(taxonomies.get(path, []), cols, cell) for path, cols in m.table_columns().items()}


def descriptor_bytes(licences: list[str], sources: list[dict[str, object]]) -> bytes:
    """``hsds/datapackage.json``'s bytes (``hsds_descriptor``)."""
    import json

    return (json.dumps(hsds_descriptor(licences, sources), ensure_ascii=False, indent=2) + "\n").encode()
