"""Tests of ``curate.validate`` (validate_listings, split_rows) and ``curate.checking.check_source``."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from curate.checking import check_source
from curate.problems import Problem
from curate.problems import problem as make_problem
from curate.read import ROW
from curate.sources import SourceOptions
from curate.stage import stage_listings
from curate.validate import _fan_out, split_rows, validate_listings
from schemas.checks import RULES

TODAY = dt.date(2026, 11, 25)
SOURCE, FILE = "helplines_no", "helplines_no.csv"

#: a minimal row that passes every check
BASE = {"name": "Fjordhjelp", "kind": "helpline", "country": "NO", "phone": "22 40 00 40"}
#: a row with every column filled in, that passes every check
RICH = {
    "record_id": "mh-1",
    "name": "Fjordhjelp Telefonen",
    "kind": "Hotline",
    "description": "Free, anonymous support line.",
    "url": "fjordhjelp.example",
    "phone": "116 123",
    "sms": "+47 22 40 00 40",
    "chat_url": "https://fjordhjelp.example/chat/chat",
    "email": "post@fjordhjelp.example",
    "country": "Norway",
    "region": "Oslo; Vestland",
    "languages": "Norwegian Bokmål; en",
    "topics": "general; suicide",
    "audience": "youth; adults",
    "moderation": "professional",
    "cost": "free",
    "hours": "døgnåpen",
    "verified_at": "25.11.2026",  # today
}


#: a description longer than the registry's cap (1000 characters)
LONG_DESCRIPTION = " ".join(["Free, anonymous support."] * 45)


def frame(*rows: dict[str, str]) -> pd.DataFrame:
    """A raw frame as ``read_table`` returns it: strings only, ``_row`` from 2 (the header is row 1)."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    raw = pd.DataFrame([[r.get(c, "") for c in columns] for r in rows], columns=columns, dtype=object)
    raw[ROW] = list(range(2, 2 + len(rows)))
    return raw


def run(*rows: dict[str, str], options: SourceOptions | None = None, once: bool = False):
    """Stage and validate rows as ``check_source`` does: (staged frame, staging + validation problems).

    Unless ``once``, validation runs a second time without staging's codes, and must find the same.
    """
    staged = stage_listings(frame(*rows), SOURCE, FILE, options or SourceOptions())
    assert staged.frame is not None, staged.problems
    found = validate_listings(staged.frame, SOURCE, FILE, TODAY, staged.columns)
    if not once:
        assert found == validate_listings(staged.frame, SOURCE, FILE, TODAY)  # staging's codes stand in for hashing
    return staged.frame, staged.problems + found


def summary(problems) -> list[tuple[str, str, int | None, str | None, str | None]]:
    return [(p.rule, p.severity, p.row, p.column, p.value) for p in problems]


JARGON = re.compile(r"[{}<>]|\bNone\b|\bnan\b|pandera|failure_case|Traceback|element_wise|dtype|Series|DataFrame|lambda|\bcheck\b")


def assert_plain_words(problem) -> None:
    """A message and a fix a curator can act on: whole sentences, no code, no empty placeholders."""
    assert problem.source == SOURCE and problem.file == FILE
    for words in (problem.message, problem.fix):
        assert words and words == words.strip()
        assert words[-1] in ".?", words
        assert not JARGON.search(words), words
        assert "''" not in words, words  # an empty {value} or {column}


# --- every row rule ---------------------------------------------------------------------------

