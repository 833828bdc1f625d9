"""Issue 4 acceptance: 20 typical mistakes are each named with a fix, and the fixed rejected.csv is accepted whole."""

from __future__ import annotations

import csv
import datetime as dt
import io
from html import unescape

from curate.checking import check_source
from curate.report import render_html, render_rejected_csv
from curate.sources import SourceOptions

TODAY = dt.date(2026, 11, 25)
HEADER = ["record_id", "Navn", "Type", "Nettside", "Telefon", "E-post", "Land", "Region", "Språk", "Tema", "Målgruppe", "Pris",
          "Moderering", "Verifisert"]  # fmt: skip
GOOD = {
    "Navn": "Line", "Type": "helpline", "Nettside": "https://line.example", "Telefon": "", "E-post": "", "Land": "NO", "Region": "",
    "Språk": "nb", "Tema": "general", "Målgruppe": "everyone", "Pris": "free", "Moderering": "peer", "Verifisert": "2026-06-01",
}  # fmt: skip
# record_id -> (the mistake, the rule that must name it, the column it is shown in, the fix a curator makes)
MISTAKES = {
    "m01": ({"Type": "hepline"}, "vocabulary", "kind", {"Type": "helpline"}),
    "m02": ({"Navn": "N/A"}, "not_placeholder", "name", {"Navn": "Line Two"}),
    "m03": ({"Navn": ""}, "required", "name", {"Navn": "Line Three"}),
    "m04": ({"Nettside": "javascript:alert(1)"}, "http_url", "url", {"Nettside": "https://four.example"}),
    "m05": ({"Nettside": "https://intranet"}, "http_url", "url", {"Nettside": "https://five.example"}),
    "m06": ({"Telefon": "12"}, "phone_number", "phone", {"Telefon": "116 123"}),
    "m07": ({"Telefon": "112"}, "emergency_number", "phone", {"Telefon": "116 111"}),
    "m08": ({"E-post": "help at line.example"}, "email", "email", {"E-post": "help@line.example"}),
    "m09": ({"Land": "Narnia"}, "country_code", "country", {"Land": "Norge"}),
    "m10": ({"Region": "SE-AB"}, "region_in_country", "region", {"Region": "Oslo"}),
    "m11": ({"Språk": "Klingonish"}, "bcp47", "languages", {"Språk": "Norwegian Bokmål"}),
    "m12": ({"Tema": "depresion"}, "vocabulary", "topics", {"Tema": "depression"}),
    "m13": ({"Målgruppe": "martians"}, "vocabulary", "audience", {"Målgruppe": "youth"}),
    "m14": ({"Verifisert": "2030-01-01"}, "date_not_future", "verified_at", {"Verifisert": "2026-01-01"}),
    "m15": ({"Verifisert": "31/31/2025"}, "date_not_future", "verified_at", {"Verifisert": "31.10.2025"}),
    "m16": ({"Nettside": ""}, "contact_required", None, {"Nettside": "https://sixteen.example"}),
    "m17": ({"Land": "WW", "Telefon": "116 123", "Nettside": ""}, "short_number_needs_country", "phone", {"Telefon": "+44 20 7946 0017"}),
    "m18": ({"Pris": "cheap"}, "vocabulary", "cost", {"Pris": "free"}),
    "m19": ({"Moderering": "profesional"}, "vocabulary", "moderation", {"Moderering": "professional"}),
    "m20": ({"Type": "forun"}, "vocabulary", "kind", {"Type": "forum"}),
}


def write(rows: list[dict[str, str]], header: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def test_twenty_mistakes_named_with_fixes_and_the_fixed_file_accepted_whole():
    rows = [{"record_id": rid, **GOOD, "Navn": f"Line {rid}", **mistake} for rid, (mistake, *_) in MISTAKES.items()]
    rows.append({"record_id": "ok", **GOOD, "Navn": "Fine Line"})
    data = write(rows, HEADER)
    result = check_source(data, "mistakes.csv", "mistakes", SourceOptions(), TODAY)
    assert (result.rows_read, result.rows_accepted) == (21, 1)
    errors = {(p.row, p.rule, p.column) for p in result.problems if p.severity == "error"}
    for n, (rid, (_, rule, column, _)) in enumerate(MISTAKES.items(), start=2):
        assert (n, rule, column) in errors, rid
    html = render_html("mistakes", "mistakes.csv", result.problems, result.rows_read, result.rows_accepted, result.raw, result.mapping)
    for n in range(2, 22 - 1):
        assert f"id='row-{n}'" in html
    text = unescape(html)
    assert html.count("What to do:") >= 20 and "Did you mean 'helpline'?" in text and "Did you mean 'forum'?" in text

    rejected = list(csv.DictReader(io.StringIO(render_rejected_csv(result.raw, result.problems))))
    assert [r["record_id"] for r in rejected] == list(MISTAKES)
    assert all(r["problems"] for r in rejected)
    for r in rejected:  # the curator fixes each row in the rejected file, then drops it back in
        r.update(MISTAKES[r["record_id"]][3])
    fixed = check_source(write(rejected, [*HEADER, "problems"]), "mistakes.csv", "mistakes", SourceOptions(), TODAY)
    assert (fixed.rows_read, fixed.rows_accepted) == (20, 20), [p for p in fixed.problems if p.severity == "error"]
    assert {p.rule for p in fixed.problems} <= {"unknown_column", "verified_stale", "phone_unverified"}
