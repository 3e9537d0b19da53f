"""Queue name -> (contract_id, line): the PBX knows queues, not contracts.

CSV with the header ``queue,contract_id,line`` (``line`` may be empty: member_services). Every
problem is an error naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from monitor.engine.events import DEFAULT_LINE
from monitor.engine.validation import CONTRACT_ID_PATTERN, LINE_PATTERN

COLUMNS = ("queue", "contract_id", "line")


class QueueMapError(ValueError):
    """The mapping file cannot be used."""


@dataclass(frozen=True, slots=True)
class Target:
    contract_id: str
    line: str


def load_queue_map(path: str | Path) -> dict[str, Target]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise QueueMapError(f"{path}: queue mapping not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QueueMapError(f"{path}: cannot read queue mapping: {exc}") from None
    reader = csv.reader(text.splitlines())
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise QueueMapError(
            f"{path}:1: header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
        )
    index = {name: header.index(name) for name in COLUMNS}
    out: dict[str, Target] = {}
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise QueueMapError(
                f"{path}:{number}: expected {len(header)} columns, found {len(row)}"
            )
        queue = row[index["queue"]].strip()
        contract = row[index["contract_id"]].strip()
        line = row[index["line"]].strip() or DEFAULT_LINE
        if not queue:
            raise QueueMapError(f"{path}:{number}: queue is empty")
        if CONTRACT_ID_PATTERN.fullmatch(contract) is None:
            raise QueueMapError(f"{path}:{number}: contract_id {contract!r} is not a contract id")
        if LINE_PATTERN.fullmatch(line) is None:
            raise QueueMapError(f"{path}:{number}: line {line!r} must match ^[a-z0-9_]{{1,32}}$")
        if queue in out:
            raise QueueMapError(f"{path}:{number}: queue {queue!r} is mapped twice")
        out[queue] = Target(contract, line)
    return out
