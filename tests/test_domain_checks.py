"""Tests of the domain checks in ``schemas.checks``: phones in their country, public web hosts, description length,
how long ago a listing was confirmed; and of the rules they name (``tests/test_validate.py`` runs each rule on a row)."""

from __future__ import annotations

import datetime as dt
import socket

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from curate import normalise as n
from curate import stage
from curate.read import ROW
from curate.settings import Settings
from curate.validate import split_rows
from schemas import checks as c
from schemas.fields import BY_NAME, FIELDS, VERIFIED_EXPIRED_MONTHS, VERIFIED_STALE_MONTHS
from schemas.generate import COUNTRY_ROW_CHECKS, ROW_CHECKS, value_predicates
from tests.test_validate import BASE, LONG_DESCRIPTION, TODAY, assert_plain_words, run, summary

# --- phone numbers in their country -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        # valid numbers and national short numbers valid in the row's country
        ("+4722400040", "NO", None),
        ("+44800585858", "WW", None),
        ("116123", "NO", None),
        ("116123", "GB", None),
        ("116123", "DE", None),
        ("988", "US", None),
        ("1813", "BE", None),
        ("85258", "GB", None),
        # possible, or a 3 to 6 digit national code the metadata lacks: kept with a warning
        ("113", "NL", "phone_unverified"),
        ("2222", "NO", "phone_unverified"),
        ("+4712345678", "NO", "phone_unverified"),
        # neither: an error
        ("12", "NO", "phone_number"),
        ("1234567", "NO", "phone_number"),
        ("+47 1234", "NO", "phone_number"),
        ("+471234", "NO", "phone_number"),
        ("call us", "NO", "phone_number"),
        # emergency numbers of the row's country (113 is Norway's ambulance, but the Netherlands' suicide line)
        ("112", "NO", "emergency_number"),
        ("113", "NO", "emergency_number"),
        ("112", "DE", "emergency_number"),
        ("911", "US", "emergency_number"),
        ("999", "GB", "emergency_number"),
        ("000", "AU", "emergency_number"),
        ("+44999", "GB", "emergency_number"),
        # premium rate
        ("+4782012345", "NO", "premium_rate"),
        ("+449098790000", "GB", "premium_rate"),
        ("+19005551234", "US", "premium_rate"),
        ("24280", "US", "premium_rate"),
        ("1000", "FR", "premium_rate"),
        # short numbers in a worldwide row
        ("116123", "WW", "short_number_needs_country"),
        ("112", "WW", "short_number_needs_country"),
        # no country to judge a short number in: the country's own problem is reported instead
        ("116123", None, None),
        ("116123", "Narnia", None),
    ],
)
def test_phone_verdict(value, country, expected):
    assert c.phone_verdict(value, country) == expected
    assert expected is None or expected in c.PHONE_RULES


def test_staged_phones_are_judged_in_their_country():
    # the same short number is fine in one country and an emergency number in another
    _, problems = run({**BASE, "country": "NL", "phone": "113"}, {**BASE, "phone": "113"}, {**BASE, "country": "NL", "phone": "112"})
    assert summary(problems) == [
        ("phone_unverified", "warning", 2, "phone", "113"),
        ("emergency_number", "error", 3, "phone", "113"),
        ("emergency_number", "error", 4, "phone", "112"),
    ]


def test_emergency_number_rejects_the_row_and_premium_rate_keeps_it():
    staged, problems = run({**BASE, "phone": "112"}, {**BASE, "phone": "+47 820 12 345"}, BASE)
    assert summary(problems) == [
        ("emergency_number", "error", 2, "phone", "112"),
        ("premium_rate", "warning", 3, "phone", "+4782012345"),
    ]
    messages = {p.rule: (p.message, p.fix) for p in problems}
    assert messages["emergency_number"] == (
        "'112' is an emergency number (police, fire or ambulance), not the service's own line; the directory must not send "
        "people to the emergency services in this service's name.",
        "Write the service's own phone number instead of the emergency number.",
    )
    assert messages["premium_rate"][0].startswith("'+4782012345' is a premium-rate number: calling it costs more than a normal call")
    accepted, rejected = split_rows(staged, problems)
    assert accepted[ROW].tolist() == [3, 4] and rejected[ROW].tolist() == [2]


