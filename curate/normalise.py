"""Normalisers: pure, total and idempotent functions from a curator's cell to a canonical value.

Each takes what a curator wrote and returns the canonical form when it can be
recognised, or the cleaned input unchanged when it cannot (so that validation can
name the value the curator wrote).  None of them raises, and applying one twice
gives the same result as applying it once (``tests/test_normalise_properties.py``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import gettext
import html
import html.entities
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import langcodes
import phonenumbers
import pycountry
from phonenumbers import shortnumberinfo

from schemas import vocabularies
from schemas.fields import LIST_SEPARATOR

# phonenumbers compiles its metadata's patterns on each use (``re.compile``, whose cache is found by a lookup that
# costs more than a match): kept compiled once instead, a source's checks took 8% less (11 files of 10k rows, five
# times each way: 3.39-3.72 s against 3.58-4.35 s), most of it in parsing and typing phone numbers
phonenumbers.enable_pattern_cache()

TAG = re.compile(r"</?[a-zA-Z!][^<>]*>")
#: A character reference.  A named one without ``;`` counts only when no letter, digit or ``=`` follows (the HTML
#: rule for attribute values), so that query strings such as ``?lang=en&region=NO`` keep their ``&region``.
ENTITY = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*(?:;|(?![A-Za-z0-9=])))")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060\ufeff]")
SPACE = re.compile(r"\s+")
#: ASCII text that ``text`` returns as it is: no markup, references, control characters or extra white space.
PLAIN_ASCII = re.compile(r"[^\s<&\x00-\x1f\x7f]+(?: [^\s<&\x00-\x1f\x7f]+)*")
#: ASCII characters that make ``has_markup`` look closer (anything else is at most white space to fold).
MARKUP_ASCII = re.compile(r"[<&\x00-\x08\x0e-\x1f\x7f]")
#: The two fast paths above for Arrow (RE2), which judges a whole column in C: text ``text`` returns as it is
#: (ASCII and ``PLAIN_ASCII`` whole), and text ``has_markup`` must look closer at (not ASCII, or ``MARKUP_ASCII``).
PLAIN_ASCII_RE2 = r"^[\x21-\x25\x27-\x3b\x3d-\x7e]+(?: [\x21-\x25\x27-\x3b\x3d-\x7e]+)*$"
MAYBE_MARKUP_RE2 = r"[^\x00-\x7f]|[<&\x00-\x08\x0e-\x1f\x7f]"
#: Languages whose country names are accepted, beside English (the header-alias languages and neighbours).
COUNTRY_NAME_LANGUAGES = ("nb", "nn", "sv", "da", "de", "fr", "es", "it", "nl", "pt", "fi", "pl", "is")
#: Common English names pycountry does not list.
COUNTRY_EXTRAS = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "south korea": "KR",
    "korea": "KR",
    "russia": "RU",
    "czech republic": "CZ",
    "holland": "NL",
    "the netherlands": "NL",
    "vietnam": "VN",
    "taiwan": "TW",
    "iran": "IR",
    "turkey": "TR",
    "türkiye": "TR",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "syria": "SY",
    "laos": "LA",
    "hong kong": "HK",
}


def _settle(step: Callable[[str], str], value: str) -> str:
    """Apply ``step`` until nothing changes: cleaning can expose more to clean (``&amp;lt;b&amp;gt;``, ``&am p;``, ``e&#x301;``)."""
    for _ in range(2 * len(value) + 4):  # every round that changes something shortens or settles the value
        out = step(value)
        if out == value:
            break
        value = out
    return value


def _unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        ref = m.group(1)
        return html.unescape(m.group(0)) if ref.startswith("#") or ref in html.entities.html5 else m.group(0)

    return ENTITY.sub(one, value)


def _clean_step(value: str) -> str:
    return unicodedata.normalize("NFC", CONTROL.sub(" ", TAG.sub(" ", _unescape(value))))


def text(value: str | None) -> str | None:
    """Plain text: markup, entities and control characters removed, white space folded; None when empty."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and PLAIN_ASCII.fullmatch(value):
        return value  # the common case: nothing to do (the same result as ``_plain_text``: tests/test_normalise_properties.py)
    return _plain_text(str(value))


def _plain_text(value: str) -> str | None:
    out = _settle(_clean_step, unicodedata.normalize("NFC", value))
    out = SPACE.sub(" ", out).strip()
    return out or None


#: What ends a text cut at its field's ``max_length``.
ELLIPSIS = "…"
#: Characters dropped from the end of a cut text before the ellipsis.
CUT_TRAILING = " \t\n,;:.-–—(["


def shorten(value: str | None, max_length: int) -> str | None:
    """At most ``max_length`` characters: a longer text is cut at the last word boundary before the cap and ends in ``…``.

    A text with no space in its last half is cut inside the word.  Idempotent: a text that fits is returned as it is.
    """
    if value is None or len(value) <= max_length:
        return value
    head = value[: max_length - len(ELLIPSIS)]
    if not value[len(head)].isspace():
        space = max((head.rfind(ch) for ch in (" ", "\t", "\n")), default=-1)
        if space >= len(head) // 2:
            head = head[:space]
    return head.rstrip(CUT_TRAILING) + ELLIPSIS


def has_markup(value: str | None) -> bool:
    """True when ``text`` would remove markup or control characters (not just fold spaces)."""
    if not value:
        return False
    if value.isascii() and not MARKUP_ASCII.search(value):
        return False  # the common case (the same answer as ``_markup_removed``)
    return _markup_removed(value)


def _markup_removed(value: str) -> bool:
    cleaned = text(value) or ""
    return cleaned != SPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def split_list(value: str | None) -> list[str]:
    """Cells holding several values use ``;`` (commas and slashes are accepted for short lists)."""
    cleaned = text(value)
    if not cleaned:
        return []
    parts = cleaned.split(LIST_SEPARATOR) if LIST_SEPARATOR in cleaned else re.split(r"[,/|]", cleaned)
    return [p.strip() for p in parts if p.strip()]


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- vocabularies -----------------------------------------------------------------------------


@functools.cache
def _table(name: str) -> dict[str, str]:
    return vocabularies.lookup_table(getattr(vocabularies, name))


def term(value: str | None, vocabulary: str) -> str | None:
    """The canonical value of a vocabulary (``"KINDS"``, ``"TOPICS"``, ...) or the cleaned input."""
    cleaned = text(value)
    if cleaned is None:
        return None
    return _table(vocabulary).get(vocabularies.vocabulary_key(cleaned), cleaned)


def terms(value: str | None, vocabulary: str) -> list[str]:
    return _dedupe([t for t in (term(p, vocabulary) for p in split_list(value)) if t])


def terms_list(values: list[str], vocabulary: str) -> list[str]:
    """``terms`` for an already split list (keeps the function idempotent on its own output)."""
    return _dedupe([t for t in (term(p, vocabulary) for p in values) if t])


# --- places -----------------------------------------------------------------------------------


def _fold(name: str) -> str:
    return vocabularies.vocabulary_key(name).replace(",", "")


@functools.cache
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if hasattr(country, attr):
                names.setdefault(_fold(getattr(country, attr)), country.alpha_2)
    for lang in COUNTRY_NAME_LANGUAGES:
        try:
            tr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        except OSError:
            continue
        for country in pycountry.countries:
            for attr in ("name", "common_name"):
                if hasattr(country, attr):
                    names.setdefault(_fold(tr.gettext(getattr(country, attr))), country.alpha_2)
    for name, code in COUNTRY_EXTRAS.items():
        names.setdefault(_fold(name), code)
    return names


@functools.cache
def _alpha3() -> dict[str, str]:
    return {c.alpha_3: c.alpha_2 for c in pycountry.countries}


def country(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 (``WW`` for worldwide) from a code or an English or local name."""
    cleaned = text(value)
    if cleaned is None:
        return None
    key = _fold(cleaned)
    if key in vocabularies.WORLDWIDE:
        return "WW"
    upper = cleaned.upper()
    if len(cleaned) == 2 and pycountry.countries.get(alpha_2=upper):
        return upper
    if len(cleaned) == 3 and upper in _alpha3():
        return _alpha3()[upper]
    return _country_names().get(key, cleaned)


@functools.cache
def _subdivisions(country_code: str) -> dict[str, str]:
    found = pycountry.subdivisions.get(country_code=country_code) or []
    names: dict[str, str] = {}
    for sub in found:
        names.setdefault(_fold(sub.name), sub.code)
        names.setdefault(_fold(sub.code.split("-", 1)[1]), sub.code)
    return names


def region(value: str, country_code: str | None) -> str:
    """One ISO 3166-2 code from a code or a subdivision name inside ``country_code``."""
    cleaned = text(value) or ""
    upper = cleaned.upper()
    if pycountry.subdivisions.get(code=upper):
        return upper
    if country_code and len(country_code) == 2 and country_code != "WW":
        return _subdivisions(country_code).get(_fold(cleaned), cleaned)
    return cleaned


def regions(value: str | None, country_code: str | None) -> list[str]:
    return _dedupe([region(p, country_code) for p in split_list(value)])


def regions_list(values: list[str], country_code: str | None) -> list[str]:
    return _dedupe([r for r in (region(p, country_code) for p in values) if r])


def areas(country_code: str | None, region_codes: list[str]) -> list[str]:
    """Location codes a row serves: its regions, or else its country."""
    return sorted(region_codes) if region_codes else ([country_code] if country_code else [])


# --- languages --------------------------------------------------------------------------------


def language(value: str) -> str:
    """A BCP 47 tag from a tag or an English language name; the cleaned input when unknown."""
    cleaned = text(value) or ""
    candidate = cleaned.replace("_", "-")
    try:
        if langcodes.tag_is_valid(candidate):
            return langcodes.standardize_tag(candidate)
    except (ValueError, LookupError):
        pass
    try:
        found = langcodes.find(cleaned)
    except (LookupError, ValueError):
        return cleaned
    # langcodes.find also takes near and partial names ("Klingonish", "english and french"): only an exact name counts
    return found.to_tag() if cleaned.casefold() in _language_names(found.to_tag()) else cleaned


#: Languages whose names of languages are accepted, beside English and each language's own name.
LANGUAGE_NAME_LANGUAGES = ("en", "nb", "nn", "no", "sv", "da", "de", "fr", "es")


@functools.lru_cache(maxsize=4096)
def _language_names(tag: str) -> frozenset[str]:
    """A language's names, casefolded: in English, in its own language, and in the header-alias languages."""
    lang = langcodes.Language.get(tag)
    names = {lang.display_name(other) for other in (*LANGUAGE_NAME_LANGUAGES, tag)}
    return frozenset(n.casefold() for n in names)


def languages(value: str | None) -> list[str]:
    return _dedupe([language(p) for p in split_list(value)])


def languages_list(values: list[str]) -> list[str]:
    return _dedupe([t for t in (language(p) for p in values) if t])


# --- contacts ---------------------------------------------------------------------------------


def url(value: str | None) -> str | None:
    """Canonical http(s) URL: scheme added to bare hosts, scheme and host lowercased, fragment and default port dropped."""
    cleaned = text(value)
    if cleaned is None:
        return None
    simple = SIMPLE_URL.fullmatch(cleaned)
    if simple:  # the common case, without the work below (the same result: tests/test_normalise_properties.py)
        scheme, host, path, query = simple.groups()
        return f"{scheme.lower()}://{host.lower()}{'' if path in (None, '/') else path}{query or ''}"
    return _settle(_url_step, cleaned) or None


#: An http(s) URL with a plain host, no port, credentials, fragment or characters that ``_url_step`` would change.
SIMPLE_URL = re.compile(
    r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)+)(/[a-z0-9._~%!$'()*+,;=:@/-]*)?(\?[a-z0-9._~%!$'()*+,;=:@/?-]+)?", re.IGNORECASE
)


