"""Curator reports: counts per rule, rows with names and fixes, and what changed since the last run."""

from __future__ import annotations

import pandas as pd

from curate.problems import problem
from curate.report import compare, render_html, render_rejected_csv

RAW = pd.DataFrame(
    {"Navn": ["Good", "Bad", "Worse"], "Land": ["NO", "NO", "Narnia"], "Nettside": ["https://a.example", "x", "y"], "_row": [2, 3, 4]}
)
MAPPING = {"Navn": "name", "Land": "country", "Nettside": "url"}


def p(rule: str, row: int | None, column: str | None, value: str | None):
    return problem("demo", "demo.csv", rule, row=row, column=column, value=value)


def test_compare_counts_new_fixed_and_still_open_even_when_rows_move():
    before = [p("http_url", 3, "url", "x"), p("country_code", 4, "country", "Narnia")]
    after = [p("http_url", 5, "url", "x"), p("email", 3, "email", "nope")]  # the url problem moved rows: still open
    changes = compare(before, after)
    assert [x.rule for x in changes.new] == ["email"]
    assert [x.rule for x in changes.fixed] == ["country_code"]
    assert changes.still_open == 1


def test_report_groups_by_row_with_name_location_and_fix():
    problems = [p("http_url", 3, "url", "x"), p("country_code", 4, "country", "Narnia"), p("http_url", 4, "url", "y")]
    html = render_html("demo", "demo.csv", problems, 3, 1, RAW, MAPPING, previous=[p("http_url", 3, "url", "x")])
    assert "Row 3 — Bad · NO" in html and "Row 4 — Worse · Narnia" in html
    assert html.count("What to do:") == 3
    assert "<td>http url</td><td class='error'>error</td><td>2</td>" in html  # counts per rule
    assert "<b>2</b> new problems, <b>0</b> fixed, <b>1</b> still open" in html
    assert html.count("class='new'>new</span>") == 2


def test_first_report_says_so_and_escapes_what_curators_wrote():
    problems = [p("http_url", 3, "url", "<script>alert(1)</script>")]
    html = render_html("demo", "demo.csv", problems, 3, 2, RAW, MAPPING)
    assert "first time this file was checked" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_rejected_csv_keeps_the_curators_columns_and_adds_problems():
    problems = [p("http_url", 3, "url", "x"), p("markup_removed", 2, "description", "<b>")]
    text = render_rejected_csv(RAW, problems)
    lines = text.splitlines()
    assert lines[0] == "Navn,Land,Nettside,problems"
    assert len(lines) == 2 and lines[1].startswith('Bad,NO,x,"row 3, url:')