CASES = [
    # (id, overrides of BASE, [(rule, severity, row, column, value)])
    ("name empty", {"name": ""}, [("required", "error", 2, "name", None)]),
    ("name only spaces", {"name": "   "}, [("required", "error", 2, "name", None)]),
    ("kind empty", {"kind": ""}, [("required", "error", 2, "kind", None)]),
    ("country empty", {"country": "", "phone": "", "url": "https://fjordhjelp.example"}, [("required", "error", 2, "country", None)]),
    ("kind unknown", {"kind": "zzz"}, [("vocabulary", "error", 2, "kind", "zzz")]),
    ("kind near miss", {"kind": "hepline"}, [("vocabulary", "error", 2, "kind", "hepline")]),
    ("topic near miss", {"topics": "anxiety; depresion"}, [("vocabulary", "error", 2, "topics", "depresion")]),
    ("audience unknown", {"audience": "youth; martians"}, [("vocabulary", "error", 2, "audience", "martians")]),
    ("moderation near miss", {"moderation": "profesional"}, [("vocabulary", "error", 2, "moderation", "profesional")]),
    ("cost unknown", {"cost": "cheap"}, [("vocabulary", "error", 2, "cost", "cheap")]),
    ("name N/A", {"name": "N/A"}, [("not_placeholder", "error", 2, "name", "N/A")]),
    ("name TBD", {"name": " TBD "}, [("not_placeholder", "error", 2, "name", "TBD")]),
    ("name test", {"name": "test"}, [("not_placeholder", "error", 2, "name", "test")]),
    ("name dash", {"name": "-"}, [("formula_like", "warning", 2, "name", "-"), ("not_placeholder", "error", 2, "name", "-")]),
    ("name em dash", {"name": "—"}, [("not_placeholder", "error", 2, "name", "—")]),
    ("name spaced n/a", {"name": "n / a"}, [("not_placeholder", "error", 2, "name", "n / a")]),
    ("name dots", {"name": "..."}, [("not_placeholder", "error", 2, "name", "...")]),
    ("url javascript", {"url": "javascript:alert(1)"}, [("http_url", "error", 2, "url", "javascript:alert(1)")]),
    ("url data", {"url": "data:text/html;base64,PHNjcmlwdD4="}, [("http_url", "error", 2, "url", "data:text/html;base64,PHNjcmlwdD4=")]),
    ("url file", {"url": "file:///etc/passwd"}, [("http_url", "error", 2, "url", "file:///etc/passwd")]),
    ("url ftp", {"url": "ftp://example.org/list"}, [("http_url", "error", 2, "url", "ftp://example.org/list")]),
    ("url credentials", {"url": "https://user:secret@example.org/"}, [("http_url", "error", 2, "url", "https://user:secret@example.org/")]),
    ("url user only", {"url": "https://user@example.org"}, [("http_url", "error", 2, "url", "https://user@example.org")]),
    ("url dotless host", {"url": "http://localhost/help"}, [("http_url", "error", 2, "url", "http://localhost/help")]),
    ("url intranet host", {"url": "https://intranet"}, [("http_url", "error", 2, "url", "https://intranet")]),
    ("chat_url javascript", {"chat_url": "javascript:alert(1)"}, [("http_url", "error", 2, "chat_url", "javascript:alert(1)")]),
    ("chat_url data", {"chat_url": "data:text/html,hi"}, [("http_url", "error", 2, "chat_url", "data:text/html,hi")]),
    (
        "chat_url credentials",
        {"chat_url": "https://user:pw@chat.example"},
        [("http_url", "error", 2, "chat_url", "https://user:pw@chat.example")],
    ),
    ("url unknown ending", {"url": "https://fjordhjelp.zz/help"}, [("url_public_suffix", "error", 2, "url", "https://fjordhjelp.zz/help")]),
    ("url .local host", {"url": "http://helpline.local"}, [("url_public_suffix", "error", 2, "url", "http://helpline.local")]),
    ("url private IP", {"url": "http://192.168.1.10/help"}, [("url_public_suffix", "error", 2, "url", "http://192.168.1.10/help")]),
    ("url loopback IP", {"url": "http://127.0.0.1:8080"}, [("url_public_suffix", "error", 2, "url", "http://127.0.0.1:8080")]),
    ("url loopback IPv6", {"url": "https://[::1]/chat"}, [("url_public_suffix", "error", 2, "url", "https://[::1]/chat")]),
    (
        "chat_url internal host",
        {"chat_url": "https://chat.internal"},
        [("url_public_suffix", "error", 2, "chat_url", "https://chat.internal")],
    ),
    ("phone too short", {"phone": "12"}, [("phone_number", "error", 2, "phone", "12")]),
    ("phone words", {"phone": "call us"}, [("phone_number", "error", 2, "phone", "call us")]),
    ("phone invalid E.164", {"phone": "+47 1234"}, [("phone_number", "error", 2, "phone", "+47 1234")]),
    ("sms invalid", {"sms": "text HELLO"}, [("phone_number", "error", 2, "sms", "text HELLO")]),
    ("phone 7 digits, impossible in NO", {"phone": "1234567"}, [("phone_number", "error", 2, "phone", "1234567")]),
    ("phone possible, not known", {"phone": "+47 1234 5678"}, [("phone_unverified", "warning", 2, "phone", "+4712345678")]),
    ("phone NL 113, missing from metadata", {"country": "NL", "phone": "113"}, [("phone_unverified", "warning", 2, "phone", "113")]),
    ("sms short code not in metadata", {"sms": "2222"}, [("phone_unverified", "warning", 2, "sms", "2222")]),
    ("phone emergency 112", {"phone": "112"}, [("emergency_number", "error", 2, "phone", "112")]),
    ("phone emergency 113 in NO", {"phone": "113"}, [("emergency_number", "error", 2, "phone", "113")]),
    ("phone emergency 911 in US", {"country": "US", "phone": "911"}, [("emergency_number", "error", 2, "phone", "911")]),
    ("phone emergency 999 in GB", {"country": "GB", "phone": "9 9 9"}, [("emergency_number", "error", 2, "phone", "999")]),
    ("phone emergency 000 in AU", {"country": "AU", "phone": "000"}, [("emergency_number", "error", 2, "phone", "000")]),
    ("sms emergency", {"sms": "112"}, [("emergency_number", "error", 2, "sms", "112")]),
    ("phone premium rate", {"phone": "+47 820 12 345"}, [("premium_rate", "warning", 2, "phone", "+4782012345")]),
    ("phone premium rate US", {"country": "US", "phone": "1-900-555-1234"}, [("premium_rate", "warning", 2, "phone", "+19005551234")]),
    ("phone premium short number", {"country": "US", "phone": "24280"}, [("premium_rate", "warning", 2, "phone", "24280")]),
    ("email words", {"email": "not an email"}, [("email", "error", 2, "email", "not an email")]),
    ("email no dot", {"email": "help@example"}, [("email", "error", 2, "email", "help@example")]),
    ("email two ats", {"email": "help@@example.org"}, [("email", "error", 2, "email", "help@@example.org")]),
    (
        "country unknown name",
        {"country": "Narnia", "phone": "", "url": "https://x.example"},
        [("country_code", "error", 2, "country", "Narnia")],
    ),
    ("country unknown code", {"country": "XX", "phone": "", "url": "https://x.example"}, [("country_code", "error", 2, "country", "XX")]),
    (
        "region unknown",
        {"region": "Atlantis"},
        [("region_code", "error", 2, "region", "Atlantis"), ("region_in_country", "error", 2, "region", "Atlantis")],
    ),
    ("region of another country", {"region": "SE-AB"}, [("region_in_country", "error", 2, "region", "SE-AB")]),
    (
        "region in a worldwide row",
        {"region": "NO-03", "country": "WW", "phone": "+47 22 40 00 40"},
        [("region_in_country", "error", 2, "region", "NO-03")],
    ),
    ("language unknown", {"languages": "Elvish"}, [("bcp47", "error", 2, "languages", "Elvish")]),
    ("languages, two unknown", {"languages": "en; Elvish; Dwarvish"}, [("bcp47", "error", 2, "languages", "Elvish; Dwarvish")]),
    ("date tomorrow", {"verified_at": "2026-11-26"}, [("date_not_future", "error", 2, "verified_at", "2026-11-26")]),
    ("date future", {"verified_at": "01.01.2030"}, [("date_not_future", "error", 2, "verified_at", "2030-01-01")]),
    ("date unreadable", {"verified_at": "last spring"}, [("date_not_future", "error", 2, "verified_at", "last spring")]),
    ("date no such day", {"verified_at": "31.02.2025"}, [("date_not_future", "error", 2, "verified_at", "31.02.2025")]),
    ("verified 12 months and a day ago", {"verified_at": "2025-11-24"}, [("verified_stale", "warning", 2, "verified_at", "2025-11-24")]),
    ("verified 24 months ago", {"verified_at": "25.11.2024"}, [("verified_stale", "warning", 2, "verified_at", "2024-11-25")]),
    ("verified 24 months and a day ago", {"verified_at": "2024-11-24"}, [("verified_expired", "warning", 2, "verified_at", "2024-11-24")]),
    ("verified long ago", {"verified_at": "01.01.2019"}, [("verified_expired", "warning", 2, "verified_at", "2019-01-01")]),
    ("description too long", {"description": LONG_DESCRIPTION}, [("description_too_long", "warning", 2, "description", LONG_DESCRIPTION)]),
    ("no contact", {"phone": ""}, [("contact_required", "error", 2, None, None)]),
    ("short number WW", {"phone": "116123", "country": "WW"}, [("short_number_needs_country", "error", 2, "phone", "116123")]),
    ("emergency number WW", {"phone": "112", "country": "WW"}, [("short_number_needs_country", "error", 2, "phone", "112")]),
    (
        "short number WW spaced",
        {"phone": "116 123", "country": "worldwide"},
        [("short_number_needs_country", "error", 2, "phone", "116123")],
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), [pytest.param(o, e, id=i) for i, o, e in CASES])
def test_row_rule(overrides, expected):
    staged, problems = run({**BASE, **overrides})
    assert summary(problems) == expected
    for problem in problems:
        assert_plain_words(problem)
    accepted, rejected = split_rows(staged, problems)
    if any(severity == "error" for _, severity, *_ in expected):
        assert accepted.empty
        assert rejected[ROW].tolist() == [2]
    else:  # warnings keep the row
        assert accepted[ROW].tolist() == [2]
        assert rejected.empty


