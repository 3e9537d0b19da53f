"""Queue name -> (contract_id, line): the PBX knows queues, not contracts.

CSV with the header ``queue,contract_id,line`` (``line`` may be empty: member_services). Every
problem is an error naming the file, the line and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.engine.csvtable import read_table_text, table_rows
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
    text = read_table_text(path, "queue mapping", QueueMapError)
    out: dict[str, Target] = {}
    for number, row in table_rows(text.splitlines(), str(path), COLUMNS, QueueMapError):
        queue, contract = row["queue"], row["contract_id"]
        line = row["line"] or DEFAULT_LINE
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
