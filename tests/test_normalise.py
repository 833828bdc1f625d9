"""Example-based tests of the normalisers in ``curate.normalise`` (the properties are in test_normalise_properties.py)."""

from __future__ import annotations

import pytest

from curate import normalise as n

# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fjordhjelp", "Fjordhjelp"),
        ("<b>Free</b> and <i>anonymous</i>", "Free and anonymous"),
        ('<a href="https://x.example">Chat</a> now', "Chat now"),
        ("<p>One</p><p>Two</p>", "One Two"),
        ("<br/>Line<br />break", "Line break"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("caf&eacute; &#233; &#xE9;", "café é é"),
        ("&quot;quoted&quot;", '"quoted"'),
        ("&lt;b&gt;bold&lt;/b&gt; text", "bold text"),
        ("&amp;lt;i&amp;gt;twice escaped&amp;lt;/i&amp;gt;", "twice escaped"),
        ("<!-- comment -->Visible", "Visible"),
        ("a\x00b\x07c\x1fd", "a b c d"),
        ("zero\u200bwidth\ufeff", "zero width"),
        ("  lots \n\t of \r\n  space  ", "lots of space"),
        ("non\u00a0breaking", "non breaking"),
        ("e\u0301", "é"),  # NFC
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),  # not markup
        ("Q&A, AT&T, R&D", "Q&A, AT&T, R&D"),
        ("&copy2025 &notes", "&copy2025 &notes"),  # a named reference without ; followed by a letter or digit is text
        ("&amp", "&"),
        ("", None),
        ("   ", None),
        ("<b></b>", None),
        ("\x00\x01", None),
        (None, None),
    ],
)
def test_text(value, expected):
    assert n.text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<b>x</b>", True),
        ("&lt;script&gt;", True),
        ("Tom &amp; Jerry", True),
        ("a\x00b", True),
        ("zero\u200bwidth", True),
        ("plain text", False),
        ("  extra   spaces\n", False),
        ("5 < 6", False),
        ("Q&A", False),
        ("", False),
        (None, False),
    ],
)
def test_has_markup(value, expected):
    assert n.has_markup(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a;b; c", ["a", "b", "c"]),
        ("a, b", ["a", "b"]),
        ("a/b", ["a", "b"]),
        ("a|b", ["a", "b"]),
        ("a;b,c", ["a", "b,c"]),  # ; wins: commas stay inside the parts
        (" ; ;a;; ", ["a"]),
        ("<b>en</b>; nb", ["en", "nb"]),
        ("single", ["single"]),
        ("", []),
        (None, []),
    ],
)
def test_split_list(value, expected):
    assert n.split_list(value) == expected


# --- vocabularies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "vocabulary", "expected"),
    [
        ("helpline", "KINDS", "helpline"),
        ("Hotline", "KINDS", "helpline"),
        ("crisis-line", "KINDS", "helpline"),
        ("CRISIS   LINE", "KINDS", "helpline"),
        ("hjelpetelefon", "KINDS", "helpline"),
        ("online community", "KINDS", "online_community"),
        ("Online-Community", "KINDS", "online_community"),
        ("ONLINE_THERAPY", "KINDS", "online_therapy"),
        ("Web Chat", "KINDS", "chat"),
        ("SMS", "KINDS", "text_line"),
        ("Self-help group", "KINDS", "support_group"),
        ("PTSD", "TOPICS", "trauma"),
        ("self harm", "TOPICS", "self_harm"),
        ("Eating disorder", "TOPICS", "eating_disorders"),
        ("teens", "AUDIENCES", "youth"),
        ("Older people", "AUDIENCES", "older_adults"),
        ("Volunteers", "MODERATION", "peer"),
        ("n/a", "MODERATION", "unknown"),
        ("Kostenlos", "COSTS", "free"),
        ("gratuit", "COSTS", "free"),
        ("hepline", "KINDS", "hepline"),  # unknown: kept as written
        ("Crisis Café", "KINDS", "Crisis Café"),
        ("<b>Hotline</b>", "KINDS", "helpline"),
        ("", "KINDS", None),
        (None, "COSTS", None),
    ],
)
def test_term(value, vocabulary, expected):
    assert n.term(value, vocabulary) == expected