def test_every_row_rule_is_covered():
    file_level = {"unreadable_file", "empty_file", "missing_column", "unknown_column", "bad_source_id", "unsupported_format"}
    staging = {"duplicate_record_id", "markup_removed", "formula_like", "extra_numbers"}  # tested in test_stage.py, test_messy_files.py
    file_level |= {"file_too_large", "kept_previous_version", "download_failed", "download_failed_kept"}  # test_sources_never_lost.py
    covered = {rule for _, _, expected in CASES for rule, *_ in expected}
    assert covered - staging == set(RULES) - file_level - staging


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        ({"kind": "hepline"}, " Did you mean 'helpline'?"),
        ({"topics": "anxiety; depresion"}, " Did you mean 'depression'?"),
        ({"moderation": "profesional"}, " Did you mean 'professional'?"),
        ({"cost": "fre"}, " Did you mean 'free'?"),
    ],
)
def test_vocabulary_near_miss_suggests_the_value(overrides, hint):
    _, problems = run({**BASE, **overrides})
    assert [p.rule for p in problems] == ["vocabulary"]
    assert problems[0].message.endswith(hint)


@pytest.mark.parametrize("overrides", [{"kind": "zzz"}, {"cost": "cheap"}, {"audience": "martians"}])
def test_vocabulary_far_miss_suggests_nothing(overrides):
    _, problems = run({**BASE, **overrides})
    assert "Did you mean" not in problems[0].message