def test_phone_unverified_keeps_the_row_and_says_what_to_do():
    staged, problems = run({**BASE, "country": "NL", "phone": "113"})
    assert summary(problems) == [("phone_unverified", "warning", 2, "phone", "113")]
    assert (
        problems[0].fix
        == "Call the number to make sure it reaches the service: if it does, leave it as it is; if not, write the right number."
    )
    accepted, _ = split_rows(staged, problems)
    assert accepted["phone"].tolist() == ["113"]


_CALLING_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(_CALLING_CODES), st.text(alphabet="0123456789", min_size=2, max_size=13))
def test_a_known_number_type_is_what_is_valid_number_says(calling_code, digits):
    """``judge_phone`` takes a number whose type phonenumbers knows for valid, without ``is_valid_number``
    (which would match the number against every type a second time): the two agree on any E.164 number."""
    try:
        number = phonenumbers.parse(f"+{calling_code}{digits}", None)
    except phonenumbers.NumberParseException:
        return
    known = phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.UNKNOWN
    assert known == phonenumbers.is_valid_number(number)


def test_each_number_is_parsed_and_judged_once_per_value_and_country(monkeypatch):
    judged: list[tuple[str, str | None, bool]] = []
    judge_phone = c.judge_phone

    def judge(value: str, country: str | None, parsed=None) -> str | None:
        judged.append((value, country, parsed is not None))
        return judge_phone(value, country, parsed)

    def judged_again(value: str, country: str | None) -> str | None:
        raise AssertionError(f"{value} in {country} was judged again")

    c.phone_verdict.cache_clear()
    monkeypatch.setattr(c, "judge_phone", judge)
    monkeypatch.setattr(c.phone_verdict, "judge", judged_again)
    rows = [{**BASE, "phone": "116 123"}, {**BASE, "phone": "22 40 00 40", "sms": "2222"}, {**BASE, "country": "GB", "phone": "116123"}]
    rows += [{**BASE, "phone": "0800 000 0000"}]  # a number that fails: its rule is named without judging it again
    rows += [{**BASE, "phone": "+47 22 40 00 40"}]  # written otherwise, the same staged number: judged once more, in staging
    problems = run(*(rows * 200), once=True)[1]
    expected = [("116123", "NO", False), ("+4722400040", "NO", True), ("2222", "NO", False), ("116123", "GB", False)]
    expected += [("0800 000 0000", "NO", False), ("+4722400040", "NO", True)]  # E.164 numbers come with their parse
    assert sorted(judged) == sorted(expected)
    assert {(p.value, p.rule) for p in problems} >= {("0800 000 0000", "phone_number")}


#: Numbers as curators write them: every region's example numbers of each type, nationally and internationally.
_EXAMPLES = sorted(
    {
        (phonenumbers.format_number(number, style), region)
        for region in phonenumbers.SUPPORTED_REGIONS
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.PREMIUM_RATE)
        if (number := phonenumbers.example_number_for_type(region, kind)) is not None
        for style in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    }
)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.sampled_from(_EXAMPLES),
        st.tuples(st.text(alphabet="0123456789 +", min_size=3, max_size=16), st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS))),
    )
)
@example(("+43 0057038206", "AT"))  # possible, not valid: its E.164 parsed again loses another 0 and is valid
def test_staging_judges_a_number_as_judging_its_staged_value_does(number_country):
    """Staging judges the number it parsed (``stage.phone_in_country``); validation of the staged value alone
    would parse that value again (``judge_phone``): the verdicts agree."""
    number, country = number_country
    staged = n.phone(number, country)
    assert stage.phone_in_country((number, country)) == (staged, None if staged is None else c.judge_phone(staged, country))


# --- web addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "ftp://example.org/list",
        "https://user:pw@example.org",
        "https://user@example.org",
        "https://exa mple.org",
        "http://localhost/help",
        "https://[::1",
        "http://999.1.1.1/",
    ],
)
def test_http_url_refuses(value):
    assert not c.http_url(value)
    assert c.url_public_suffix(value)  # reported once, by http_url