@pytest.mark.parametrize(
    ("value", "vocabulary", "expected"),
    [
        ("PTSD; anxiety; panic", "TOPICS", ["trauma", "anxiety"]),  # panic is anxiety: deduplicated
        ("Depression, Low mood", "TOPICS", ["depression"]),
        ("suicide; Grief; unknown thing", "TOPICS", ["suicide", "grief", "unknown thing"]),
        ("teens; kids; Young People", "AUDIENCES", ["youth", "children"]),
        ("", "TOPICS", []),
        (None, "AUDIENCES", []),
    ],
)
def test_terms(value, vocabulary, expected):
    assert n.terms(value, vocabulary) == expected


def test_terms_list_normalises_each_element():
    assert n.terms_list(["PTSD", "trauma", "", "Bereavement"], "TOPICS") == ["trauma", "grief"]


# --- places -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("NO", "NO"),
        ("no", "NO"),
        ("No", "NO"),
        (" gb ", "GB"),
        ("NOR", "NO"),
        ("deu", "DE"),
        ("GBR", "GB"),
        ("Norway", "NO"),
        ("norway", "NO"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("USA", "US"),
        ("Germany", "DE"),
        ("Norge", "NO"),
        ("Noreg", "NO"),
        ("Deutschland", "DE"),
        ("España", "ES"),
        ("Sverige", "SE"),
        ("Allemagne", "DE"),
        ("Norvège", "NO"),
        ("Suecia", "SE"),
        ("Tyskland", "DE"),
        ("WW", "WW"),
        ("ww", "WW"),
        ("worldwide", "WW"),
        ("Worldwide", "WW"),
        ("Global", "WW"),
        ("international", "WW"),
        ("Narnia", "Narnia"),
        ("XX", "XX"),
        ("", None),
        (None, None),
    ],
)
def test_country(value, expected):
    assert n.country(value) == expected


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("NO-03", "NO", "NO-03"),
        ("no-03", "NO", "NO-03"),
        ("03", "NO", "NO-03"),
        ("Oslo", "NO", "NO-03"),
        ("oslo", "NO", "NO-03"),
        ("Vestland", "NO", "NO-46"),
        ("Scotland", "GB", "GB-SCT"),
        ("SCT", "GB", "GB-SCT"),
        ("gb-sct", None, "GB-SCT"),
        ("California", "US", "US-CA"),
        ("Bayern", "DE", "DE-BY"),
        ("SE-AB", "NO", "SE-AB"),  # a code of another country is kept: validation names it
        ("Oslo", "SE", "Oslo"),
        ("Oslo", None, "Oslo"),
        ("Oslo", "WW", "Oslo"),
        ("Atlantis", "NO", "Atlantis"),
    ],
)
def test_region(value, country, expected):
    assert n.region(value, country) == expected


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("Oslo; Vestland", "NO", ["NO-03", "NO-46"]),
        ("NO-03, NO-46", "NO", ["NO-03", "NO-46"]),
        ("Oslo; oslo; NO-03", "NO", ["NO-03"]),
        ("Scotland", "GB", ["GB-SCT"]),
        ("", "NO", []),
        (None, "NO", []),
    ],
)
def test_regions(value, country, expected):
    assert n.regions(value, country) == expected


@pytest.mark.parametrize(
    ("country", "regions", "expected"),
    [
        ("NO", [], ["NO"]),
        ("NO", ["NO-46", "NO-03"], ["NO-03", "NO-46"]),
        ("WW", [], ["WW"]),
        (None, [], []),
    ],
)
def test_areas(country, regions, expected):
    assert n.areas(country, regions) == expected


# --- languages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-us", "en-US"),
        ("EN-us", "en-US"),
        ("en_GB", "en-GB"),
        ("zh-hant", "zh-Hant"),
        ("nb", "nb"),
        ("iw", "he"),  # deprecated tag replaced
        ("English", "en"),
        ("german", "de"),
        ("Norwegian Bokmål", "nb"),
        ("Norwegian Nynorsk", "nn"),
        ("Elvish", "Elvish"),  # unknown: kept as written
        ("Foo Bar", "Foo Bar"),
    ],
)
def test_language(value, expected):
    assert n.language(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("English; Norwegian Bokmål; en", ["en", "nb"]),
        ("en, de", ["en", "de"]),
        ("en-us;fr", ["en-US", "fr"]),
        ("", []),
        (None, []),
    ],
)
def test_languages(value, expected):
    assert n.languages(value) == expected