def test_messages_name_the_value_and_the_column():
    _, problems = run({**BASE, "kind": "hepline", "url": "javascript:alert(1)", "name": "N/A"})
    messages = {p.rule: p.message for p in problems}
    assert messages["vocabulary"] == "'hepline' is not one of the values 'kind' takes. Did you mean 'helpline'?"
    assert messages["not_placeholder"] == "'N/A' looks like a placeholder, not a real name."
    assert messages["http_url"].startswith("'javascript:alert(1)' is not a usable web address")
    fixes = {p.rule: p.fix for p in problems}
    assert fixes["http_url"] == "Write the full web address, starting with https://."  # the column's fix from the registry


def test_country_code_message_says_what_to_write():
    _, problems = run({**BASE, "country": "Narnia", "phone": "", "url": "https://x.example"})
    assert problems[0].message == "'Narnia' is not a country we recognise. Write a two-letter code (NO, GB) or WW for worldwide."


def test_short_number_in_sms_of_a_worldwide_row_names_the_sms():
    # the short number is in sms; the problem must point at that column and show that number
    _, problems = run({**BASE, "country": "WW", "phone": "+44 800 585858", "sms": "85258"})
    assert summary(problems) == [("short_number_needs_country", "error", 2, "sms", "85258")]
    assert "'85258'" in problems[0].message


