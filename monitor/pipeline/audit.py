"""The outage audit topic (``callcenter.outages``): one JSON record per opening, escalation,
breach and closing of an outage.

Records are keyed by their id (``<contract>|<line>|<start ms>|<kind>``): the contract prefix
routes every record of a contract to the contract's partition (so a consumer reads one
contract's records in order), and a record re-sent after a crash carries the same key and body,
so consumers de-duplicate by ``id`` and a compacted topic keeps one copy.
"""

from __future__ import annotations

import orjson

from monitor.engine.outages import HOUR_MS, OutageRecord, OutageRules
from monitor.report import iso_utc


def audit_record(record: OutageRecord, rules: OutageRules) -> tuple[bytes, bytes]:
    """(key, value) of an outage record."""
    deadline = record.start_ms + rules.deadline_hours * HOUR_MS
    body = {
        "id": record.record_id,
        "kind": record.kind,
        "contract_id": record.contract_id,
        "line": record.line,
        "cause": record.cause,
        "causes": list(record.causes),
        "reason": record.reason,
        "start": iso_utc(record.start_ms),
        "at": iso_utc(record.at_ms),
        "end": None if record.end_ms is None else iso_utc(record.end_ms),
        "hours": record.hours,
        "restore_deadline": iso_utc(deadline),
        "start_ms": record.start_ms,
        "at_ms": record.at_ms,
    }
    return record.record_id.encode(), orjson.dumps(body)
