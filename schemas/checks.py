"""Checks on normalised values, and the plain-language rules curators are shown.

A check is a predicate on one normalised value (``str``); list fields apply it to
each element.  Date checks also take the day of the run (``DATE_CHECKS``), and
country checks judge a value inside its row's country (``COUNTRY_CHECKS``: a
verdict naming the rule broken, cached per (value, country)).  ``RULES`` holds, for
every rule a problem can carry, its severity, the message shown to curators and the
fix to suggest.  The registry (``schemas.fields``) names checks; ``schemas.generate``
turns them into Pandera.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import langcodes
import phonenumbers
import publicsuffixlist
import pyarrow as pa
import pyarrow.compute as pc
import pycountry
from phonenumbers import PhoneNumberType, ShortNumberCost, shortnumberinfo
from publicsuffixlist import PublicSuffixList

from schemas import vocabularies
from schemas.fields import BY_NAME, VERIFIED_EXPIRED_MONTHS, VERIFIED_STALE_MONTHS

EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries) | {"WW"}
REGION_CODES = frozenset(s.code for s in pycountry.subdivisions)


#: An absolute http(s) URL without white space, its host and port (no credentials: no @) before any path, query or fragment.
HTTP_URL_PARTS = re.compile(r"^https?://(?P<netloc>[^/?#@\s]*)(?:[/?#]\S*)?$")


def _url_host(value: str) -> str | None:
    """The host of an absolute http(s) URL without credentials or white space, or None."""
    m = HTTP_URL_PARTS.match(value)
    if not m:
        return None
    netloc = m.group("netloc")
    if netloc.startswith("["):  # an IPv6 address: [::1] or [::1]:8080
        return netloc[1 : netloc.index("]")] if "]" in netloc else None
    return netloc.rsplit(":", 1)[0]


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not host or not (host[-1].isdigit() or ":" in host):
        return None  # a name: its last label starts with a letter
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _well_formed_host(host: str | None) -> bool:
    return host is not None and (bool(HOST.match(host)) or _ip_address(host) is not None)


def http_url(value: str) -> bool:
    """An absolute http(s) URL without credentials, with a dotted host name or an IP address."""
    return _well_formed_host(_url_host(value))


#: Top-level domains reserved for tests and documentation (RFC 2606, RFC 6761), never on the public internet.
RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    """The Public Suffix List bundled with the ``publicsuffixlist`` package (read from disk, never fetched)."""
    return PublicSuffixList()


@functools.lru_cache(maxsize=1 << 16)
def public_host(host: str) -> bool:
    """A name people can reach on the internet: a public IP address, or a name under a public suffix."""
    ip = _ip_address(host)
    if ip is not None:
        return ip.is_global
    if host.rsplit(".", 1)[-1] in RESERVED_TLDS:
        return True
    return _public_suffix_list().publicsuffix(host, accept_unknown=False) is not None


def url_public_suffix(value: str) -> bool:
    """The URL's host is public: a name ending in a suffix of the Public Suffix List (``.no``, ``.org``, ``.co.uk``;
    ``nhs.uk`` itself counts), or a public IP address (not a private, loopback, link-local or reserved one).

    The reserved test and documentation domains ``.example``, ``.test``, ``.invalid`` and ``.localhost``
    are accepted too, so that fixtures and examples can use them.  URLs that ``http_url`` refuses pass
    here, so a broken URL is reported once.  The list is the snapshot the package ships: no download.
    """
    host = _url_host(value)
    if host is None or not _well_formed_host(host):
        return True
    return public_host(host)


# --- URLs judged by Arrow ---------------------------------------------------------------------

#: RE2 (Arrow) of an absolute http(s) URL with a lowercase dotted host name, no port or credentials, and
#: printable ASCII without spaces after the host: ``http_url`` accepts each one whose host is at most
#: ``HOST_MAX`` characters (each one at most ``HOST_MAX + len("https://")`` long).  ``{tld}`` is the last label.
PLAIN_HTTP_URL_RE2 = r"^https?://(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+{tld}(?:[/?#][!-~]*)?$"
#: What ``HOST`` takes as a last label.
TOP_LABEL = r"[a-z][a-z0-9-]{1,62}"
#: A host name is at most this long (RFC 1035).
HOST_MAX = 253


def public_tld(label: str) -> bool:
    """Every name under this top-level label is public (``public_host``): it is a reserved test domain, or a
    suffix on the Public Suffix List (then a longer part of every name under it is one too)."""
    return label in RESERVED_TLDS or _public_suffix_list().publicsuffix(label, accept_unknown=False) is not None


@functools.cache
def public_tlds() -> tuple[str, ...]:
    """The ASCII top-level labels that are ``public_tld``: the bundled Public Suffix List's rules of one label, and the
    reserved test domains."""
    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as rules:
        labels = {rule.strip() for rule in rules} | RESERVED_TLDS
    return tuple(sorted(label for label in labels if re.fullmatch(TOP_LABEL, label) and public_tld(label)))


def _certain_http_urls(values: pa.Array) -> pa.Array:
    return _plain_http_urls(values, TOP_LABEL)


def _certain_public_urls(values: pa.Array) -> pa.Array:
    labels = public_tlds()
    if not labels:  # ``(?:)`` would match a host ending in a dot
        return pa.repeat(False, len(values))
    return _plain_http_urls(values, f"(?:{'|'.join(labels)})")


def _plain_http_urls(values: pa.Array, tld: str) -> pa.Array:
    short = pc.less_equal(pc.utf8_length(values), HOST_MAX + len("https://"))
    return pc.and_(pc.match_substring_regex(values, PLAIN_HTTP_URL_RE2.format(tld=tld)), short).fill_null(False)


def _certain_names(values: pa.Array) -> pa.Array:
    """Names longer than any placeholder, with an ASCII letter or digit (``not_placeholder``)."""
    longer = pc.greater(pc.utf8_length(values), PLACEHOLDER_MAX_LENGTH)
    return pc.and_(pc.match_substring_regex(values, "[A-Za-z0-9]"), longer).fill_null(False)


#: Checks Arrow can pass most values of, in C: check name -> which values (an Arrow string array) certainly
#: pass it.  The others are judged by the check itself (``tests/test_domain_checks.py`` holds the two to agree).
ARROW_PASSES: dict[str, Callable[[pa.Array], pa.Array]] = {
    "http_url": _certain_http_urls,
    "url_public_suffix": _certain_public_urls,
    "not_placeholder": _certain_names,
}


def certain_passes(check: str, values: list[object]) -> list[bool] | None:
    """Per value, whether it certainly passes ``check`` (``ARROW_PASSES``); None when the check has no Arrow path
    or Arrow cannot hold the values (one that is not a string, or not valid Unicode)."""
    passes = ARROW_PASSES.get(check)
    if passes is None:
        return None
    try:
        array = pa.array(values, type=pa.string())
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    return passes(array).to_numpy(zero_copy_only=False).tolist()


# --- phone numbers ----------------------------------------------------------------------------

SHORT_NUMBER = re.compile(r"[0-9]{3,8}")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
#: National codes this short are kept (with a warning) even when the metadata lacks them (the Netherlands' 113).
SHORT_CODE_DIGITS = range(3, 7)

#: Every rule a phone verdict can name; None is a number that is fine.
PHONE_RULES = ("phone_number", "phone_unverified", "emergency_number", "premium_rate", "short_number_needs_country")


def _region(country: str | None) -> str | None:
    return country if country in COUNTRY_CODES and country != "WW" else None


class Verdicts:
    """A verdict on (value, country) pairs, judged once per pair: here, or by worker processes that ran
    ``judge`` (a module-level function) and handed their verdicts back with ``remember``."""

    def __init__(self, judge: Callable[[str, str | None], str | None], max_size: int = 1 << 20) -> None:
        self.judge = judge
        self.max_size = max_size
        self.known: dict[tuple[str, str | None], str | None] = {}
        self.misses = 0  # pairs judged here

    def __call__(self, value: str, country: str | None) -> str | None:
        key = (value, country)
        if key not in self.known:
            if len(self.known) >= self.max_size:
                self.known.clear()
            self.misses += 1
            self.known[key] = self.judge(value, country)
        return self.known[key]

    def remember(self, pairs: Iterable[tuple[str, str | None]], verdicts: Iterable[str | None]) -> None:
        if len(self.known) >= self.max_size:
            self.known.clear()
        self.known.update(zip(pairs, verdicts, strict=True))

    def cache_clear(self) -> None:
        self.known.clear()
        self.misses = 0


def judge_phone(value: str, country: str | None, parsed: tuple[phonenumbers.PhoneNumber, int] | None = None) -> str | None:
    """The rule a staged phone or sms number breaks inside ``country``, or None when it is fine.

    ``value`` is as staged (``curate.normalise.phone``): the digits of a national short number, E.164 for
    the others, or what the curator wrote when neither could be made of it.  ``phone_verdict`` judges
    each (value, country) pair once.  ``parsed`` is the number an E.164 ``value`` was made of, and its type, as
    staging found them (``curate.normalise.parsed_phone``): they are not worked out again.
    """
    region = _region(country)
    if SHORT_NUMBER.fullmatch(value):
        if country == "WW":
            return "short_number_needs_country"
        if region is None:
            return None  # no country to judge it in: the row's country is reported instead
        if shortnumberinfo.is_emergency_number(value, region):
            return "emergency_number"
        try:
            short = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return "phone_number"
        if shortnumberinfo.is_valid_short_number_for_region(short, region):
            premium = shortnumberinfo.expected_cost_for_region(short, region) == ShortNumberCost.PREMIUM_RATE
            return "premium_rate" if premium else None
        if len(value) in SHORT_CODE_DIGITS or phonenumbers.is_possible_number(short):
            return "phone_unverified"
        return "phone_number"
    if not E164.fullmatch(value):
        return "phone_number"
    if parsed is None:
        try:
            number, kind = phonenumbers.parse(value, None), None
        except phonenumbers.NumberParseException:
            return "phone_number"
    else:
        number, kind = parsed
    national = phonenumbers.national_significant_number(number)
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    if len(national) <= max(SHORT_CODE_DIGITS) and any(shortnumberinfo.is_emergency_number(national, r) for r in regions):
        return "emergency_number"  # +44 999
    kind = phonenumbers.number_type(number) if kind is None else kind
    if kind != PhoneNumberType.UNKNOWN:  # valid: ``is_valid_number`` is a known type, which would match the types again
        return "premium_rate" if kind == PhoneNumberType.PREMIUM_RATE else None
    return "phone_unverified" if phonenumbers.is_possible_number(number) else "phone_number"


def email(value: str) -> bool:
    return bool(EMAIL.match(value))


def country_code(value: str) -> bool:
    return value in COUNTRY_CODES


def region_code(value: str) -> bool:
    return value in REGION_CODES


def bcp47(value: str) -> bool:
    return langcodes.tag_is_valid(value) and value == langcodes.standardize_tag(value)


#: A letter or digit: a name without any ("-", "—", "?", "...") is a placeholder.
LETTER_OR_DIGIT = re.compile(r"[^\W_]")
#: Placeholders as compared: their keys without spaces ("n / a" is "n/a").
PLACEHOLDER_KEYS = frozenset(vocabularies.vocabulary_key(p).replace(" ", "") for p in vocabularies.PLACEHOLDER_NAMES)
#: No placeholder is longer than this (so a longer name with a letter is judged at once).
PLACEHOLDER_MAX_LENGTH = 2 * max(len(p) for p in vocabularies.PLACEHOLDER_NAMES)


def not_placeholder(value: str) -> bool:
    """A name that is not a stand-in ("N/A", "TBD", "test", "n / a", or no letter or digit at all)."""
    if not LETTER_OR_DIGIT.search(value):
        return False
    return len(value) > PLACEHOLDER_MAX_LENGTH or vocabularies.vocabulary_key(value).replace(" ", "") not in PLACEHOLDER_KEYS


def _iso_date(value: str) -> dt.date | None:
    if not ISO_DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def date_not_future(value: str, today: dt.date) -> bool:
    day = _iso_date(value)
    return day is not None and day <= today


def months_before(today: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day when it is shorter), as DuckDB counts."""
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(today.day, last_day))