def test_many_problems_in_one_row_are_all_reported_sorted_by_column():
    _, problems = run(
        {**BASE, "name": "test", "kind": "hepline", "url": "javascript:x", "phone": "12", "email": "a@b", "verified_at": "2030-01-01"}
    )
    assert summary(problems) == [
        ("email", "error", 2, "email", "a@b"),
        ("vocabulary", "error", 2, "kind", "hepline"),
        ("not_placeholder", "error", 2, "name", "test"),
        ("phone_number", "error", 2, "phone", "12"),
        ("http_url", "error", 2, "url", "javascript:x"),
        ("date_not_future", "error", 2, "verified_at", "2030-01-01"),
    ]


# --- clean rows and warnings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        BASE,
        RICH,
        {**BASE, "phone": "", "chat_url": "https://chat.example"},
        {**BASE, "verified_at": "2026-11-25"},
        {**BASE, "verified_at": "2025-11-25"},  # exactly 12 months ago
        {**BASE, "description": LONG_DESCRIPTION[:1000]},  # exactly the cap
        # national short numbers valid in the row's country
        {**BASE, "phone": "116 123"},
        {**BASE, "country": "GB", "phone": "116 123"},
        {**BASE, "country": "DE", "phone": "116123"},
        {**BASE, "country": "US", "phone": "988"},
        {**BASE, "country": "BE", "phone": "1813"},
        {**BASE, "country": "GB", "phone": "0800 58 58 58", "sms": "85258"},
        # public hosts, and the reserved test and documentation domains
        {**BASE, "url": "https://www.gov.uk/mental-health", "chat_url": "https://nhs.uk/chat"},
        {**BASE, "url": "https://93.184.215.14/help", "chat_url": "https://[2606:2800:220:1:248:1893:25c8:1946]/"},
        {**BASE, "url": "https://help.test", "chat_url": "http://chat.localhost:8080/room"},
        {**BASE, "url": "https://help.invalid", "chat_url": "https://xn--80aswg.xn--p1ai"},
    ],
)
def test_clean_row_has_no_problems(row):
    staged, problems = run(row)
    assert problems == []
    accepted, rejected = split_rows(staged, problems)
    assert accepted[ROW].tolist() == [2] and rejected.empty


def test_rich_row_is_staged_to_canonical_values():
    staged, _ = run(RICH)
    row = staged.iloc[0].to_dict()
    assert (row["kind"], row["country"], row["phone"], row["sms"]) == ("helpline", "NO", "116123", "+4722400040")
    assert (row["region"], row["areas"], row["languages"]) == (["NO-03", "NO-46"], ["NO-03", "NO-46"], ["nb", "en"])
    assert (row["hours"], row["always_open"], row["verified_at"]) == ("24/7", True, "2026-11-25")


def test_warning_only_rows_are_kept_and_error_rows_rejected():
    staged, problems = run(
        BASE,
        {**BASE, "name": "N/A"},
        {**BASE, "description": "<b>Free</b>"},
        {**BASE, "name": "=Nattlinja"},
        {**BASE, "phone": ""},
    )
    assert summary(problems) == [
        ("markup_removed", "warning", 4, "description", "<b>Free</b>"),
        ("formula_like", "warning", 5, "name", "=Nattlinja"),
        ("not_placeholder", "error", 3, "name", "N/A"),
        ("contact_required", "error", 6, None, None),
    ]
    accepted, rejected = split_rows(staged, problems)
    assert accepted[ROW].tolist() == [2, 4, 5]
    assert rejected[ROW].tolist() == [3, 6]
    assert list(accepted.index) == [0, 1, 2] and list(rejected.index) == [0, 1]
    assert accepted["description"].tolist() == [None, "Free", None]