#: ``SIMPLE_URL`` for Arrow (RE2), with the scheme and host already lowercase: ``url`` keeps such a URL as it is, but
#: for a path that is only "/", which it drops (``URL_REWRITE``, the same change made by Arrow).
CANONICAL_URL_RE2 = r"^https?://[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/[a-zA-Z0-9._~%!$'()*+,;=:@/-]*)?(?:\?[a-zA-Z0-9._~%!$'()*+,;=:@/?-]+)?$"
URL_REWRITE = (r"^(https?://[^/?]+)/(\?.*)?$", r"\1\2")


def _url_step(value: str) -> str:
    written = text(value) or ""  # what is returned when the value is not a web address, for validation to name
    cleaned = written.replace(" ", "")
    if re.match(r"^(www\.|[a-z0-9-]+(\.[a-z0-9-]+)+(/|$))", cleaned, re.IGNORECASE):
        cleaned = "https://" + cleaned
    try:
        parts = urlsplit(cleaned)
        port = parts.port
    except ValueError:
        return written
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return written
    host = parts.hostname.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return written
    netloc = host
    if parts.username or parts.password:
        return written  # credentials are refused by validation, shown as written
    if ":" in host:
        netloc = f"[{host}]"  # an IPv6 address keeps its brackets
    if port and port != {"http": 80, "https": 443}[scheme]:
        netloc = f"{netloc}:{port}"
    path = parts.path if parts.path not in ("", "/") else ""
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def email(value: str | None) -> str | None:
    """The address without ``mailto:`` and spaces, its domain lowercased; else the cleaned input."""
    cleaned = text(value)
    if cleaned is None:
        return None
    return _settle(_email_step, cleaned) or None