@pytest.mark.parametrize(
    ("value", "public"),
    [
        ("https://mentalhelse.no", True),
        ("https://www.samaritans.org/how-we-can-help", True),
        ("https://www.gov.uk", True),
        ("https://nhs.uk/mental-health", True),  # a listed suffix that is a site of its own
        ("https://xn--80aswg.xn--p1ai", True),  # сайт.рф
        ("https://93.184.215.14/help", True),
        ("https://[2606:2800:220:1:248:1893:25c8:1946]/", True),
        # reserved for tests and documentation: accepted
        ("https://fjordhjelp.example", True),
        ("https://help.test", True),
        ("https://help.invalid", True),
        ("http://chat.localhost:8080", True),
        # no public suffix, or a private network
        ("https://fjordhjelp.zz", False),
        ("https://helpline.local", False),
        ("https://chat.internal", False),
        ("https://server.lan", False),
        ("http://10.0.0.1:8080/x", False),
        ("http://192.168.1.10/help", False),
        ("http://172.16.0.5", False),
        ("http://127.0.0.1", False),
        ("http://169.254.1.1", False),
        ("https://[::1]/chat", False),
        ("https://[fd00::1]", False),
    ],
)
def test_url_public_suffix(value, public):
    assert c.http_url(value)
    assert c.url_public_suffix(value) is public


def test_public_suffix_list_is_read_from_the_package_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the Public Suffix List must not be fetched")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    c._public_suffix_list.cache_clear()
    c.public_host.cache_clear()
    assert c.url_public_suffix("https://www.example.co.uk")
    assert not c.url_public_suffix("https://www.example.zz")


def test_url_public_suffix_message_and_fix():
    _, problems = run({**BASE, "url": "https://fjordhjelp.zz"})
    assert summary(problems) == [("url_public_suffix", "error", 2, "url", "https://fjordhjelp.zz")]
    assert problems[0].message.startswith("'https://fjordhjelp.zz' is not a public web address")
    assert problems[0].fix.startswith("Write the address people use on the internet")


#: Pieces of URLs near Arrow's fast path: hosts that just fit or miss it, ports, credentials, spaces, IPs.
URL_PIECES = (
    *("https://", "http://", "HTTPS://", "ftp://", "//", "a", "Z", "b0", "-", ".", ".", "example", "com", "zz", "uk", "co"),
    *("nhs", "xn--p1ai", "local", ":8080", ":", "@", "/", "?", "#", " ", "\t", "\n", "é", "10.0.0.1", "[::1]", "~", "%20"),
    *("a" * 62, "a" * 63, "a" * 64, ("a" * 60 + ".") * 4),
)
URLS = st.lists(st.lists(st.sampled_from(URL_PIECES), max_size=10).map("".join), max_size=20)


@settings(max_examples=300, deadline=None)
@given(URLS)
def test_arrow_passes_only_urls_the_check_passes(values):
    for check in c.ARROW_PASSES:
        certain = c.certain_passes(check, values)
        assert certain is not None and len(certain) == len(values)
        assert [v for v, sure in zip(values, certain, strict=True) if sure and not c.VALUE_CHECKS[check](v)] == []