def test_duplicate_record_id_rejects_the_later_row():
    staged, problems = run({**BASE, "record_id": "a"}, {**BASE, "record_id": "b"}, {**BASE, "record_id": "a"})
    assert summary(problems) == [("duplicate_record_id", "error", 4, "record_id", "a")]
    assert_plain_words(problems[0])
    accepted, rejected = split_rows(staged, problems)
    assert accepted["record_id"].tolist() == ["a", "b"]
    assert rejected[ROW].tolist() == [4]


def test_validate_listings_on_no_rows():
    staged, _ = run(BASE)
    assert validate_listings(staged.iloc[0:0], SOURCE, FILE, TODAY) == []


def test_problems_without_a_row_never_reject_rows():
    staged, problems = run(BASE, {**BASE, "Colour": "blue"})
    assert summary(problems) == [("unknown_column", "warning", None, None, "Colour")]
    accepted, rejected = split_rows(staged, problems)
    assert len(accepted) == 2 and rejected.empty


# --- check_source: bytes in -------------------------------------------------------------------


def test_check_source_reads_stages_and_validates():
    data = (
        b"name,kind,country,phone,url,verified_at,Colour\n"
        b"Fjordhjelp,helpline,NO,22 40 00 40,https://fjordhjelp.example,30.06.2025,x\n"
        b"<b>Nattlinja</b>,helpline,NO,22 40 00 40,,,\n"
        b"N/A,hepline,NO,,,2030-01-01,\n"
        b"\n"
        b"Linja,helpline,WW,116123,,,\n"
    )
    result = check_source(data, FILE, SOURCE, SourceOptions(priority=3), TODAY)
    assert summary(result.problems) == [
        ("unknown_column", "warning", None, None, "Colour"),
        ("verified_stale", "warning", 2, "verified_at", "2025-06-30"),
        ("markup_removed", "warning", 3, "name", "<b>Nattlinja</b>"),
        ("contact_required", "error", 4, None, None),
        ("vocabulary", "error", 4, "kind", "hepline"),
        ("not_placeholder", "error", 4, "name", "N/A"),
        ("date_not_future", "error", 4, "verified_at", "2030-01-01"),
        ("short_number_needs_country", "error", 6, "phone", "116123"),
    ]
    for problem in result.problems:
        assert_plain_words(problem)
    assert result.usable and result.priority == 3
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (4, 2, 2)
    assert result.accepted is not None
    assert result.accepted["name"].tolist() == ["Fjordhjelp", "Nattlinja"]
    assert result.accepted[ROW].tolist() == [2, 3]
    assert result.accepted["verified_at"].tolist() == ["2025-06-30", None]
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.raw is not None and result.raw["name"].tolist()[1] == "<b>Nattlinja</b>"  # the raw copy is as written
    assert result.mapping == {c: c for c in ("name", "kind", "country", "phone", "url", "verified_at")}


def test_check_source_windows_file_with_local_headers_and_defaults():
    data = (
        "Navn;Type;Telefon;Nettside;Fylke\r\n"
        "Krisetelefonen Tromsø;hjelpetelefon;116 123;;\r\n"
        "Fjordhjelp;;22 40 00 40;fjordhjelp.example;Oslo\r\n"
    ).encode("cp1252")
    result = check_source(data, "kriser.csv", "kriser", SourceOptions(country="NO", kind="helpline"), TODAY)
    assert result.problems == []
    assert result.accepted is not None
    rows = result.accepted[["name", "kind", "phone", "url", "areas"]].to_dict("records")
    assert rows == [
        {"name": "Krisetelefonen Tromsø", "kind": "helpline", "phone": "116123", "url": None, "areas": ["NO"]},
        {"name": "Fjordhjelp", "kind": "helpline", "phone": "+4722400040", "url": "https://fjordhjelp.example", "areas": ["NO-03"]},
    ]


def test_check_source_duplicate_record_id():
    data = b"record_id,name,kind,country,phone\nx,A,helpline,NO,22 40 00 40\nx,B,helpline,NO,22 40 00 40\n"
    result = check_source(data, FILE, SOURCE, SourceOptions(), TODAY)
    assert summary(result.problems) == [("duplicate_record_id", "error", 3, "record_id", "x")]
    assert result.accepted is not None and result.accepted["name"].tolist() == ["A"]
    assert result.rows_rejected == 1


