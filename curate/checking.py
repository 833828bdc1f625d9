"""One source, checked: bytes in, staged rows and problems out (pure; shared by ``curate run`` and ``curate check``)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import pandas as pd

from curate.problems import Problem, problem
from curate.read import read_table
from curate.sources import NOT_YET, SOURCE_ID, SourceOptions
from curate.stage import stage_listings
from curate.validate import split_rows, validate_listings


@dataclass
class SourceResult:
    """Everything a run or a check learns from one source file."""

    source_id: str
    file: str
    sha256: str
    raw: pd.DataFrame | None = None
    accepted: pd.DataFrame | None = None
    rejected: pd.DataFrame | None = None  # staged rows with errors (their match keys let the warehouse keep their last valid version)
    problems: list[Problem] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    priority: int = 0

    @property
    def usable(self) -> bool:
        """False when a file-level error stopped the whole file."""
        return self.accepted is not None

    @property
    def rows_accepted(self) -> int:
        return 0 if self.accepted is None else len(self.accepted)

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_accepted


def check_source(data: bytes, file: str, source_id: str, options: SourceOptions, today: dt.date) -> SourceResult:
    """Read, stage and validate one file's bytes."""
    result = SourceResult(source_id, file, hashlib.sha256(data).hexdigest(), priority=options.priority)
    suffix = "." + file.rsplit(".", 1)[-1].lower() if "." in file else ""

    def fail(rule: str, **kw: object) -> SourceResult:
        result.problems.append(problem(source_id, file, rule, **kw))  # type: ignore[arg-type]
        return result

    if not SOURCE_ID.match(source_id):
        return fail("bad_source_id", value=source_id)
    if suffix in NOT_YET:
        return fail("unsupported_format", value=suffix)
    table = read_table(data, suffix)
    if table.error:
        return fail("unreadable_file", detail=table.error)
    if table.frame is None or table.empty:
        return fail("empty_file")
    result.raw = table.frame
    result.rows_read = len(table.frame)
    staged = stage_listings(table.frame, source_id, file, options)
    result.mapping = staged.mapping
    result.problems.extend(staged.problems)
    if staged.frame is None:
        return result
    result.problems.extend(validate_listings(staged.frame, source_id, file, today))
    result.problems.sort(key=lambda p: (p.row if p.row is not None else -1, p.column or "", p.rule))
    result.accepted, result.rejected = split_rows(staged.frame, result.problems)
    return result