NAMES = st.lists(
    st.one_of(st.text(max_size=20), st.sampled_from(["N/A", "n / a", "TBD", "test", "-", "?", "Fjordhjelp", "é", "_", " "])), max_size=20
)


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_arrow_passes_only_names_that_are_no_placeholder(values):
    certain = c.certain_passes("not_placeholder", values)
    assert certain is not None and [v for v, sure in zip(values, certain, strict=True) if sure and not c.not_placeholder(v)] == []
    assert c.certain_passes("not_placeholder", ["Fjordhjelp Mental Health Line", "N/A", "n / a" * 5, "—" * 20]) == [
        True,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("value", "arrow", "python"),  # which of (http_url, url_public_suffix) Arrow passes, and which the checks pass
    [
        ("https://www.samaritans.org/how-we-can-help", (True, True), (True, True)),
        ("http://nhs.uk/?q=1#top", (True, True), (True, True)),
        ("https://fjordhjelp.example", (True, True), (True, True)),
        ("https://fjordhjelp.zz", (True, False), (True, False)),
        ("https://fjordhjelp.example:8443/", (False, False), (True, True)),
        ("https://93.184.215.14/help", (False, False), (True, True)),
        ("https://fjordhjelp.example/é", (False, False), (True, True)),
        ("https://" + ("a" * 60 + ".") * 4 + "no", (True, True), (True, True)),  # a 248-character host
        # refused by http_url (and so passed by url_public_suffix, which leaves them to it)
        ("https://Fjordhjelp.example", (False, False), (False, True)),
        ("https://user@fjordhjelp.example", (False, False), (False, True)),
        ("https://fjordhjelp.example/a b", (False, False), (False, True)),
        ("https://" + ("a" * 62 + ".") * 4 + "no", (False, False), (False, True)),  # 254 characters: too long for a host
    ],
)
def test_arrow_passes_plain_public_urls_and_leaves_the_rest_to_the_checks(value, arrow, python):
    assert (c.certain_passes("http_url", [value]), c.certain_passes("url_public_suffix", [value])) == ([arrow[0]], [arrow[1]])
    assert (c.http_url(value), c.url_public_suffix(value)) == python


def test_arrow_leaves_values_it_cannot_hold_and_checks_without_a_path_to_python():
    assert c.certain_passes("http_url", [["https://a.example"]]) is None
    assert c.certain_passes("email", ["help@fjordhjelp.example"]) is None


def test_every_public_top_level_label_makes_every_name_under_it_public():
    labels = c.public_tlds()
    assert {"com", "org", "no", "uk", "example", "test"} <= set(labels)
    assert not {"zz", "local", "internal", "lan"} & set(labels)
    assert [label for label in labels if not c.public_host(f"help.fjord.{label}")] == []


# --- description length -----------------------------------------------------------------------


def test_description_cap_is_declared_in_the_registry():
    assert BY_NAME["description"].max_length == 1000
    assert c.too_long_rule("description") in value_predicates(BY_NAME["description"], TODAY)


def test_too_long_description_is_kept_with_a_warning_and_published_cut():
    staged, problems = run({**BASE, "description": LONG_DESCRIPTION}, {**BASE, "description": "Short."})
    assert len(LONG_DESCRIPTION) > 1000
    assert summary(problems) == [("description_too_long", "warning", 2, "description", LONG_DESCRIPTION)]
    assert problems[0].message == (
        "The description is longer than 1000 characters, so only its first 1000 are published, cut at the end of a word and "
        "followed by '…'."
    )
    assert LONG_DESCRIPTION not in problems[0].message  # the message stays short; the value is in its own column
    accepted, rejected = split_rows(staged, problems)
    assert rejected.empty
    cut = accepted["description"].tolist()[0]
    assert len(cut) <= 1000 and cut.endswith("support…") and LONG_DESCRIPTION.startswith(cut[:-1])
    assert accepted["description"].tolist()[1] == "Short."
    assert staged["description"].tolist()[0] == LONG_DESCRIPTION  # validation saw the whole text
    again, _ = split_rows(accepted, [])
    assert again["description"].tolist() == accepted["description"].tolist()  # cutting is idempotent


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .,\n…é"), max_size=60), st.integers(min_value=2, max_value=40))
def test_shorten_never_exceeds_the_cap_and_is_idempotent(value, cap):
    out = n.shorten(value, cap)
    assert out is not None and len(out) <= cap
    assert n.shorten(out, cap) == out
    assert out == value or (out.endswith("…") and value.startswith(out[:-1]))


# --- how long ago a listing was confirmed -----------------------------------------------------