def test_languages_list_drops_elements_that_clean_to_nothing():
    assert n.languages_list(["English", "<b></b>", " ", "en"]) == ["en"]


# --- contacts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://fjordhjelp.example", "https://fjordhjelp.example"),
        ("example.org", "https://example.org"),
        ("www.example.org", "https://www.example.org"),
        ("Example.ORG/Path", "https://example.org/Path"),  # path keeps its case
        ("HTTP://Example.ORG", "http://example.org"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("https://example.org/a#section", "https://example.org/a"),
        ("https://example.org/", "https://example.org"),
        ("https://example.org/a/", "https://example.org/a/"),
        ("https://example.org/search?lang=en&region=NO&copy=2", "https://example.org/search?lang=en&region=NO&copy=2"),
        ("https://example.org/?a=1&amp;b=2", "https://example.org?a=1&b=2"),
        ("  https://example.org/a b  ", "https://example.org/ab"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://example.org./a", "https://example.org/a"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        # kept exactly as written, so that validation rejects them with the curator's own text
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("data:text/html,<p>x", "data:text/html, x"),  # markup in a cell is still removed
        ("data:text/plain,hello", "data:text/plain,hello"),
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("ftp://example.org/file", "ftp://example.org/file"),
        ("https://user:secret@Example.org/", "https://user:secret@Example.org/"),
        ("https://user@example.org", "https://user@example.org"),
        ("javascript: alert(1)", "javascript: alert(1)"),
        ("not a web address", "not a web address"),
        ("example.org:99999", "example.org:99999"),  # no such port
        ("", None),
        (None, None),
    ],
)
def test_url(value, expected):
    assert n.url(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("help@example.org", "help@example.org"),
        ("Help@Example.ORG", "Help@example.org"),  # the local part keeps its case
        ("mailto:help@example.org", "help@example.org"),
        ("MAILTO:help@example.org", "help@example.org"),
        (" help @ example.org ", "help@example.org"),
        ("a b@Example.org", "ab@example.org"),
        ("not an email", "not an email"),  # not an address: as written, for validation to name
        ("", None),
        (None, None),
    ],
)
def test_email(value, expected):
    assert n.email(value) == expected


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        # valid national numbers -> E.164
        ("22 40 00 40", "NO", "+4722400040"),
        ("(22) 40-00-40", "NO", "+4722400040"),
        ("0800 58 58 58", "GB", "+44800585858"),
        ("1-800-273-8255", "US", "+18002738255"),
        ("0800 111 0 111", "DE", "+498001110111"),
        # international notation, with or without a country
        ("+44 800 585858", None, "+44800585858"),
        ("+44 800 585858", "NO", "+44800585858"),
        ("+44 800 585858", "WW", "+44800585858"),
        ("+47 22 40 00 40", "SE", "+4722400040"),
        ("0047 22 40 00 40", None, "+4722400040"),
        ("0044 800 585858", "NO", "+44800585858"),
        # national short numbers stay digits
        ("116 123", "NO", "116123"),
        ("116123", "GB", "116123"),
        ("988", "US", "988"),
        ("1813", "BE", "1813"),
        ("113", "NL", "113"),
        ("85258", "GB", "85258"),
        ("116 123", "WW", "116123"),  # validation then asks for a country
        # of a possible length but not known to be in use: E.164 all the same (validation warns: phone_unverified)
        ("+47 1234 5678", "NO", "+4712345678"),
        ("1234 5678", "NO", "+4712345678"),
        ("+44 7700 900000", None, "+447700900000"),
        # too short or too long to be a number anywhere: kept as written (validation: phone_number)
        ("+47 1234", "NO", "+47 1234"),
        ("1234567", "NO", "1234567"),
        # garbage kept as written
        ("call us", "NO", "call us"),
        ("12", "NO", "12"),
        ("abc123", "NO", "abc123"),
        ("22 40 00 40", None, "22 40 00 40"),
        ("", "NO", None),
        (None, "NO", None),
    ],
)
def test_phone(value, country, expected):
    assert n.phone(value, country) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("24/7", "24/7"),
        ("24 hours", "24/7"),
        ("24 Hours a day", "24/7"),
        ("24h", "24/7"),
        ("24x7", "24/7"),
        ("Always open", "24/7"),
        ("døgnåpen", "24/7"),
        ("Døgnåpen", "24/7"),
        ("dygnet runt", "24/7"),
        ("Rund um die Uhr", "24/7"),
        ("Mon-Fri 9-17", "Mon-Fri 9-17"),
        ("  Mon–Fri   09:00–17:00 ", "Mon–Fri 09:00–17:00"),
        ("", None),
        (None, None),
    ],
)
def test_hours(value, expected):
    assert n.hours(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-30", "2025-06-30"),
        ("30.06.2025", "2025-06-30"),
        ("1.7.2025", "2025-07-01"),
        ("2025/06/30", "2025-06-30"),
        ("30/06/2025", "2025-06-30"),  # day first
        ("30-06-2025", "2025-06-30"),
        ("20250630", "2025-06-30"),
        ("2025-06-30T10:00", "2025-06-30"),
        ("2025-06-30T10:00:00Z", "2025-06-30"),
        ("2025-06-30 10:00:00", "2025-06-30"),
        ("30 June 2025", "2025-06-30"),
        ("June 30, 2025", "2025-06-30"),
        ("yesterday", "yesterday"),
        ("31.02.2025", "31.02.2025"),  # no such day: kept
        ("2025-13-01", "2025-13-01"),
        ("", None),
        (None, None),
    ],
)
def test_date(value, expected):
    assert n.date(value) == expected


