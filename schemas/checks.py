"""Checks on normalised values, and the plain-language rules curators are shown.

A check is a predicate on one normalised value (``str``); list fields apply it to
each element.  ``RULES`` holds, for every rule a problem can carry, its severity,
the message shown to curators and the fix to suggest.  The registry
(``schemas.fields``) names checks; ``schemas.generate`` turns them into Pandera.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import langcodes
import phonenumbers
import pycountry

from schemas import vocabularies

EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries) | {"WW"}
REGION_CODES = frozenset(s.code for s in pycountry.subdivisions)


def http_url(value: str) -> bool:
    """An absolute http(s) URL without credentials, with a dotted host name."""
    m = re.match(r"^https?://([^/?#]*)", value)
    if not m or "@" in m.group(1) or any(c.isspace() for c in value):
        return False
    host = m.group(1).rsplit(":", 1)[0] if not m.group(1).endswith("]") else m.group(1)
    return bool(HOST.match(host))


def phone_number(value: str) -> bool:
    """A valid E.164 number, or the 3 to 8 digits of a national short number."""
    if re.fullmatch(r"[0-9]{3,8}", value):
        return True
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", value):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False


def email(value: str) -> bool:
    return bool(EMAIL.match(value))


def country_code(value: str) -> bool:
    return value in COUNTRY_CODES


def region_code(value: str) -> bool:
    return value in REGION_CODES


def bcp47(value: str) -> bool:
    return langcodes.tag_is_valid(value) and value == langcodes.standardize_tag(value)


def not_placeholder(value: str) -> bool:
    return vocabularies.vocabulary_key(value) not in vocabularies.PLACEHOLDER_NAMES


def date_not_future(value: str, today: dt.date) -> bool:
    if not ISO_DATE.match(value):
        return False
    try:
        return dt.date.fromisoformat(value) <= today
    except ValueError:
        return False


#: Checks that take only the value.
VALUE_CHECKS: dict[str, Callable[[str], bool]] = {
    "http_url": http_url,
    "phone_number": phone_number,
    "email": email,
    "country_code": country_code,
    "region_code": region_code,
    "bcp47": bcp47,
    "not_placeholder": not_placeholder,
}


@dataclass(frozen=True)
class Rule:
    """How a problem is told to a curator."""

    severity: str  # "error" rejects the row, "warning" keeps it
    message: str  # may use {column}, {value} and {detail}
    fix: str = ""  # empty: the column's own fix from the registry


RULES: dict[str, Rule] = {
    # file-level
    "unreadable_file": Rule("error", "The file could not be read: {detail}.", "Save it again as CSV (UTF-8) or TSV and drop it back in."),
    "empty_file": Rule(
        "error", "The file holds no rows.", "Check that you saved the right file; it needs a header row and at least one row."
    ),
    "missing_column": Rule(
        "error",
        "The file has no '{column}' column, which every file needs.",
        "Add a '{column}' column (or one of its other names from the column guide).",
    ),
    "unknown_column": Rule(
        "warning",
        "The column '{value}' is not one we know, so it is ignored.",
        "Rename it to a column from the column guide, or leave it: it is kept in the raw copy.",
    ),
    "bad_source_id": Rule(
        "error",
        "The file name '{value}' cannot be used as a source id.",
        "Rename the file using only lowercase letters, digits, - and _ (for example helplines_no.csv).",
    ),
    "download_failed": Rule(
        "error", "The download from {value} failed: {detail}.", "Check that the address still serves the list; the next run tries again."
    ),
    "download_failed_kept": Rule(
        "error",
        "The download from {value} failed: {detail}. The listings of its last good download are kept.",
        "Check that the address still serves the list; the next run tries again.",
    ),
    "file_too_large": Rule(
        "error",
        "The file is {value}, more than the {detail} we accept.",
        "Split it into smaller files, or ask an operator to raise the limit.",
    ),
    "unsupported_format": Rule("error", "Files of type '{value}' cannot be read yet.", "Save it as CSV or TSV."),
    # row-level
    "required": Rule("error", "'{column}' is empty, but every listing needs it.", ""),
    "vocabulary": Rule("error", "'{value}' is not one of the values '{column}' takes.{detail}", ""),
    "not_placeholder": Rule("error", "'{value}' looks like a placeholder, not a real name.", ""),
    "http_url": Rule("error", "'{value}' is not a usable web address (it must start with http:// or https:// and name a real host).", ""),
    "phone_number": Rule("error", "'{value}' is not a valid phone number for this country.", ""),
    "email": Rule("error", "'{value}' is not an email address.", ""),
    "country_code": Rule("error", "'{value}' is not a country we recognise.{detail}", ""),
    "region_code": Rule("error", "'{value}' is not a region we recognise.", ""),
    "region_in_country": Rule(
        "error", "The region '{value}' is not inside the row's country.", "Write a region of the row's country, or correct the country."
    ),
    "bcp47": Rule("error", "'{value}' is not a language we recognise.", ""),
    "date_not_future": Rule("error", "'{value}' is not a date we can read, or it lies in the future.", ""),
    "contact_required": Rule(
        "error",
        "The row has no way to reach the service: no url, phone, sms or chat_url.",
        "Add at least one of url, phone, sms or chat_url.",
    ),
    "short_number_needs_country": Rule(
        "error",
        "'{value}' is a national short number, which only works inside one country, but the row is marked worldwide (WW).",
        "Give the row its country, or write the number with its country code (+44 ...).",
    ),
    "extra_numbers": Rule(
        "warning",
        "The cell holds more than one number; only the first phone and the first text number are used, not '{value}'.",
        "Put one number in 'phone' and one in 'sms'; list another service in a row of its own.",
    ),
    "kept_previous_version": Rule(
        "warning",
        "Because of the errors in this row, the directory keeps showing its last valid version (row {detail} of an earlier version of "
        "this file) until you fix the row or delete it.",
        "Fix the errors listed for this row and drop the file back in.",
    ),
    "duplicate_record_id": Rule(
        "error", "The record_id '{value}' is used by an earlier row of this file.", "Give each row its own record_id."
    ),
    "markup_removed": Rule(
        "warning",
        "HTML or control characters were removed from '{column}'.",
        "Write plain text; the cleaned text is what will be published.",
    ),
    "formula_like": Rule(
        "warning",
        "'{column}' begins with '{detail}', which spreadsheets may run as a formula; it is published as plain text.",
        "Remove the leading '{detail}' if it is not meant to be there.",
    ),
}


def suggestion(value: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint for a near miss, or an empty string."""
    close = difflib.get_close_matches(vocabularies.vocabulary_key(value), list(choices), n=1, cutoff=0.75)
    return f" Did you mean '{close[0]}'?" if close else ""