def _email_step(value: str) -> str:
    written = text(value) or ""
    cleaned = re.sub(r"^(?:mailto:)+", "", written.replace(" ", ""), flags=re.IGNORECASE)
    local, at, domain = cleaned.rpartition("@")
    return f"{local}@{domain.lower()}" if at else written


EXCEL_NUMBER = re.compile(r"^\+?\d+(\.\d+)?[eE]\+?\d+$|^\+?\d+\.0+$")


def excel_digits(value: str) -> str:
    """Undo what spreadsheets do to long numbers: ``4.72240004E9`` and ``4722400040.0`` become ``4722400040``."""
    if not EXCEL_NUMBER.match(value):
        return value
    try:
        number = decimal.Decimal(value.lstrip("+"))
    except decimal.InvalidOperation:
        return value
    if number != number.to_integral_value() or number > 10**16:
        return value
    return ("+" if value.startswith("+") else "") + str(int(number))


#: Words that mark a number in a phone cell as a text (SMS) number.
SMS_LABELS = re.compile(r"^\s*(sms|text|txt|tekst|texto|texte|textmeddelande)\b[\s:.-]*", re.IGNORECASE)
#: What separates several numbers in one cell ("116 123 / SMS 2222", "22 40 00 40 or 116 123").
NUMBER_SEPARATORS = re.compile(r"\s*(?:[/;|,\n]|\b(?:or|eller|oder|ou|o|of|tai)\b)\s*", re.IGNORECASE)
#: A cell of one number written with digits, spaces and ``+().-`` only: nothing to split, no label (most cells).
ONE_NUMBER = re.compile(r"[+().\- ]*\d[\d+().\- ]*")


