"""Properties of the normalisers: they never raise, and applying one twice gives what applying it once gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import normalise as n
from curate import stage
from schemas.distinct import Distinct

VOCABULARIES = ("KINDS", "TOPICS", "AUDIENCES", "MODERATION", "COSTS")
COUNTRIES = (None, "WW", "NO", "GB", "US", "BE", "NL", "DE", "SE", "FR", "Narnia", "")

#: Pieces of what curators' cells hold: markup, entities (nested, split, unterminated), control and invisible
#: characters, combining marks, separators and fragments of URLs, numbers, dates and vocabulary words.
PIECES = (
    *("<b>", "</b>", "< i >", "<!--", "-->", "<", ">", "&", "&amp;", "&lt;", "&gt;", "&amp;lt;", "&#60;", "&#x3c;", "&#x301;"),
    *("&nbsp;", "&am", "p;", "&NOT;", "&not", "&region=", "&copy", "lt;", "&#", "x3c;"),
    *("\x00", "\x07", "\x1f", "\x7f", "\x85", "\u200b", "\u202e", "\ufeff", "\u00a0", "\u2028", "\t", "\n", "\r", " "),
    *("e", "\u0301", "\u0334", "\u0339", "é", "Å", "ß", "ﬁ", "İ", "\u0958", "\u1100", "\u1161"),
    *(";", ",", "/", "|", ":", ".", "-", "_", "@", "#", "?", "=", "%", "+", "(", ")", "[", "]"),
    *("http://", "https://", "www.", "mailto:", "MAILTO:", "javascript:", "example.org", "[::1]", ":80", ":443"),
    *("00", "0", "1", "116", "123", "988", "47", "22 40 00 40", "+44", "0800"),
    *("2025", "06", "30", "T10:00", "June", "24/7", "24h", "døgnåpen"),
    *("NO", "no", "Oslo", "Norge", "GB", "Scotland", "ww", "en", "en-us", "English", "Bokmål", "hotline", "PTSD", "n/a"),
)
CELLS = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=12).map("".join),
)
LISTS = st.lists(CELLS, max_size=5)
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(CELLS)
def test_text(value):
    once = n.text(value)
    assert once is None or (once == once.strip() and once)
    assert n.text(once) == once


#: Cells that take the normalisers' fast paths (plain ASCII text, simple URLs), beside ones that just miss them.
PLAIN_PIECES = ("a", "Z", "0", " ", "-", "/", "?", "=", ".", ":", "%", "~", "https://", "HTTP://", "x.example", "<", "&", "\t")
PLAIN = st.lists(st.one_of(st.sampled_from(PLAIN_PIECES), st.text(alphabet=st.characters(max_codepoint=127), max_size=3)), max_size=12).map(
    "".join
)


@PROPERTY
@given(st.one_of(PLAIN, CELLS))
def test_fast_paths_give_what_the_full_work_gives(value):
    assert n.text(value) == n._plain_text(value)
    assert n.has_markup(value) == (bool(value) and n._markup_removed(value))
    cleaned = n._plain_text(value)
    assert n.url(value) == (None if cleaned is None else (n._settle(n._url_step, cleaned) or None))


@PROPERTY
@given(st.lists(st.one_of(PLAIN, CELLS, st.none()), max_size=20))
def test_arrow_fast_paths_give_what_python_gives(values):
    """The RE2 patterns Arrow judges whole columns with agree with the Python fast paths and their fallbacks."""
    codes = np.arange(len(values))
    column = Distinct(codes, values)
    assert column.map_unless(n.PLAIN_ASCII_RE2, n.text).values == [n.text(v) for v in values]
    assert column.rows_where(n.has_markup, candidates=n.MAYBE_MARKUP_RE2).tolist() == [i for i, v in enumerate(values) if n.has_markup(v)]
    formula = column.rows_where(stage.formula_like, candidates=stage.FORMULA_CANDIDATES)
    assert formula.tolist() == [i for i, v in enumerate(values) if stage.formula_like(v)]
    both = column.matches(stage.MARKUP_OR_FORMULA, otherwise=True)
    assert column.rows_where(n.has_markup, candidates=both).tolist() == [i for i, v in enumerate(values) if n.has_markup(v)]
    assert column.rows_where(stage.formula_like, candidates=both).tolist() == formula.tolist()
    assert column.map_unless(n.CANONICAL_URL_RE2, n.url, rewrite=n.URL_REWRITE).values == [n.url(v) for v in values]
    if column._arrow is not None:  # text Arrow can hold (no lone surrogates): the pattern is the Python fast path exactly
        plain = [isinstance(v, str) and v.isascii() and bool(n.PLAIN_ASCII.fullmatch(v)) for v in values]
        assert column.matches(n.PLAIN_ASCII_RE2, otherwise=False).tolist() == plain


@pytest.mark.parametrize(
    "value",
    [
        *("https://a.example/", "HTTPS://Help.Example/Chat?x=1", "http://a.example/?q=1", "https://a.example//x"),
        *("https://x-1.b.example/p%20q", "https://a.example", "https://a.example/?x", "https://a.example//", "http://a.example/x/"),
    ],
)
def test_simple_urls_take_the_fast_path_and_agree(value):
    assert n.SIMPLE_URL.fullmatch(value)
    assert n.url(value) == n._settle(n._url_step, value)
    column = Distinct(np.array([0]), [value])
    arrow = column.matches(n.CANONICAL_URL_RE2, otherwise=False).tolist() == [True]
    assert arrow is (value == value.lower())  # Arrow takes those already lowercase, Python the others
    assert column.map_unless(n.CANONICAL_URL_RE2, n.url, rewrite=n.URL_REWRITE).values == [n.url(value)]


@PROPERTY
@given(CELLS)
def test_has_markup_is_false_on_cleaned_text(value):
    n.has_markup(value)
    assert not n.has_markup(n.text(value))


@PROPERTY
@given(CELLS)
def test_split_list(value):
    parts = n.split_list(value)
    assert all(p and p == p.strip() for p in parts)


#: Phone cells: numbers and what is written around them (separators, labels, spacing)
PHONE_CELLS = st.lists(
    st.sampled_from(("47", "116 123", "+44 20", "(0)", "+", "-", ".", " ", "/", ";", ",", "|", " or ", "eller", "SMS ", "text: ")),
    min_size=1,
    max_size=8,
).map("".join) | st.sampled_from(("47\n116", "x 47", "47 x"))


@settings(max_examples=500, deadline=None)
@given(st.one_of(PHONE_CELLS, CELLS))
def test_split_numbers_fast_path_gives_what_splitting_gives(value):
    cleaned = n.text(value)
    assert n.split_numbers(value) == (n.split_cleaned_numbers(cleaned) if cleaned else ([], []))


@PROPERTY
@given(CELLS, st.sampled_from(COUNTRIES))
def test_phone(value, country):
    once = n.phone(value, country)
    assert n.phone(once, country) == once


@PROPERTY
@given(CELLS)
def test_record_id(value):
    once = n.record_id(value, 7)
    assert n.record_id(once, 7) == once


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
@PROPERTY
@given(value=CELLS)
def test_term(vocabulary, value):
    once = n.term(value, vocabulary)
    assert n.term(once, vocabulary) == once


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
@PROPERTY
@given(value=CELLS)
def test_terms(vocabulary, value):
    once = n.terms(value, vocabulary)
    assert n.terms_list(once, vocabulary) == once


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
@PROPERTY
@given(values=LISTS)
def test_terms_list(vocabulary, values):
    once = n.terms_list(values, vocabulary)
    assert n.terms_list(once, vocabulary) == once


@PROPERTY
@given(CELLS)
def test_languages(value):
    once = n.languages(value)
    assert n.languages_list(once) == once


@PROPERTY
@given(LISTS)
def test_languages_list(values):
    once = n.languages_list(values)
    assert "" not in once
    assert n.languages_list(once) == once


@PROPERTY
@given(CELLS, st.sampled_from(COUNTRIES))
def test_region(value, country):
    once = n.region(value, country)
    assert n.region(once, country) == once


@PROPERTY
@given(CELLS, st.sampled_from(COUNTRIES))
def test_regions(value, country):
    once = n.regions(value, country)
    assert n.regions_list(once, country) == once


@PROPERTY
@given(LISTS, st.sampled_from(COUNTRIES))
def test_regions_list(values, country):
    once = n.regions_list(values, country)
    assert "" not in once
    assert n.regions_list(once, country) == once


#: Normalisers of one cell: applying one twice gives what applying it once gives.
ONE_CELL = {"url": n.url, "email": n.email, "country": n.country, "hours": n.hours, "date": n.date, "language": n.language}


@pytest.mark.parametrize("name", ONE_CELL)
@PROPERTY
@given(value=CELLS)
def test_one_cell_normalisers_are_idempotent(name, value):
    normalise = ONE_CELL[name]
    once = normalise(value)
    assert normalise(once) == once
