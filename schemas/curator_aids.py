"""Curator aids generated from the field registry: ``sources/TEMPLATE.csv`` and the column guide in ``sources/README.md``.

``python -m schemas.curator_aids`` (part of ``make generate``) rewrites them;
``tests/test_schemas.py`` fails when they drift from the registry.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from schemas.fields import CURATOR_COLUMNS
from schemas.generate import to_column_guide

SOURCES = Path(__file__).resolve().parent.parent / "sources"
TEMPLATE_FILE = SOURCES / "TEMPLATE.csv"
README_FILE = SOURCES / "README.md"
START = "<!-- column guide: generated from schemas/fields.py by `make generate`; edits here are overwritten -->"
END = "<!-- end of the generated column guide -->"


def template_csv() -> str:
    """The header row of a curator file, every contract column in the guide's order (a file of no rows is never read)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(CURATOR_COLUMNS)
    return buf.getvalue()


def readme_with_guide(readme: str) -> str:
    """``readme`` with the generated column guide between its markers (appended when the markers are missing)."""
    guide = to_column_guide().split("\n", 1)[1].strip().replace("\n## ", "\n### ")
    block = f"{START}\n## Columns\n\n{guide}\n{END}"
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    return readme.rstrip("\n") + "\n\n" + block + "\n"


def generated_files() -> dict[Path, str]:
    return {TEMPLATE_FILE: template_csv(), README_FILE: readme_with_guide(README_FILE.read_text(encoding="utf-8"))}


def main() -> None:
    for path, content in generated_files().items():
        path.write_text(content, encoding="utf-8", newline="")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
