"""Reading a JSON list of objects: bytes in, the same table of strings as ``read_table`` out.

Nested objects are flattened with ``.`` (``contact.phone``); a list of scalars becomes one
``;``-separated cell; a list of objects becomes one ``;``-separated cell per key
(``phones.number``). ``_row`` is the object's position + 2, as if the list were a sheet
with a header row, so reports point at "row 2" for the first object.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from curate.read import ROW, Table, _unique
from curate.read_xlsx import cell_text

SEPARATOR = ";"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false value"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _records(document: Any) -> list[Any] | str:
    """The list of records, or why the document holds none."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        lists = [k for k, v in document.items() if isinstance(v, list)]
        if len(document) == 1 and lists:
            return list(document[lists[0]])
        return (
            "it is a JSON object, not a list of objects; write a list of records, "
            'or an object with one key holding that list, such as {"services": [...]}'
        )
    return f"it is a JSON {_kind(document)}, not a list of objects"


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    """Add the cells of ``value`` under ``prefix`` to ``out`` (several values of one cell are joined with ``;``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
        return
    if isinstance(value, list):
        merged: dict[str, list[str]] = {}
        for item in value:
            cells: dict[str, str] = {}
            _flatten(item, prefix, cells)
            for column, text in cells.items():
                if text.strip():
                    merged.setdefault(column, []).append(text)
        for column, texts in merged.items():
            _put(out, column, SEPARATOR.join(texts))
        return
    _put(out, prefix, cell_text(value))


def _put(out: dict[str, str], column: str, text: str) -> None:
    if out.get(column, "").strip() and text.strip():
        out[column] = f"{out[column]}{SEPARATOR}{text}"  # the same column reached twice ({"a.b": 1, "a": {"b": 2}})
    elif text.strip() or column not in out:
        out[column] = text


def read_json(data: bytes) -> Table:
    """Parse a JSON list of objects (or ``{"key": [objects]}``) into a frame of strings with a ``_row`` column."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return Table(None, empty=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Table(None, error=f"it is not UTF-8 text, as a JSON file must be (byte {exc.start} cannot be read)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return Table(None, error=f"it is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    except RecursionError:
        return Table(None, error="it is not usable JSON (it is nested too deeply)")
    records = _records(document)
    if isinstance(records, str):
        return Table(None, error=records)
    if not records:
        return Table(None, encoding="utf-8", empty=True)
    rows: list[dict[str, str]] = []
    columns: dict[str, None] = {}  # first-seen order
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            return Table(None, error=f"item {position + 1} of its list is a {_kind(record)}, not an object with named fields")
        cells: dict[str, str] = {}
        try:
            _flatten(record, "", cells)
        except RecursionError:
            return Table(None, error="it is not usable JSON (it is nested too deeply)")
        rows.append(cells)
        columns.update(dict.fromkeys(cells))
    written = list(columns)
    names = _unique(written)
    frame = pd.DataFrame([[row.get(c, "") for c in written] for row in rows], columns=names, dtype=object)
    frame[ROW] = [position + 2 for position in range(len(rows))]
    return Table(frame, encoding="utf-8", delimiter="", empty=False, header=names)