@pytest.mark.parametrize(
    ("today", "months", "expected"),
    [
        (dt.date(2026, 11, 25), 12, dt.date(2025, 11, 25)),
        (dt.date(2026, 11, 25), 24, dt.date(2024, 11, 25)),
        (dt.date(2026, 1, 15), 1, dt.date(2025, 12, 15)),
        (dt.date(2028, 2, 29), 12, dt.date(2027, 2, 28)),  # the month's last day when it is shorter
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
    ],
)
def test_months_before(today, months, expected):
    assert c.months_before(today, months) == expected


@pytest.mark.parametrize(
    ("value", "stale", "expired"),
    [
        ("2026-11-25", False, False),
        ("2025-11-25", False, False),  # exactly 12 months ago
        ("2025-11-24", True, False),
        ("2024-11-25", True, False),  # exactly 24 months ago: still published
        ("2024-11-24", False, True),  # expired, and only that is said
        ("2019-01-01", False, True),
        # reported by date_not_future, not here
        ("2030-01-01", False, False),
        ("last spring", False, False),
    ],
)
def test_verified_age(value, stale, expired):
    assert c.verified_stale(value, TODAY) is not stale
    assert c.verified_expired(value, TODAY) is not expired


def test_verified_ages_are_one_setting():
    assert (VERIFIED_STALE_MONTHS, VERIFIED_EXPIRED_MONTHS) == (12, 24)
    # what curators are warned about is what out_listings.sql leaves out of public exports
    assert Settings().max_verified_age_months == VERIFIED_EXPIRED_MONTHS
    assert f"more than {VERIFIED_EXPIRED_MONTHS} months ago" in c.RULES["verified_expired"].message
    assert f"more than {VERIFIED_STALE_MONTHS} months ago" in c.RULES["verified_stale"].message


def test_verified_messages():
    _, problems = run({**BASE, "verified_at": "2025-06-30"}, {**BASE, "verified_at": "2023-06-30"})
    assert summary(problems) == [
        ("verified_stale", "warning", 2, "verified_at", "2025-06-30"),
        ("verified_expired", "warning", 3, "verified_at", "2023-06-30"),
    ]
    assert problems[0].message == "The details were last confirmed on 2025-06-30, more than 12 months ago; please confirm them again."
    assert problems[1].message == (
        "The details were last confirmed on 2023-06-30, more than 24 months ago, so the listing is left out of the public "
        "directory until someone confirms them again."
    )
    assert problems[1].fix.startswith("Confirm the details with the service, then write the date you did so in verified_at")


# --- every rule a generated check can name ----------------------------------------------------


def test_every_generated_check_names_a_rule_in_plain_words():
    named = {rule for rule, _, _ in ROW_CHECKS.values()}
    named |= {rule for name in COUNTRY_ROW_CHECKS for rule in c.COUNTRY_CHECKS[name.split(":")[0]][1]}
    assert set(COUNTRY_ROW_CHECKS) == {"phone_number:phone", "phone_number:sms"}
    for f in FIELDS:
        named |= set(value_predicates(f, TODAY))
    assert named <= set(c.RULES)
    _, problems = run(
        {**BASE, "phone": "112", "url": "https://x.zz", "verified_at": "2019-01-01", "description": LONG_DESCRIPTION},
        {**BASE, "phone": "+47 1234 5678", "sms": "+47 820 12 345", "verified_at": "2025-01-01"},
    )
    assert {p.rule for p in problems} == {
        "emergency_number",
        "url_public_suffix",
        "verified_expired",
        "description_too_long",
        "phone_unverified",
        "premium_rate",
        "verified_stale",
    }
    for problem in problems:
        assert_plain_words(problem)


def test_capping_texts_cuts_only_the_long_ones_and_leaves_the_staged_rows_as_they_were():
    import pandas as pd

    from curate.validate import capped_texts

    cap = BY_NAME["description"].max_length
    staged = pd.DataFrame({"description": pd.Series(["word " * cap, "short", None], dtype=object), "name": ["a", "b", "c"]})
    capped = capped_texts(staged)
    assert capped["description"].tolist()[1:] == ["short", None]
    assert len(capped["description"][0]) <= cap and capped["description"][0].endswith(n.ELLIPSIS)
    assert staged["description"][0] == "word " * cap  # the staged frame is not written to