def split_numbers(value: str | None) -> tuple[list[str], list[str]]:
    """The numbers in a phone cell: (voice numbers, text numbers), in the order written."""
    cleaned = text(value)
    if not cleaned:
        return [], []
    if ONE_NUMBER.fullmatch(cleaned):
        return [cleaned.strip()], []  # what ``split_cleaned_numbers`` gives such a cell, without splitting it
    return split_cleaned_numbers(cleaned)


def split_cleaned_numbers(cleaned: str) -> tuple[list[str], list[str]]:
    """``split_numbers`` of a cell already cleaned (``text``), splitting it at every separator."""
    if not re.search(r"\d", cleaned):
        return [cleaned], []  # no number at all: kept as written, for validation to name
    voice: list[str] = []
    texts: list[str] = []
    for part in NUMBER_SEPARATORS.split(cleaned):
        if not part or not re.search(r"\d", part):
            continue
        label = SMS_LABELS.match(part)
        (texts if label else voice).append(part[label.end() :].strip() if label else part.strip())
    return voice, texts


#: A national number written with digits and spacing only (no letters, no extension, no +).
NATIONAL_NOTATION = re.compile(r"[\d\s().-]+")


def _parse(number: str, region_code: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, region_code)
    except phonenumbers.NumberParseException:
        return None


def phone(value: str | None, country_code: str | None) -> str | None:
    """E.164 for a valid number; the digits for a national short number; else the cleaned input."""
    return parsed_phone(value, country_code)[0]


#: What ``parsed_phone`` found: the staged value and, when that is an E.164 that parses back to the number it was
#: made of, that number and its type, for ``schemas.checks.judge_phone`` not to parse and type it again (None
#: and ``UNKNOWN`` otherwise).
ParsedPhone = tuple[str | None, phonenumbers.PhoneNumber | None, int]