@functools.lru_cache(maxsize=1 << 16)
def _age(value: str, today: dt.date) -> str | None:
    """'expired', 'stale' or None for a readable date that is not in the future (None too for any other value)."""
    day = _iso_date(value)
    if day is None or day > today:
        return None  # date_not_future names it
    if day < months_before(today, VERIFIED_EXPIRED_MONTHS):
        return "expired"
    return "stale" if day < months_before(today, VERIFIED_STALE_MONTHS) else None


def verified_stale(value: str, today: dt.date) -> bool:
    """Confirmed within the last ``VERIFIED_STALE_MONTHS`` months (or already ``verified_expired``)."""
    return _age(value, today) != "stale"


def verified_expired(value: str, today: dt.date) -> bool:
    """Confirmed within the last ``VERIFIED_EXPIRED_MONTHS`` months: older listings are left out of public exports."""
    return _age(value, today) != "expired"


#: Checks that take only the value.
VALUE_CHECKS: dict[str, Callable[[str], bool]] = {
    "http_url": http_url,
    "url_public_suffix": url_public_suffix,
    "email": email,
    "country_code": country_code,
    "region_code": region_code,
    "bcp47": bcp47,
    "not_placeholder": not_placeholder,
}

#: Checks that take the value and the day of the run.
DATE_CHECKS: dict[str, Callable[[str, dt.date], bool]] = {
    "date_not_future": date_not_future,
    "verified_stale": verified_stale,
    "verified_expired": verified_expired,
}

