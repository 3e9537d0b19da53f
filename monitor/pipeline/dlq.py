"""Dead-letter records: the original bytes, why they were refused, and where they came from."""

from __future__ import annotations

import base64
from typing import Any

import orjson

# Reasons beyond the validation ones (monitor.engine.validation.RejectReason).
TOO_LATE = "too_late"
FUTURE_TIMESTAMP = "future_timestamp"
CONTRACT_LIMIT = "contract_limit"
PROCESSING_ERROR = "processing_error"


def dead_letter(
    raw: bytes,
    reason: str,
    detail: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    field: str | None = None,
    index: int | None = None,
) -> bytes:
    """One DLQ message value (JSON). ``index`` is the element's position in a batch message."""
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "field": field,
        "source": {"topic": topic, "partition": partition, "offset": offset, "index": index},
    }
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(record)
