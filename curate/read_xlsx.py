"""Reading an Excel workbook: bytes in, the same table of strings as ``read_table`` out.

The ZIP container is checked before openpyxl opens it, so that a workbook that would
unpack to far more than it weighs (a zip bomb) is refused without being inflated.
Every cell becomes text the way a curator sees it: phone numbers Excel stored as
floats lose their ``.0``, dates become ISO dates.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from curate.read import Table, table_from_rows

MB = 1_000_000
#: Members smaller than this are not judged by their compression ratio (XML compresses well).
RATIO_MIN_BYTES = 1 * MB
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls format


@dataclass(frozen=True)
class XlsxLimits:
    max_unzipped_bytes: int = 200_000_000  # total uncompressed size of all ZIP members
    max_ratio: int = 200  # uncompressed/compressed size of any member (zip bomb guard)
    max_rows: int = 1_000_000


def cell_text(value: Any) -> str:
    """A cell's value as the text a curator sees (shared with the JSON reader)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value)


def number_text(value: float) -> str:
    """``4722400040.0`` -> ``4722400040``; ``1.5`` -> ``1.5``; ``0.1 + 0.2`` -> ``0.3`` (15 significant digits, as Excel)."""
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    text = format(Decimal(f"{value:.15g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _zip_problem(data: bytes, limits: XlsxLimits) -> str:
    """Why the container is refused, before anything is inflated; ``""`` when it is acceptable.

    The sizes are those the ZIP directory declares; Python's ``zipfile`` never inflates a
    member beyond its declared size, so a lying directory cannot get past this check.
    """
    if data.startswith(OLE_MAGIC):
        return "it is not an Excel .xlsx file (it looks like an old .xls workbook; save it as .xlsx)"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        return f"it is not an Excel .xlsx file (it is not a valid ZIP archive: {exc})"
    total = sum(m.file_size for m in members)
    if total > limits.max_unzipped_bytes:
        return f"it would unpack to more than {megabytes(limits.max_unzipped_bytes)} MB, which is more than we accept"
    for m in members:
        if m.file_size >= RATIO_MIN_BYTES and m.file_size > limits.max_ratio * max(m.compress_size, 1):
            return (
                f"it would unpack to more than {megabytes(m.file_size)} MB from {megabytes(m.compress_size)} MB "
                f"(part {m.filename!r} is packed more than {limits.max_ratio} times), which is more than we accept"
            )
    return ""


def megabytes(size: int) -> str:
    """``200_000_000`` -> ``200``; ``30_000`` -> ``0.03`` (for messages)."""
    return f"{size // MB:,}" if size >= MB else number_text(float(f"{size / MB:.3g}"))


def read_xlsx(data: bytes, sheet: str | None = None, limits: XlsxLimits = XlsxLimits()) -> Table:
    """Parse one sheet of an .xlsx workbook (``sheet`` by name, case-insensitive; else the first)."""
    if not data.strip():
        return Table(None, encoding="xlsx", empty=True)
    problem = _zip_problem(data, limits)
    if problem:
        return Table(None, error=problem)

    import openpyxl  # only where a workbook is read

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a ZIP that is not a workbook
        return Table(None, error=f"it is not an Excel .xlsx file ({type(exc).__name__}: {exc})")
    try:
        sheets = list(workbook.worksheets)
        if sheet is not None and sheet.strip():
            wanted = sheet.strip()
            chosen = next((s for s in sheets if s.title == wanted), None) or next(
                (s for s in sheets if s.title.strip().casefold() == wanted.casefold()), None
            )
            if chosen is None:
                names = ", ".join(s.title for s in sheets) or "none"
                return Table(None, error=f"it has no sheet called {wanted!r} (its sheets are: {names})")
        elif sheets:
            chosen = sheets[0]
        else:
            return Table(None, encoding="xlsx", empty=True)
        chosen.reset_dimensions()  # trust the cells, not the size the writing program declared
        numbered: list[tuple[int, list[str]]] = []
        for number, values in enumerate(chosen.iter_rows(min_row=1, min_col=1, values_only=True), start=1):
            if number > limits.max_rows:
                return Table(None, error=f"it has more than {limits.max_rows:,} rows, which is more than we accept")
            cells = [cell_text(v) for v in values]
            if any(c.strip() for c in cells):
                numbered.append((number, cells))
    except Exception as exc:  # a damaged sheet (bad XML, a truncated member) is the file's problem, not the run's
        return Table(None, error=f"it is not an Excel .xlsx file ({type(exc).__name__}: {exc})")
    finally:
        workbook.close()
    return table_from_rows(numbered, "xlsx")