#: Checks that judge a value inside the row's country: name -> (verdict on (value, country), the rules it names).
#: ``judge_phone``, once per (value, country) pair.
phone_verdict = Verdicts(judge_phone)

COUNTRY_CHECKS: dict[str, tuple[Verdicts, tuple[str, ...]]] = {
    "phone_number": (phone_verdict, PHONE_RULES),
}


def too_long_rule(field_name: str) -> str:
    """The rule a text longer than its field's ``max_length`` breaks."""
    return f"{field_name}_too_long"


#: The registry's cap on descriptions, told to curators in ``description_too_long``.
DESCRIPTION_MAX = BY_NAME["description"].max_length


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
    "url_public_suffix": Rule(
        "error",
        "'{value}' is not a public web address: its ending after the last dot is not one used on the internet (such as .org, .no "
        "or .co.uk), or it points to a private or local network.",
        "Write the address people use on the internet, for example https://www.example.org, and look at the spelling of its ending.",
    ),
    "phone_number": Rule("error", "'{value}' is not a valid phone number for this country.", ""),
    "phone_unverified": Rule(
        "warning",
        "'{value}' could not be confirmed as a phone number of this country; the listing is kept with it, but it may be wrong.",
        "Call the number to make sure it reaches the service: if it does, leave it as it is; if not, write the right number.",
    ),
    "emergency_number": Rule(
        "error",
        "'{value}' is an emergency number (police, fire or ambulance), not the service's own line; the directory must not send "
        "people to the emergency services in this service's name.",
        "Write the service's own phone number instead of the emergency number.",
    ),
    "premium_rate": Rule(
        "warning",
        "'{value}' is a premium-rate number: calling it costs more than a normal call, and people in crisis must know that before "
        "they call.",
        "Write the service's free or normal-rate number if it has one; if not, set cost to paid and say in the description what a "
        "call costs.",
    ),
    "email": Rule("error", "'{value}' is not an email address.", ""),
    "country_code": Rule("error", "'{value}' is not a country we recognise.{detail}", ""),
    "region_code": Rule("error", "'{value}' is not a region we recognise.", ""),
    "region_in_country": Rule(
        "error", "The region '{value}' is not inside the row's country.", "Write a region of the row's country, or correct the country."
    ),
    "bcp47": Rule("error", "'{value}' is not a language we recognise.", ""),
    "date_not_future": Rule("error", "'{value}' is not a date we can read, or it lies in the future.", ""),
    "verified_stale": Rule(
        "warning",
        f"The details were last confirmed on {{value}}, more than {VERIFIED_STALE_MONTHS} months ago; please confirm them again.",
        "Confirm the details with the service, then write the date you did so in verified_at (YYYY-MM-DD).",
    ),
    "verified_expired": Rule(
        "warning",
        f"The details were last confirmed on {{value}}, more than {VERIFIED_EXPIRED_MONTHS} months ago, so the listing is left "
        "out of the public directory until someone confirms them again.",
        "Confirm the details with the service, then write the date you did so in verified_at (YYYY-MM-DD); the listing is "
        "published again on the next run.",
    ),
    too_long_rule("description"): Rule(
        "warning",
        f"The description is longer than {DESCRIPTION_MAX} characters, so only its first {DESCRIPTION_MAX} are published, "
        "cut at the end of a word and followed by '…'.",
        f"Shorten the description to at most {DESCRIPTION_MAX} characters, with what people most need to know first.",
    ),
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
