"""Curator reports: ``sources/reports/<source>.html`` and ``<source>.rejected.csv``.

The renderers are pure (rows and problems in, text out); ``write_reports`` is the edge.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd

from curate.problems import Problem
from curate.read import ROW

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem} table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.error{color:#a40000;font-weight:600} .warning{color:#8a5a00;font-weight:600}
.row{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:.8rem 0}
.fix{color:#235;} .muted{color:#666} .new{background:#fde68a;padding:0 .3rem;border-radius:3px;font-size:.85em}
.fixed{color:#276738}
"""


def _row_labels(raw: pd.DataFrame | None, mapping: dict[str, str], rows: set[int]) -> dict[int, str]:
    """Each of ``rows``' listing name and location as the curator wrote them, to find the row again (one pass)."""
    if raw is None or not rows:
        return {}
    inverse = {v: k for k, v in mapping.items()}
    columns = [inverse[c] for c in ("name", "country", "region") if c in inverse]
    picked = raw[raw[ROW].isin(rows)]
    labels: dict[int, str] = {}
    for row, *cells in zip(picked[ROW], *(picked[c] for c in columns), strict=True):
        if int(row) not in labels:  # the first, as a row number is a row's own
            labels[int(row)] = " · ".join(str(c) for c in cells if str(c or "").strip())
    return labels


def problem_key(p: Problem) -> tuple[str, str, str]:
    """What makes a problem the same from one run to the next, even when rows move: its rule, column and value."""
    return (p.rule, p.column or "", p.value or "")


@dataclass(frozen=True)
class Changes:
    """Problems compared with the source's previous run."""

    new: list[Problem]
    fixed: list[Problem]
    still_open: int


def compare(previous: list[Problem], current: list[Problem]) -> Changes:
    """New, fixed and still-open problems (matched by ``problem_key``, counting repeats)."""
    before = Counter(problem_key(p) for p in previous)
    now = Counter(problem_key(p) for p in current)
    new, fixed = [], []
    for p in current:
        if before[problem_key(p)] > 0:
            before[problem_key(p)] -= 1
        else:
            new.append(p)
    for p in previous:
        if now[problem_key(p)] > 0:
            now[problem_key(p)] -= 1
        else:
            fixed.append(p)
    return Changes(new, fixed, len(current) - len(new))


def _changes_html(previous: list[Problem] | None, problems: list[Problem]) -> tuple[list[str], set[int]]:
    if previous is None:
        return ["<h2>Since the last run</h2><p>This is the first time this file was checked.</p>"], set()
    changes = compare(previous, problems)
    out = [
        "<h2>Since the last run</h2>",
        f"<p><b>{len(changes.new)}</b> new problems, <b>{len(changes.fixed)}</b> fixed, <b>{changes.still_open}</b> still open.</p>",
    ]
    if changes.fixed:
        out.append("<p>Fixed since the last run:</p><ul>")
        out += [f"<li class='fixed'>{escape(p.message)}</li>" for p in changes.fixed]
        out.append("</ul>")
    return out, {id(p) for p in changes.new}


