"""Problems found in curator files: what a curator reads in reports and in ``curate check``."""

from __future__ import annotations

import functools
from typing import NamedTuple

from schemas.checks import RULES
from schemas.fields import BY_NAME


class Problem(NamedTuple):
    """One thing wrong with a file or a row.  ``row`` counts as a spreadsheet does (header = 1).

    A named tuple: files with many problems make hundreds of thousands of them.
    """

    source: str
    file: str
    row: int | None
    column: str | None
    value: str | None
    severity: str
    rule: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, object]:
        return dict(self._asdict())


def problem(
    source: str, file: str, rule: str, *, row: int | None = None, column: str | None = None, value: object = None, detail: str = ""
) -> Problem:
    """A problem told in the words of ``schemas.checks.RULES`` and the registry's fix for the column."""
    shown = "" if value is None else ("; ".join(map(str, value)) if isinstance(value, list) else str(value))
    severity, message, fix = _words(rule, column, shown, detail)
    return Problem(source, file, row, column, shown if value is not None else None, severity, rule, message, fix)


@functools.lru_cache(maxsize=1 << 16)
def _words(rule: str, column: str | None, shown: str, detail: str) -> tuple[str, str, str]:
    """The severity, message and fix of a rule broken by a value (files repeat the same mistake on many rows)."""
    spec = RULES[rule]
    fix = spec.fix or (BY_NAME[column].fix if column in BY_NAME else "")
    fmt = {"column": column or "", "value": shown, "detail": detail}
    return spec.severity, spec.message.format(**fmt), fix.format(**fmt)
