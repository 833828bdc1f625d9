"""Reading a curator's file: bytes in, a table of strings out (no path, no I/O here).

Encodings (UTF-8 with or without BOM, UTF-16, Windows-1252) and delimiters
(``,`` ``;`` tab ``|``) are sniffed; fully empty rows and columns are dropped;
every cell stays a string exactly as written, with ``_row`` the spreadsheet row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DELIMITERS = (",", ";", "\t", "|")
ROW = "_row"


@dataclass
class Table:
    """What was read from one file."""

    frame: pd.DataFrame | None
    encoding: str = ""
    delimiter: str = ""
    error: str = ""  # why the file could not be read at all
    empty: bool = False
    header: list[str] = field(default_factory=list)


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with.  Raises ``UnicodeError`` for binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if b"\x00" in data[:4096]:
        raise UnicodeError("it looks like a binary file, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return (data.decode("cp1252"), "cp1252") if _cp1252_ok(data) else (data.decode("latin-1"), "latin-1")


def _cp1252_ok(data: bytes) -> bool:
    try:
        data.decode("cp1252")
        return True
    except UnicodeDecodeError:
        return False


def sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = _first_filled_line(text)
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _first_filled_line(text: str, prefix: int = 65_536) -> str:
    """The first line that is not whitespace alone (``str.splitlines``'s lines), looking at a prefix first: splitting
    a whole 170 MB file took 0.2 s.  A line the prefix may have cut short is looked for again in the whole text."""
    lines = text[:prefix].splitlines()
    for n, line in enumerate(lines):
        if line.strip():
            if n < len(lines) - 1 or len(text) <= prefix:
                return line
            break
    return next((line for line in text.splitlines() if line.strip()), "") if len(text) > prefix else ""


def _unique(headers: list[str]) -> list[str]:
    """Header names made unique: blanks become ``column_N``, repeats ``name (2)``, never clashing with a written one."""
    written = {h.strip() for h in headers}
    taken: set[str] = set()
    out = []
    for i, h in enumerate(headers):
        name = h.strip() or f"column_{i + 1}"
        base, n = name, 1
        while name in taken or (name != h.strip() and name in written):
            n += 1
            name = f"{base} ({n})"
        taken.add(name)
        out.append(name)
    return out


def read_table(data: bytes, suffix: str) -> Table:
    """Parse CSV/TSV bytes into a frame of strings with a ``_row`` column."""
    if not data or data.isspace():  # (``isspace`` stops at the first other byte; ``strip`` copies the file)
        return Table(None, empty=True)
    try:
        text, encoding = decode(data)
    except UnicodeError as exc:
        return Table(None, error=str(exc))
    control = sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\r\n\t")
    if control > 8:
        return Table(None, error="it looks like a binary file, not text")
    delimiter = sniff_delimiter(text, suffix)
    by_arrow = read_by_arrow(data[3:] if encoding == "utf-8-sig" else data if encoding == "utf-8" else text.encode(), encoding, delimiter)
    return by_arrow if by_arrow is not None else read_by_csv(text, encoding, delimiter)


def read_by_csv(text: str, encoding: str, delimiter: str) -> Table:
    """``read_table``'s table by Python's ``csv.reader`` (any file; ``read_by_arrow`` is the fast path)."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        return Table(None, encoding=encoding, delimiter=delimiter, error=f"it is not valid CSV ({exc})")
    return table_from_rows([(n, r) for n, r in enumerate(rows, 1) if "".join(r).strip()], encoding, delimiter)


#: Python's whitespace (``str.isspace``, what ``str.strip`` removes), as an RE2 class: a cell of these alone is blank
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
NOT_BLANK = "[^" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
#: columns a file may have for Arrow to read it (each named ``f<N>`` and read as a string; a wider file is read by ``csv``)
ARROW_MAX_COLUMNS = 2000


def read_by_arrow(data: bytes, encoding: str, delimiter: str) -> Table | None:
    """``read_table``'s table from UTF-8 bytes by Arrow's CSV reader (C++, on every core): 1M rows in about 1.5 s
    where ``csv.reader`` takes 4 s.

    None when Arrow might not read the file as ``csv.reader`` does, which then reads it: rows of different widths
    (Arrow refuses them), a NUL, a cell longer than ``csv.field_size_limit()`` (``csv`` refuses it), an unclosed
    quote, or more than ``ARROW_MAX_COLUMNS`` columns.  Arrow gives a row of empty cells for an empty line where
    ``csv`` gives none: both are blank rows, dropped, and counted alike.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if b"\x00" in data:
        return None
    names = [f"f{j}" for j in range(ARROW_MAX_COLUMNS)]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[]
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowMemoryError):
        return None
    columns = table.columns
    if not columns or any(c.type != pa.string() for c in columns):
        return None
    limit = csv.field_size_limit()
    if any((pc.max(pc.binary_length(c)).as_py() or 0) > limit for c in columns):
        return None
    # a row is blank when every cell is whitespace alone: only rows whose first cell is are looked at further
    candidates = np.flatnonzero(~np.asarray(pc.match_substring_regex(columns[0], NOT_BLANK)))
    blank = np.ones(len(candidates), dtype=bool)
    for c in columns[1:] if len(candidates) else ():
        blank &= ~np.asarray(pc.match_substring_regex(c.take(pa.array(candidates)), NOT_BLANK))
    kept_rows = np.setdiff1d(np.arange(len(table)), candidates[blank], assume_unique=True)
    if not len(kept_rows):
        return Table(None, encoding=encoding, delimiter=delimiter, empty=True)
    first, body = int(kept_rows[0]), kept_rows[1:]
    header = [str(c[first].as_py()) for c in columns]
    whole = len(body) == len(table) - first - 1  # no blank row below the header: a slice, not a gather
    rows = [c.slice(first + 1) if whole else c.take(pa.array(body)) for c in columns]
    keep = [j for j, c in enumerate(rows) if header[j].strip() or (len(c) and pc.any(pc.match_substring_regex(c, NOT_BLANK)).as_py())]
    names = _unique([header[j] for j in keep])
    cells = {name: rows[j].to_numpy(zero_copy_only=False) for name, j in zip(names, keep, strict=True)}  # object arrays of str
    frame = pd.DataFrame({name: pd.Series(a, dtype=object, copy=False) for name, a in cells.items()}, copy=False)
    frame[ROW] = body + 1 if len(body) else []  # (an empty list, as the csv path gives)
    return Table(frame, encoding=encoding, delimiter=delimiter, empty=not len(body), header=names)


def table_from_rows(numbered: list[tuple[int, list[str]]], encoding: str, delimiter: str = "") -> Table:
    """The frame from the non-empty rows, each with its spreadsheet row number; the first is the header.

    Short rows are padded, columns empty in the header and every row are dropped, header names made unique.
    """
    if not numbered:
        return Table(None, encoding=encoding, delimiter=delimiter, empty=True)
    (_, header), body = numbered[0], numbered[1:]
    width = max(len(r) for _, r in numbered)
    header = header + [""] * (width - len(header))
    cells = [r if len(r) == width else r + [""] * (width - len(r)) for _, r in body]
    keep = [j for j in range(width) if header[j].strip() or any(r[j].strip() for r in cells)]
    names = _unique([header[j] for j in keep])
    # column by column (a frame made of 1M row lists took 1.6 s; transposed, 0.9 s)
    columns = list(zip(*cells)) if cells else [()] * width
    arrays = {name: np.fromiter(columns[j], dtype=object, count=len(cells)) for name, j in zip(names, keep, strict=True)}
    frame = pd.DataFrame({name: pd.Series(a, dtype=object, copy=False) for name, a in arrays.items()}, copy=False)
    frame[ROW] = [n for n, _ in body]
    return Table(frame, encoding=encoding, delimiter=delimiter, empty=not body, header=names)  # index 0, 1, ... already