def parsed_phone(value: str | None, country_code: str | None) -> ParsedPhone:
    """``phone``, with the number its E.164 is made of and that number's type (``ParsedPhone``)."""
    unknown = phonenumbers.PhoneNumberType.UNKNOWN
    cleaned = text(value)
    if cleaned is None:
        return None, None, unknown
    written = cleaned
    cleaned = excel_digits(cleaned)
    digits = re.sub(r"\D", "", cleaned)
    international = cleaned.startswith("+") or cleaned.startswith("00")
    if cleaned.startswith("00"):
        digits = digits[2:]  # 00 is the international prefix, as + is
    region_code = country_code if country_code and len(country_code) == 2 and country_code != "WW" else None
    formatted_only = bool(NATIONAL_NOTATION.fullmatch(cleaned))  # digits and spacing only: parsed as its digits
    number = None if international else _parse(digits if formatted_only else cleaned, region_code)
    if not international and region_code and 3 <= len(digits) <= 8:
        short = number if formatted_only else _parse(digits, region_code)
        if short is not None and shortnumberinfo.is_valid_short_number_for_region(short, region_code):
            return digits, None, unknown
    if international:
        number = _parse("+" + digits, None)
    kind = _number_type(number)  # valid when known (``is_valid_number`` is a known type: it would match the types again)
    if kind == unknown and not international and region_code:
        calling = str(phonenumbers.country_code_for_region(region_code))
        if digits.startswith(calling) and len(digits) > len(calling) + 4:
            # the + lost in a spreadsheet: 4722400040 in a Norwegian row is +47 22 40 00 40
            number = _parse("+" + digits, None)
            kind = _number_type(number)
    if number is not None and (kind != unknown or (len(digits) > 6 and phonenumbers.is_possible_number(number))):
        # valid, or of a possible length that the metadata does not know (yet): E.164 all the same, for
        # validation to keep with a warning (phone_unverified)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return (e164, number, kind) if _parses_back(number) else (e164, None, unknown)
    if not international and (region_code or country_code == "WW") and 3 <= len(digits) <= 6 and formatted_only:
        # a national short code the metadata lacks (the Netherlands' 113); in a worldwide row, the digits let
        # validation say that a short number needs a country (short_number_needs_country)
        return digits, None, unknown
    return written, None, unknown


def _parses_back(number: phonenumbers.PhoneNumber) -> bool:
    """Whether the number's E.164, parsed, is the number: phonenumbers strips a national prefix from the digits
    after the country code when they start with one (+43 0 57… parses as +43 57…)."""
    calling = number.country_code or 0
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(calling, phonenumbers.region_code_for_country_code(calling))
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return not prefix or re.match(prefix, phonenumbers.national_significant_number(number)) is None


def _number_type(number: phonenumbers.PhoneNumber | None) -> int:
    return phonenumbers.PhoneNumberType.UNKNOWN if number is None else phonenumbers.number_type(number)


def hours(value: str | None) -> str | None:
    cleaned = text(value)
    if cleaned is None:
        return None
    return "24/7" if vocabularies.vocabulary_key(cleaned) in {vocabularies.vocabulary_key(a) for a in vocabularies.ALWAYS_OPEN} else cleaned


DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%Y%m%d",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d.%m.%y",
    "%d/%m/%y",
)
#: Spreadsheet serial dates (days since 1899-12-30) accepted: 1954 to 2119.
EXCEL_SERIALS = range(20000, 80000)


def date(value: str | None) -> str | None:
    """ISO date (YYYY-MM-DD) from common notations (day first where ambiguous); else the cleaned input."""
    cleaned = text(value)
    if cleaned is None:
        return None
    candidate = re.split(r"[T ]\d{1,2}:\d{2}", cleaned)[0].strip()
    if re.fullmatch(r"\d{5}(\.0+)?", candidate) and int(float(candidate)) in EXCEL_SERIALS:
        return (dt.date(1899, 12, 30) + dt.timedelta(days=int(float(candidate)))).isoformat()
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(candidate, fmt).date().isoformat()
        except ValueError:
            continue
    return cleaned


def record_id(value: str | None, row: int) -> str:
    return text(value) or str(row)
