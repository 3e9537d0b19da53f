"""Small CSV tables with a header (contract registry, operating hours, queue mappings).

One reader for all of them, so every table reports problems the same way: the file, the line
and what is wrong.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path


def read_table_text(path: Path, what: str, error: type[ValueError]) -> str:
    """The file's text (a spreadsheet's byte-order mark removed), or ``error``."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None


def table_rows(
    lines: Iterable[str], source: str, required: tuple[str, ...], error: type[ValueError]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: stripped value}) per non-blank row; extra columns are kept."""
    reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise error(f"{source}: empty file, expected a header row") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise error(
            f"{source}:1: header lacks column(s) {', '.join(missing)}; "
            f"expected at least {','.join(required)}"
        )
    for row in reader:
        line_no = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise error(f"{source}:{line_no}: expected {len(header)} columns, found {len(row)}")
        yield line_no, {name: cell.strip() for name, cell in zip(header, row, strict=True)}