@pytest.mark.parametrize(
    ("data", "file", "source_id", "expected"),
    [
        (b"", FILE, SOURCE, [("empty_file", "error", None, None, None)]),
        (b" \n\n", FILE, SOURCE, [("empty_file", "error", None, None, None)]),
        (b"name,kind,country\n", FILE, SOURCE, [("empty_file", "error", None, None, None)]),
        (b"name,kind\nA\x00,b\n", FILE, SOURCE, [("unreadable_file", "error", None, None, None)]),
        (b"PK\x03\x04", "list.ods", "list", [("unsupported_format", "error", None, None, ".ods")]),
        (b"PK\x03\x04", "list.xlsx", "list", [("unreadable_file", "error", None, None, None)]),
        (b"name\nA\n", "My List.csv", "My List", [("bad_source_id", "error", None, None, "My List")]),
        (
            b"name,phone\nA,22 40 00 40\n",
            FILE,
            SOURCE,
            [("missing_column", "error", None, "kind", None), ("missing_column", "error", None, "country", None)],
        ),
    ],
)
def test_check_source_file_level_problems(data, file, source_id, expected):
    result = check_source(data, file, source_id, SourceOptions(), TODAY)
    assert summary(result.problems) == expected
    assert not result.usable and result.accepted is None
    assert result.rows_accepted == 0
    for problem in result.problems:
        assert problem.message and problem.fix and "{" not in problem.message + problem.fix


def test_unreadable_file_says_why():
    result = check_source(b"name,kind\nA\x00,b\n", FILE, SOURCE, SourceOptions(), TODAY)
    assert result.problems[0].message == "The file could not be read: it looks like a binary file, not text."


def test_fan_out_tells_each_row_what_problem_tells_it():
    """The fan-out builds a row's Problem from a shared template: it must equal ``problem`` made for that row."""
    findings = {
        ("verified_stale", 0): ("verified_stale", "verified_at", "2024-01-02", ""),
        ("vocabulary", 2): ("vocabulary", "kind", "helpline!", " Did you mean: helpline?"),
        ("required", 1): ("required", "name", None, ""),
    }
    codes = np.array([0, 1, 2, 0, 3, 2])
    rows = np.array([10, 11, 12, 13, 14, 15])
    got = sorted(_fan_out(findings, codes, rows, "src", "src.csv"))
    want = sorted(
        make_problem("src", "src.csv", rule, row=int(rows[i]), column=column, value=value, detail=detail)
        for i, code in enumerate(codes.tolist())
        for (_, c), (rule, column, value, detail) in findings.items()
        if c == code
    )
    assert got == want
    assert [p.row for p in got] == [10, 11, 12, 13, 15]
    assert all(type(p) is Problem for p in got)


def test_cells_spelled_apart_that_stage_alike_are_judged_alike():
    """Staging's codes are per raw cell: "Helpline" and "helpline" are two codes with one staged value.  A value
    judged once per code must give every row the problems it gives when the staged rows are hashed again."""
    rows = [
        {**BASE, "kind": "Helpline", "name": "N/A"},
        {**BASE, "kind": "helpline", "name": " n/a "},
        {**BASE, "kind": "helpline!", "name": "<b>N/A</b>", "phone": "+47 22 40 00 40"},
        {**BASE, "kind": "Hjelpline", "phone": "4722400040", "url": "javascript:alert(1)"},
        {**BASE, "kind": "Hjelpline", "phone": "4722400040", "url": "JAVASCRIPT:alert(1)"},
    ]
    staged = stage_listings(frame(*rows), SOURCE, FILE, SourceOptions())
    assert staged.frame is not None
    assert len(staged.columns["kind"].values) > len(set(staged.frame["kind"].dropna()))  # codes apart, values alike
    found = validate_listings(staged.frame, SOURCE, FILE, TODAY, staged.columns)
    assert found == validate_listings(staged.frame, SOURCE, FILE, TODAY)
    assert {p.row for p in found if p.rule == "not_placeholder"} == {2, 3, 4}
    assert sorted(p.row for p in found if p.rule == "vocabulary") == [4, 5, 6]