@pytest.mark.parametrize(
    ("value", "row", "expected"),
    [
        ("no-mental-helse", 2, "no-mental-helse"),
        ("  abc  ", 7, "abc"),
        ("<b>x</b>", 7, "x"),
        ("", 5, "5"),
        ("   ", 6, "6"),
        (None, 9, "9"),
    ],
)
def test_record_id(value, row, expected):
    assert n.record_id(value, row) == expected


def test_comparison_signs_are_not_mistaken_for_markup():
    assert n.text("for ages < 25 and > 12") == "for ages < 25 and > 12"
    assert not n.has_markup("for ages < 25 and > 12")
    assert n.text("<b>bold</b> ages < 25") == "bold ages < 25"


@pytest.mark.parametrize(
    ("value", "max_length", "expected"),
    [
        ("short enough", 20, "short enough"),
        ("exactly twenty chars", 20, "exactly twenty chars"),
        # cut at the last word boundary before the cap, with room for the ellipsis
        ("one two three four five", 12, "one two…"),
        ("one two three four five", 14, "one two three…"),  # the cut falls on a space: the whole word stays
        ("Free, anonymous, confidential support", 18, "Free, anonymous…"),  # trailing punctuation dropped
        # a word longer than half the cap is cut inside the word
        ("Supercalifragilisticexpialidocious", 10, "Supercali…"),
        ("a Supercalifragilisticexpialidocious", 10, "a Superca…"),
        (None, 10, None),
    ],
)
def test_shorten(value, max_length, expected):
    out = n.shorten(value, max_length)
    assert out == expected
    assert out is None or len(out) <= max_length
    assert n.shorten(out, max_length) == out  # idempotent


def test_phone_metadata_patterns_are_compiled_once():
    """phonenumbers' pattern cache is on once numbers are normalised here (in worker processes too, which import this
    module): a metadata pattern is the same compiled object after more patterns than ``re`` keeps have been compiled."""
    import re

    from phonenumbers import re_util

    pattern = re_util.re_compile("(?:9[0-8]\\\\d|7[1-9])\\\\d{5}")
    for i in range(re._MAXCACHE + 10):
        re_util.re_compile(f"(?:{i})\\\\d{{3}}")
    assert re_util.re_compile("(?:9[0-8]\\\\d|7[1-9])\\\\d{5}") is pattern
    assert n.phone("22 40 00 40", "NO") == "+4722400040"  # (and numbers are what they were)