def render_html(
    source: str,
    file: str,
    problems: list[Problem],
    rows_read: int,
    rows_accepted: int,
    raw: pd.DataFrame | None,
    mapping: dict[str, str],
    previous: list[Problem] | None = None,
) -> str:
    """A report a non-engineer can act on: counts, file problems, then every row's problems with fixes."""
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    rejected = rows_read - rows_accepted
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report: {escape(file)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Report for <code>{escape(file)}</code></h1>",
        f"<p>Rows read: <b>{rows_read}</b>. Accepted: <b>{rows_accepted}</b>. Rejected: <b>{rejected}</b>. "
        f"Problems: <span class='error'>{errors} errors</span>, <span class='warning'>{warnings} warnings</span>.</p>",
        "<p class='muted'>An error keeps a row out of the directory; a warning is published but worth a look. "
        f"The rejected rows, with their problems, are in <code>{escape(source)}.rejected.csv</code>: fix them there "
        "or in your file, and drop the file back into <code>sources/</code>.</p>",
    ]
    changes, new = _changes_html(previous, problems)
    out += changes
    if not problems:
        out.append("<p>No problems found. Thank you!</p>")
    by_rule = Counter((p.severity, p.rule) for p in problems)
    if by_rule:
        out.append("<h2>Problems by kind</h2><table><tr><th>kind of problem</th><th>severity</th><th>rows</th></tr>")
        for (severity, rule), count in sorted(by_rule.items(), key=lambda x: (-x[1], x[0])):
            out.append(f"<tr><td>{escape(rule.replace('_', ' '))}</td><td class='{severity}'>{severity}</td><td>{count}</td></tr>")
        out.append("</table>")
    file_level = [p for p in problems if p.row is None]
    if file_level:
        out.append("<h2>About the whole file</h2>")
        for p in file_level:
            out.append(
                f"<div class='row'><p class='{p.severity}'>{escape(p.message)}</p><p class='fix'>What to do: {escape(p.fix)}</p></div>"
            )
    by_row: dict[int, list[Problem]] = defaultdict(list)
    for p in problems:
        if p.row is not None:
            by_row[p.row].append(p)
    if by_row:
        out.append("<h2>Row by row</h2>")
    labels = _row_labels(raw, mapping, set(by_row))
    for row in sorted(by_row):
        label = labels.get(row, "")
        out.append(f"<div class='row' id='row-{row}'><h3>Row {row}{' — ' + escape(label) if label else ''}</h3><ul>")
        for p in by_row[row]:
            where = f"<code>{escape(p.column)}</code>: " if p.column else ""
            badge = " <span class='new'>new</span>" if id(p) in new else ""
            out.append(
                f"<li><span class='{p.severity}'>{p.severity}</span>{badge} {where}{escape(p.message)}"
                f"<br><span class='fix'>What to do: {escape(p.fix)}</span></li>"
            )
        out.append("</ul></div>")
    out.append("</body></html>\n")
    return "\n".join(out)


def render_rejected_csv(raw: pd.DataFrame | None, problems: list[Problem]) -> str:
    """Rejected rows in the curator's own columns, plus ``problems``: fix and drop back in."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if raw is None:
        writer.writerow(["problems"])
        for p in problems:
            writer.writerow([f"{p.message} {p.fix}"])
        return buf.getvalue()
    columns = [c for c in raw.columns if c != ROW]
    writer.writerow([*columns, "problems"])
    errors: dict[int, list[Problem]] = defaultdict(list)
    for p in problems:
        if p.row is not None:
            errors[p.row].append(p)
    rejected = {r for r, ps in errors.items() if any(p.severity == "error" for p in ps)}
    for record in raw[raw[ROW].isin(rejected)].to_dict("records"):
        row = int(record[ROW])
        if row in rejected:
            text = " | ".join(f"row {row}, {p.column or 'row'}: {p.message} Fix: {p.fix}" for p in errors[row] if p.severity == "error")
            writer.writerow([*("" if record[c] is None else record[c] for c in columns), text])
    return buf.getvalue()


def write_reports(
    reports_dir: Path,
    source: str,
    file: str,
    problems: list[Problem],
    rows_read: int,
    rows_accepted: int,
    raw: pd.DataFrame | None,
    mapping: dict[str, str],
    previous: list[Problem] | None = None,
) -> tuple[Path, Path]:
    reports_dir.mkdir(parents=True, exist_ok=True)
    html_path = reports_dir / f"{source}.html"
    csv_path = reports_dir / f"{source}.rejected.csv"
    html_path.write_text(render_html(source, file, problems, rows_read, rows_accepted, raw, mapping, previous), encoding="utf-8")
    csv_path.write_text(render_rejected_csv(raw, problems), encoding="utf-8")
    return html_path, csv_path
