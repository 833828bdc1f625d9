"""The Open Referral HSDS 3.0 mapping of a listing, declared beside the field registry.

A release's ``hsds/`` folder is an HSDS 3.0 tabular data package: every table of the
specification's ``datapackage.json`` (vendored in ``schemas/hsds-3.0/``, CC BY-SA 4.0,
Open Referral), filled from the listing fields named here and header-only where a
listing has nothing to say.  ``curate.hsds`` builds the rows from this mapping;
``tests/test_hsds.py`` checks that every listing field is either mapped or named in
``UNMAPPED`` with a reason, so a new registry field cannot be forgotten.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import cache
from pathlib import Path

from schemas import vocabularies as v

#: the vendored descriptor of the specification (every table, field, type and foreign key)
DESCRIPTOR_FILE = Path(__file__).parent / "hsds-3.0" / "datapackage.json"

#: HSDS ids are UUIDs derived from listing ids: ``uuid5(NAMESPACE, "<table>:<listing id>[:<part>]")``.
#: Fixed forever, so that an HSDS consumer sees the same ids in every release.
NAMESPACE = uuid.UUID("7d0c3a52-4a8e-5b7e-9d39-5f2b8e0c6a11")
_NAMESPACE_BYTES = NAMESPACE.bytes

#: listing field -> column of ``services.csv`` holding it as it is
SERVICE_COLUMNS: dict[str, str] = {
    "name": "name",
    "description": "description",
    "email": "email",
    "verified_at": "assured_date",
    "updated_at": "last_modified",
}

#: listing field -> column of ``organizations.csv`` (one organisation per listing: sources name services, not their owners)
ORGANIZATION_COLUMNS: dict[str, str] = {"name": "name", "email": "email", "url": "website"}

#: listing fields that become rows of other tables: field -> (table, what a row says)
ROW_TABLES: dict[str, tuple[str, str]] = {
    "url": ("services", "services.url: the web address (the chat address when there is no web address)"),
    "chat_url": ("services", "services.application_process names it; services.url when there is no web address"),
    "phone": ("phones", "one row, type voice"),
    "sms": ("phones", "one row, type text (RFC 6350, as HSDS asks)"),
    "areas": ("service_areas", "one row per location code: name, extent = the code, extent_type text"),
    "languages": ("languages", "one row per BCP 47 tag: English name and ISO 639 code"),
    "hours": ("schedules", "one row: the text in description"),
    "always_open": ("schedules", "24/7: freq WEEKLY, byday MO..SU, opens_at 00:00:00, closes_at 23:59:59"),
    "kind": ("attributes", "taxonomy 'support-directory-kind': one attribute row"),
    "topics": ("attributes", "taxonomy 'support-directory-topic': one attribute row per topic"),
    "audience": ("attributes", "taxonomy 'support-directory-audience'; also services.eligibility_description"),
    "cost": ("services", "services.fees_description, from the cost vocabulary"),
}

#: listing fields HSDS has no place for, and why
UNMAPPED: dict[str, str] = {
    "id": "the HSDS ids are derived from it (NAMESPACE above)",
    "moderation": "HSDS 3.0 has no moderation concept; the listing JSON keeps it",
    "link_status": "release bookkeeping, not a property of the service",
    "link_checked_at": "release bookkeeping, not a property of the service",
    "sources": "provenance; the release's datapackage.json names every source and licence",
    "first_seen": "release bookkeeping, not a property of the service",
}

#: the taxonomies attribute rows point at: name -> (description, vocabulary)
TAXONOMIES: dict[str, tuple[str, dict[str, v.Term]]] = {
    "support-directory-kind": ("What kind of service a listing is (support-directory vocabulary).", v.KINDS),
    "support-directory-topic": ("What a service helps with (support-directory vocabulary).", v.TOPICS),
    "support-directory-audience": ("Who a service is for (support-directory vocabulary).", v.AUDIENCES),
}
#: listing field -> its taxonomy
TAXONOMY_OF_FIELD: dict[str, str] = {
    "kind": "support-directory-kind",
    "topics": "support-directory-topic",
    "audience": "support-directory-audience",
}

#: the 24/7 schedule
ALWAYS_OPEN_SCHEDULE: dict[str, str] = {
    "freq": "WEEKLY",
    "interval": "1",
    "byday": "MO,TU,WE,TH,FR,SA,SU",
    "opens_at": "00:00:00",
    "closes_at": "23:59:59",
    "description": "Open 24 hours a day, 7 days a week.",
}


def hsds_id(table: str, listing_id: str, part: str = "") -> str:
    """The stable UUID of a row of ``table`` derived from a listing (``part`` tells rows of one listing apart):
    ``uuid.uuid5(NAMESPACE, name)``, its text made from the SHA-1's hex digits without building a ``uuid.UUID``
    (a release has one per HSDS row): the version digit is 5, and the variant's digit keeps its two low bits."""
    name = f"{table}:{listing_id}:{part}" if part else f"{table}:{listing_id}"
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: a hex digit with its two high bits set to the RFC 4122 variant (10xx)
_VARIANT = {d: format((int(d, 16) & 0x3) | 0x8, "x") for d in "0123456789abcdef"}


@cache
def descriptor() -> dict[str, object]:
    """The HSDS 3.0 tabular data package descriptor (vendored copy)."""
    data: dict[str, object] = json.loads(DESCRIPTOR_FILE.read_text(encoding="utf-8"))
    return data


def table_columns() -> dict[str, list[str]]:
    """CSV file name (``services.csv``) -> its columns, in the specification's order."""
    out: dict[str, list[str]] = {}
    for resource in descriptor()["resources"]:  # type: ignore[attr-defined]
        out[resource["path"]] = [f["name"] for f in resource["schema"]["fields"]]
    return out


def covered_fields() -> set[str]:
    """Listing fields the mapping accounts for (mapped or explained)."""
    return set(SERVICE_COLUMNS) | set(ORGANIZATION_COLUMNS) | set(ROW_TABLES) | set(UNMAPPED)
